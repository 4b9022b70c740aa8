// Command quickstart runs an aRPC server and client in one process, on
// loopback: the client asks the remote machine for work with Mutate, a handler on
// the server starts it, and the client waits on its local mirror with When1 and
// a deadline, as an HTTP handler in front of asynchronous work would.
package main
