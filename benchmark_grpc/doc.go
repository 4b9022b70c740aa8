// Package benchgrpc compares aRPC with gRPC, and both with a plain in-process call, on one shared
// workload: subscribe, get, process.
//
// A Worker holds a value, one of three. Calling the operation that matches the value counts a
// completion, picks a new value and notifies the subscriber; calling a wrong operation counts an
// error. A client cycle reads the value, calls the matching operation and waits for the notification
// of the next value. Each transport is a Client running that cycle:
//
//   - LocalClient calls the Worker directly (the floor for the logic itself);
//   - the aRPC client mirrors a worker state machine served by an aRPC Server, reads the value from
//     its local mirror and mutates remotely (one call per cycle);
//   - UnaryClient is gRPC as users write it: a server-streaming Subscribe, unary GetValue and CallOp;
//   - BidiClient is gRPC at its best: one bidirectional stream carrying ops one way, values back.
//
// The remote transports are measured through a metering Proxy on loopback, which counts the bytes on
// the wire both ways, and their messages are counted on both ends (CallCounter for gRPC, CallCount for
// aRPC). The benchmarks live in this package's tests; README.md explains the workload, the caveats and
// how to run them (`go tool task bench-grpc`).
package benchgrpc
