// Command quickstart runs an aRPC server and client in one process, on
// loopback: the client sends a Request to the remote machine, a handler on
// the server starts asynchronous work, and the work answers that request by
// its correlation ID; the client gets the answer, or an error at its
// deadline, as an HTTP handler in front of asynchronous work would.
package main
