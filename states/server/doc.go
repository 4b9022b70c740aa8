// Package server holds the state schema of the aRPC server's control machine
// (Server.Mach).
//
// A normal run goes Start → RpcStarting → RpcReady → Ready. ClientConnected and
// ClientDisconnected are Multi states added once per client session, with the
// argument "id" holding the client's ID.
package server
