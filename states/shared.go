package states

import am "github.com/arpc-go/arpc/pkg/machine"

// State names shared by the client and the server control machines, in the
// order of asyncmachine-go v0.7's shared schema.
const (
	// Exception is the engine's built-in error state.
	Exception = am.Exception
	// ErrNetwork marks a network failure: dial, read, write or a lost peer.
	ErrNetwork = "ErrNetwork"
	// ErrRpc marks a protocol failure: a refused handshake, an invalid
	// message or an error reply that is not the application's.
	ErrRpc = "ErrRpc"
	// ErrOnClient is kept so that asyncmachine-go v0.7 code naming it
	// compiles and its schemas merge; aRPC never adds it: a client's bad
	// input fails that client's call (see pkg/rpc), and touches no machine.
	ErrOnClient = "ErrOnClient"
	// Start is the user's intent to run; removing it stops the component.
	Start = "Start"
	// Ready means the component is fully operational.
	Ready = "Ready"
	// HandshakeDone: on a client, its connection completed the handshake;
	// on a server, at least one client is connected (handshaken).
	HandshakeDone = "HandshakeDone"
	// Handshaking: a handshake is in progress.
	Handshaking = "Handshaking"
)

// SharedStates are the states both control machines have.
var SharedStates = am.Struct{
	Exception:     {Multi: true},
	ErrNetwork:    {Require: am.S{Exception}},
	ErrRpc:        {Require: am.S{Exception}},
	ErrOnClient:   {Require: am.S{Exception}},
	Start:         {},
	Ready:         {},
	HandshakeDone: {Require: am.S{Start}, Remove: am.S{Handshaking}},
	Handshaking:   {Require: am.S{Start}, Remove: am.S{HandshakeDone}},
}

// SharedNames is the ordered list of SharedStates.
var SharedNames = am.S{
	Exception, ErrNetwork, ErrRpc, ErrOnClient, Start, Ready, HandshakeDone,
	Handshaking,
}

// States is SharedStates under its asyncmachine-go v0.7 name.
var States = SharedStates

// Names is SharedNames under its asyncmachine-go v0.7 name.
var Names = SharedNames
