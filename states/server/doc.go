// Package server holds the state schema of the aRPC server's control machine
// (Server.Mach).
//
// A normal run goes Start → RpcStarting → RpcReady → Ready. ClientConnected and
// ClientDisconnected are Multi states added once per client session, with the
// argument "id" holding the client's ID. HandshakeDone is active while at
// least one client is connected, Handshaking while a handshake is in
// progress.
//
// The asyncmachine-go v0.7 names ClientConn, ClientDisconn, HandshakeDone,
// Handshaking and ErrOnClient are all here, so code that waits on them
// ports by changing the import path.
package server
