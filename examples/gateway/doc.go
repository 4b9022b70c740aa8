// Command gateway is sync over async with aRPC: a net/http server in front of
// a backend state machine that answers asynchronously. Each HTTP request is
// one Worker.Request under the HTTP request's deadline, so the handler
// answers 200 with that request's own result, or 504 Gateway Timeout at the
// deadline, and leaves nothing waiting behind it: no goroutine, no channel in
// a map, no wait on the server.
//
// The backend is an *am.Machine served by rpc.Listen on an ephemeral loopback
// port, and the gateway holds its mirror through rpc.Dial, all in one
// process. The handler of Requested hands each request to a pool of workers
// and returns at once; a worker computes the result (the square of the
// request's n) and answers by adding Done with the request's correlation ID.
// Requests can ask the backend to lose them (?silent=1, never answered) or to
// be slow (?delay=300ms). The server recognises an answer that comes after
// its caller gave up (WithLateAnswer) and counts it; a worker skips a queued
// job whose caller has gone already (Server.Abandoned).
//
// Run it with
//
//	go run ./examples/gateway
//
// It starts the backend, the aRPC server and client, and an HTTP server on
// an ephemeral loopback port, sends four requests (answered; lost by the
// backend; answered after its deadline; queued behind the slow one until its
// caller gave up) and prints what each part did.
//
// GET /square?n=7&timeout=250ms asks for 7². timeout is the request's
// deadline (default 1s, at most 10s); silent=1 and delay= are the input flags
// above. The answer is 200 with the result, 504 at the deadline, 503 when the
// backend is full, 400 for bad input.
//
// Over NATS. The same gateway with the backend behind NATS (a leader serving
// the machine, the HTTP handler holding an arpcnats mirror) is
//
//	go run ./examples/nats -gateway
//
// It lives with the NATS example, in a module of its own, so that this
// module, the library's, needs no NATS client.
package main
