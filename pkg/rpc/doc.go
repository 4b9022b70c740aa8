// Package rpc is aRPC: a transparent RPC for state machines.
//
// A Server exposes a local state machine (the source, an *am.Machine whose
// state names are verified) to any number of clients over TCP, or over any
// net.Conn (WithListener, Server.ServeConn, WithDialer). A Client dials it,
// checks in the handshake that both ends have the same ordered state names and
// schema, and holds a Worker: the mirror of the source machine.
//
// The Worker implements am.Api. Reads and waits (Is, Not, Any, Switch, Time,
// Clock, Tick, When, WhenNot, WhenTime, WhenTicks, WhenErr, NewStateCtx,
// String, Inspect...) are answered locally, from a mirrored tick vector.
// Mutations (Add, Remove, Set, AddErr, AddErrState) run on the server, which
// resolves relations and runs handlers; each returns the source's result once
// the mirror reflects what the mutation caused, because its reply carries the
// clock diff. Changes made on the server side are pushed to every client as
// versioned diffs, gathered for a short interval (WithPushInterval). WhenArgs
// and Err work remotely too, and Log logs on the source.
//
// # Request and response
//
// Worker.Request (or Request, for a local machine too) is a sync-over-async
// call: it adds a state with a fresh correlation ID and returns the
// arguments of the answer, the first activation of another state that
// carries the same ID, or ctx.Err() at the deadline:
//
//	res, err := c.Worker.Request(ctx, "Requested", am.A{"order": o}, "Done")
//	if err != nil {
//		// 504: nothing is left waiting, here or on the server
//	}
//
// On the server side, the handler reads the ID with CorrelationID and
// answers, at once or from any goroutine later, by adding the until state
// with Correlated(id, args). An answer given in the handler costs no extra
// round trip. Server.Abandoned and WithLateAnswer recognise answers that
// came after their caller gave up.
//
// To wait for a state with a deadline, use am.WaitFor (or am.Wait): a bare
// When channel also closes when its context ends, so a select on it and on
// ctx.Done() can't tell success from a deadline.
//
// # Consistency
//
// The mirror applies updates in version order, buffering one that overtakes
// another, and resynchronises the whole clock (Worker.Resync) when a version
// stays missing. A mirror is never ahead of the source; it lags by at most the
// push interval plus the network. A state that was deactivated and activated
// again between two updates is not missed: tick deltas tell When, WhenNot and
// state contexts that it passed through the awaited condition.
//
// # Control machines
//
// Server.Mach and Client.Mach are the components' own state machines (schemas
// in states/server and states/client): wait on RpcReady or Ready, react to
// Exception with ErrNetwork or ErrRpc, ClientConnected, Disconnected, Payload.
//
// # Lifecycle and safety
//
// Every method is safe for concurrent use. Server.Stop and Client.Stop return
// once every goroutine they started is gone. Bad input from a peer (unknown
// state index, malformed message, unknown method, a vanished client) fails
// that one call with an error; the process and the other sessions keep
// running. The wire protocol is written down in PROTOCOL.md.
package rpc
