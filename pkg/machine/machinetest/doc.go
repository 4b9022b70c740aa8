// Package machinetest is the shared read-and-wait behaviour suite of the
// state-machine engine (package machine).
//
// The suite drives a target only through the [machine.Api] interface, so the
// same assertions run against a local *machine.Machine and against a remote
// mirror (an RPC worker reached over a pipe or TCP loopback). Passing it on
// both kinds of target is what makes "transparent RPC" a tested claim.
//
// A caller supplies a [Factory] that builds a fresh target for a schema and a
// verified list of state names, and registers the target's cleanup with
// t.Cleanup. [Run] then runs one subtest per behaviour scenario of the engine
// spec that a machine without handlers can show: mutations and their
// results, relations, Auto states, the When* family, clocks, state contexts,
// errors, unknown state names, schema reads and disposal.
//
// Contract with the target:
//   - A mutation (Add, Remove, Set, AddErr, ...) returns only after the
//     source machine has processed it, including the Auto transitions of the
//     same queue pass, and reads made after it returns already reflect it.
//   - Errors are compared by their message only (err.Error()), because a
//     remote target transports the text of an error, not its identity. Tests
//     of the local engine additionally check errors.Is in package machine.
//   - Every wait that depends on a mutation uses a deadline ([Timeout]) and
//     fails the test instead of hanging.
//
// Usage, for the local engine (a remote target dials its server in the
// factory instead):
//
//	func TestSuite(t *testing.T) {
//		machinetest.Run(t, func(t *testing.T, s am.Struct, names am.S) am.Api {
//			m := am.New(context.Background(), s, nil)
//			if err := m.VerifyStates(names); err != nil {
//				t.Fatal(err)
//			}
//			t.Cleanup(func() { m.Dispose(); <-m.WhenDisposed() })
//			return m
//		})
//	}
//
// Run is not safe to call from several goroutines on one *testing.T; targets
// are used from the subtest's goroutine plus, where a scenario says so, one
// helper goroutine that mutates concurrently with a wait.
//
// The package uses only the standard library and package testing.
package machinetest
