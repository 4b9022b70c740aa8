package server

import (
	am "github.com/arpc-go/arpc/pkg/machine"
	ss "github.com/arpc-go/arpc/states"
)

// State names of the server control machine.
const (
	Exception     = ss.Exception
	ErrNetwork    = ss.ErrNetwork
	ErrRpc        = ss.ErrRpc
	ErrOnClient   = ss.ErrOnClient
	Start         = ss.Start
	Ready         = ss.Ready
	HandshakeDone = ss.HandshakeDone
	Handshaking   = ss.Handshaking
	RpcStarting   = "RpcStarting"
	RpcReady      = "RpcReady"
	// ClientConnected is added (Multi) when a client completes its handshake.
	ClientConnected = "ClientConnected"
	// ClientDisconnected is added (Multi) when a handshaken client goes away.
	ClientDisconnected = "ClientDisconnected"

	// ClientConn is ClientConnected under its asyncmachine-go v0.7 name.
	ClientConn = ClientConnected
	// ClientDisconn is ClientDisconnected under its asyncmachine-go v0.7
	// name.
	ClientDisconn = ClientDisconnected
)

// States is the schema of the server control machine.
var States = am.StructMerge(ss.SharedStates, am.Struct{
	Start: {Add: am.S{RpcStarting}},
	Ready: {Auto: true, Require: am.S{RpcReady}},

	RpcStarting: {Require: am.S{Start}, Remove: am.S{RpcReady}},
	RpcReady:    {Require: am.S{Start}, Remove: am.S{RpcStarting}},

	ClientConnected:    {Multi: true, Require: am.S{RpcReady}},
	ClientDisconnected: {Multi: true},

	// a server has many clients: one can be handshaking while others are
	// connected, so unlike on a client the two don't exclude each other
	HandshakeDone: {Require: am.S{Start}},
	Handshaking:   {Require: am.S{Start}},
})

// Names is the ordered list of the server control machine's states.
var Names = am.SAdd(ss.SharedNames, am.S{
	RpcStarting, RpcReady, ClientConnected, ClientDisconnected,
})
