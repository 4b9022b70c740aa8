package states

import am "github.com/arpc-go/arpc/pkg/machine"

// State names shared by the client and the server control machines.
const (
	// Exception is the engine's built-in error state.
	Exception = am.Exception
	// ErrNetwork marks a network failure: dial, read, write or a lost peer.
	ErrNetwork = "ErrNetwork"
	// ErrRpc marks a protocol failure: a refused handshake, an invalid
	// message or an error reply that is not the application's.
	ErrRpc = "ErrRpc"
	// Start is the user's intent to run; removing it stops the component.
	Start = "Start"
	// Ready means the component is fully operational.
	Ready = "Ready"
)

// SharedStates are the states both control machines have.
var SharedStates = am.Struct{
	Exception:  {Multi: true},
	ErrNetwork: {Require: am.S{Exception}},
	ErrRpc:     {Require: am.S{Exception}},
	Start:      {},
	Ready:      {},
}

// SharedNames is the ordered list of SharedStates.
var SharedNames = am.S{Exception, ErrNetwork, ErrRpc, Start, Ready}
