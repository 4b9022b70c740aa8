// Command exchange is sync over async with pkg/exchange: one HTTP request
// fans out to three asynchronous backends (stock, payment, shipping) over
// in-process queues, waits for all three replies under the request's
// deadline, and answers 200 with the combined results. When a backend fails
// it answers 502, when one stays silent past the deadline 504; either way it
// compensates the backends that did answer, and the unanswered correlation ids
// stay tagged so that a reply arriving later is recognised, acknowledged and
// compensated.
//
// Run it with
//
//	go run ./examples/exchange
//
// It starts the backends and an HTTP server on an ephemeral loopback port,
// sends four requests (all answer; payment fails; shipping is silent; shipping
// is slow and answers after the 504) and prints what each part does.
package main
