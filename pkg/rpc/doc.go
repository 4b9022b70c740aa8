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
// String, Inspect...) are answered locally by an am.Model, the engine's own
// read-and-wait model, which the client feeds with the server's clock diffs,
// so they behave exactly as on a local machine.
// Mutations (Add, Remove, Set, AddErr, AddErrState) run on the server, which
// resolves relations and runs handlers; each returns the source's result once
// the mirror reflects what the mutation caused, because its reply carries the
// clock diff. Changes made on the server side are pushed to every client as
// versioned diffs, gathered for a short interval (WithPushInterval). WhenArgs
// and Err work remotely too, and Log logs on the source.
//
// # Connecting, mutating, stopping
//
// Listen starts a server and Dial returns a connected client whose mirror
// is ready (or an error wrapping ErrNetwork or ErrSchemaMismatch, naming the
// states that differ). Worker.Mutate takes a context like
// (*am.Machine).Mutate and returns this call's own error: when ctx ends
// first it returns within milliseconds, and the server drops the mutation
// if it has not started yet.
//
//	srv, err := rpc.Listen(ctx, "127.0.0.1:0", source)
//	c, err := rpc.Dial(ctx, srv.Addr, schema, names)
//	defer c.Close()
//	res, err := c.Worker.Mutate(reqCtx, am.MutationAdd, am.S{"Requested"}, args)
//	...
//	err = srv.Shutdown(ctx) // in-flight mutations finish; clients see ErrStopped
//
// A generic tool that doesn't know the machine asks the server first:
// Describe returns the schema and ordered state names Dial needs (without
// opening a session), and DialAny does both steps. A server started with
// WithIntrospection(false) refuses with ErrIntrospectionOff. Server.Stats
// counts sessions, mutations by result, updates, bytes and errors by code;
// Client.Stats reads the same counters remotely, and Client.ActiveArgs the
// arguments of the active states. The arpc command (cmd/arpc) is built on
// them.
//
// # Failures
//
// A client reconnects by itself (WithReconnect: on by default, jittered
// exponential backoff). While it is away, Client.Mach loses Ready and shows
// Disconnected (Connecting while it retries), reads of the mirror may be
// stale, and Mutate fails at once with ErrNotReady (nothing was sent).
// Back on the same server process, the session resumes from the last
// version the mirror applied; after a server restart the
// mirror resyncs the whole clock, and its ticks never decrease. Registered
// waits (When*, WhenArgs) carry over either way.
//
// A mutation whose connection failed before its reply returns an error
// wrapping ErrNetwork: the outcome is unknown. With WithRetries the client
// sends it again, with the same request ID, once the session has resumed:
// the server runs each request ID at most once and answers every attempt
// with that one outcome. Server.Shutdown lets the mutations in flight finish
// and reach their callers, then says goodbye: the calls still pending fail
// with ErrStopped, which means the mutation did not run. Keepalives
// (WithClientKeepalive, WithServerKeepalive) detect a peer that vanished
// without closing its connection.
//
// A client's bad input (an unknown state, a malformed message) fails that
// client's call only: the source never sees it.
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
// # Exactly one winner
//
// Worker.MutateIf sends a mutation with a precondition on the source's
// clock, checked by the source atomically with the mutation, so that of
// many clients that saw the same activation of a state and race to consume
// it, exactly one succeeds and the others get am.ErrPrecondition. am.Select
// builds on it: a Take case over a mirror waits for a state and consumes it,
// or loses that activation and waits again:
//
//	sel, err := am.Select(ctx, am.Take(c.Worker, "Job", nil), am.Timer(time.Second))
//
// # Consistency
//
// Each session has one ordered stream of versioned updates: the update that
// carries a mutation's effect comes right before its reply, and pushes of
// other changes follow in the same order, so the mirror applies each as it
// arrives. A mirror is never ahead of the source; it lags by at most the
// push interval plus the network. A state that was deactivated and
// activated again between two updates is not missed: tick deltas tell When,
// WhenNot and state contexts that it passed through the awaited condition.
//
// # Many clients
//
// A change of the source costs its mutating caller the same whatever the
// number of clients: one server goroutine sends the changes, merged over the
// push interval (WithPushInterval), one diff per session, and never waits
// for a client. A client that does not keep up (a whole flow-control window
// of updates unhandled) is passed over and gets one merged diff when it
// catches up, so it delays no one else. An idle connection holds one
// goroutine, its read loop, and a 512-byte read buffer. A client that
// needs only some states mirrors just those (WithSyncStates, or
// WithSkipStates): the server sends it no other change, and a change of
// states it does not follow costs its session nothing.
//
// # Security
//
// WithServerTLS and WithClientTLS put both ends on TLS (mutual TLS with
// client certificates). WithAuthenticator checks each connection's
// credentials (a bearer token from WithToken, the TLS client certificate: see
// TokenAuthenticator and CertAuthenticator) in the handshake, before the
// server decodes anything else the peer sends or creates a session; a
// refused peer gets ErrUnauthenticated and is disconnected. The identity it
// returns names the client's sessions and addresses its payloads, and
// WithPolicy says per identity which states it may mutate (others fail with
// ErrForbidden, not run) and which it may observe (others stay at tick 0 in
// its mirror). Every resource a peer can make the server spend is bounded:
// frame size, gob decoding (by the body's size), handshake, idle and write
// timeouts, connections, sessions per identity and in all; Server.Stats
// counts what was refused. README.md ("Security") has the threat model and
// the defaults.
//
// # Control machines
//
// Server.Mach and Client.Mach are the components' own state machines (schemas
// in states/server and states/client): wait on RpcReady or Ready, react to
// Exception with ErrNetwork or ErrRpc, ClientConnected, Disconnected, Payload.
// The asyncmachine-go v0.7 names (ClientConn, ClientDisconn, HandshakeDone,
// Handshaking, ErrOnClient) are there too.
//
// # Lifecycle and safety
//
// Every method is safe for concurrent use. Server.Shutdown, Server.Close and
// Client.Close return once every goroutine they started is gone. Bad input
// from a peer (unknown state index, malformed message, unknown method, a
// vanished client) fails that one call with an error; the process and the
// other sessions keep running. The wire protocol is written down in
// PROTOCOL.md.
package rpc
