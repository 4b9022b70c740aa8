package machinetest

import (
	"slices"
	"strings"
	"testing"
	"time"

	am "github.com/arpc-go/arpc/pkg/machine"
)

// Timeout bounds every wait of the suite that depends on a mutation or a
// context: a channel that has not closed by then fails the test.
const Timeout = 5 * time.Second

// Factory builds a fresh target with schema s and the ordered state names
// names (which include am.Exception), verifies the names, and registers the
// target's cleanup with t.Cleanup. The suite calls it once per subtest, from
// the subtest's goroutine, and passes a schema map it never touches again.
type Factory func(t *testing.T, s am.Struct, names am.S) am.Api

// scenario is one subtest of the suite.
type scenario struct {
	name string
	fn   func(t *testing.T, f Factory)
}

// groups lists the suite's subtests, grouped by concept. Each group is
// declared in the file named after it.
func groups() []struct {
	name  string
	cases []scenario
} {
	return []struct {
		name  string
		cases []scenario
	}{
		{"Basics", basicsCases},
		{"Relations", relationsCases},
		{"Auto", autoCases},
		{"Waiting", waitingCases},
		{"Clocks", clocksCases},
		{"StateCtx", stateCtxCases},
		{"Errors", errorsCases},
		{"Unknown", unknownCases},
		{"Schema", schemaCases},
		{"Dispose", disposeCases},
	}
}

// Run runs the read-and-wait suite against targets built by newTarget, one
// subtest per scenario (named Group/ScenarioNN_What). It does not call
// t.Parallel; newTarget may be slow (a network round trip) without affecting
// correctness. Run must be called from the test's goroutine.
func Run(t *testing.T, newTarget Factory) {
	t.Helper()
	if newTarget == nil {
		t.Fatal("machinetest: nil Factory")
	}
	for _, g := range groups() {
		t.Run(g.name, func(t *testing.T) {
			for _, c := range g.cases {
				t.Run(c.name, func(t *testing.T) { c.fn(t, newTarget) })
			}
		})
	}
}

// Fixture names shared by the scenarios.
const (
	sA = "A"
	sB = "B"
	sC = "C"
	sD = "D"
	// unknownState is never part of any schema.
	unknownState = "Unknown"
)

// namesN are the verified names of fixtures over A B C D.
func namesN() am.S { return am.S{sA, sB, sC, sD, am.Exception} }

// structN is fixture N: states A B C D, no relations.
func structN() am.Struct {
	return am.Struct{sA: {}, sB: {}, sC: {}, sD: {}}
}

// structR is fixture R: A{Auto, Require C}, B{Multi, Add C}, C{After D},
// D{Add C B}.
func structR() am.Struct {
	return am.Struct{
		sA: {Auto: true, Require: am.S{sC}},
		sB: {Multi: true, Add: am.S{sC}},
		sC: {After: am.S{sD}},
		sD: {Add: am.S{sC, sB}},
	}
}

// newN builds fixture N with the given states activated by one Add.
func newN(t *testing.T, f Factory, active ...string) am.Api {
	t.Helper()
	m := build(t, f, structN(), namesN())
	if len(active) > 0 {
		res(t, m.Add(am.S(active), nil), am.Executed, "setup Add")
	}
	return m
}

// build calls the factory and checks it returned a target.
func build(t *testing.T, f Factory, s am.Struct, names am.S) am.Api {
	t.Helper()
	m := f(t, s, names)
	if m == nil {
		t.Fatal("machinetest: Factory returned nil")
	}
	return m
}

// finish disposes m and waits for the disposal to complete.
func finish(t *testing.T, m am.Api) {
	t.Helper()
	m.Dispose()
	closedWithin(t, m.WhenDisposed(), "WhenDisposed")
}

// res checks a mutation result.
func res(t *testing.T, got, want am.Result, what string) {
	t.Helper()
	if got != want {
		t.Fatalf("%s: result %v (%d), want %v (%d)", what, got, got, want, want)
	}
}

// active checks that exactly the given states are active, both by
// ActiveStates (as a set, without duplicates) and by Is1 of every name.
func active(t *testing.T, m am.Api, want ...string) {
	t.Helper()
	got := m.ActiveStates()
	gs := slices.Clone(got)
	slices.Sort(gs)
	ws := slices.Clone(want)
	slices.Sort(ws)
	if !slices.Equal(gs, ws) {
		t.Fatalf("ActiveStates() = %v, want %v (any order)", got, want)
	}
	for _, name := range m.StateNames() {
		if is, w := m.Is1(name), slices.Contains(want, name); is != w {
			t.Fatalf("Is1(%s) = %v, want %v (active %v)", name, is, w, got)
		}
	}
}

// closedNow fails unless ch is already closed.
func closedNow(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	default:
		t.Fatalf("%s: channel should already be closed", what)
	}
}

// open fails if ch is closed.
func open(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
		t.Fatalf("%s: channel should still be open", what)
	default:
	}
}

// closedWithin waits up to Timeout for ch to close.
func closedWithin(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	if ch == nil {
		t.Fatalf("%s: nil channel", what)
	}
	timer := time.NewTimer(Timeout)
	defer timer.Stop()
	select {
	case <-ch:
	case <-timer.C:
		t.Fatalf("%s: channel not closed within %v", what, Timeout)
	}
}

// timeEq checks a Time value.
func timeEq(t *testing.T, got, want am.Time, what string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Fatalf("%s = %v, want %v", what, got, want)
	}
}

// sEq checks a list of names, in order.
func sEq(t *testing.T, got, want am.S, what string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Fatalf("%s = %v, want %v", what, got, want)
	}
}

// strEq checks a string, showing both sides on failure.
func strEq(t *testing.T, got, want, what string) {
	t.Helper()
	if got != want {
		t.Fatalf("%s:\n got: %q\nwant: %q", what, got, want)
	}
}

// contains checks a substring.
func contains(t *testing.T, s, sub, what string) {
	t.Helper()
	if !strings.Contains(s, sub) {
		t.Fatalf("%s: %q does not contain %q", what, s, sub)
	}
}
