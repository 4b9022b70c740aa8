// Command nats serves a state machine over NATS with aRPC: it starts an
// embedded NATS server with JetStream in a temporary directory (or uses
// the cluster at -nats / $NATS_URL), serves a machine from a leader and a
// standby, runs mirrors that share one connection, registers a durable
// wait, hands over leadership with a graceful shutdown, and shows that the
// mirrors and the wait carry on.
//
//	go run ./examples/nats
//	go run ./examples/nats -nats nats://127.0.0.1:4222
//
// With -gateway it runs the HTTP → message queue → HTTP gateway over NATS
// instead: each GET /square?n=7 is one rpc.Request on a mirror, answered by
// the backend machine's handler through the leader, or a 504 at the
// request's deadline.
//
//	go run ./examples/nats -gateway
//
// It lives in its own module so that the library module doesn't depend on
// NATS.
package main
