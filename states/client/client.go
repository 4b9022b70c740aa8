package client

import (
	am "github.com/arpc-go/arpc/pkg/machine"
	ss "github.com/arpc-go/arpc/states"
)

// State names of the client control machine.
const (
	Exception     = ss.Exception
	ErrNetwork    = ss.ErrNetwork
	ErrRpc        = ss.ErrRpc
	ErrOnClient   = ss.ErrOnClient
	Start         = ss.Start
	Ready         = ss.Ready
	HandshakeDone = ss.HandshakeDone
	Handshaking   = ss.Handshaking
	Connecting    = "Connecting"
	Connected     = "Connected"
	Disconnecting = "Disconnecting"
	Disconnected  = "Disconnected"
	// Payload is added (Multi) for every payload the server sends, with the
	// argument "name" holding the payload's name.
	Payload = "Payload"
)

// GroupConn are the mutually exclusive connection states.
var GroupConn = am.S{Connecting, Connected, Disconnecting, Disconnected}

// States is the schema of the client control machine.
var States = am.StructMerge(ss.SharedStates, am.Struct{
	Start: {Add: am.S{Connecting}},
	Ready: {Auto: true, Require: am.S{HandshakeDone}},

	Connecting:    {Require: am.S{Start}, Remove: GroupConn},
	Connected:     {Require: am.S{Start}, Remove: GroupConn, Add: am.S{Handshaking}},
	Disconnecting: {Remove: GroupConn},
	Disconnected:  {Remove: GroupConn},

	Handshaking:   {Require: am.S{Connected}, Remove: am.S{HandshakeDone}},
	HandshakeDone: {Require: am.S{Connected}, Remove: am.S{Handshaking}},

	Payload: {Multi: true},
})

// Names is the ordered list of the client control machine's states.
var Names = am.SAdd(ss.SharedNames, am.S{
	Connecting, Connected, Disconnecting, Disconnected, Payload,
})
