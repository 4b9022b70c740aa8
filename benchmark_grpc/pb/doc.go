// Package pb holds the protobuf messages and gRPC services of the benchmark, generated from
// worker.proto by `go tool task proto` (protoc with the pinned protoc-gen-go and protoc-gen-go-grpc).
// Do not edit the generated files; change worker.proto and regenerate.
package pb
