// Package workspace holds no code, only the test that makes the README's test
// command cover the whole repository.
//
// The repository is a Go workspace (go.work at the root) of several modules:
// the library itself, benchmark_grpc (which needs gRPC and protobuf, kept out
// of the library's go.mod so that library users fetch the standard library
// only), and tools (the pinned task runner and staticcheck). A `./...` pattern
// stops at a directory holding its own go.mod, even in workspace mode, so
// `go test -race -count=1 ./...` at the root would skip benchmark_grpc. The
// test in this package finds every nested module under the root and runs
// `go test -count=1 ./...` inside it with the same race and short settings,
// failing with the nested output when any of its tests fail.
package workspace
