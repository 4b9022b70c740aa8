// Command orders serves a small order desk machine over aRPC until Ctrl-C,
// for trying cmd/arpc against something live:
//
//	go run ./examples/orders -addr 127.0.0.1:7070
//	go run ./cmd/arpc inspect 127.0.0.1:7070
//	go run ./cmd/arpc request 127.0.0.1:7070 Requested Done --arg order=7
//	go run ./cmd/arpc web 127.0.0.1:7070
//
// The desk is Open; a Requested order makes it Working for a moment (Idle
// otherwise), then Done answers the order's request with its result.
// Closed closes the desk (and Open opens it again). With -token T, clients
// must authenticate with T (arpc --token T).
package main
