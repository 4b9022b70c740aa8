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

// HandlerFactory builds a fresh target like Factory, but its source machine
// (the one that runs transitions: the target itself, or the server behind a
// mirror) has handlers bound (a pointer to a struct of handler methods, as
// for am.Machine.BindHandlers) and HandlerTimeout set to timeout. A zero
// timeout means the scenario doesn't depend on it: the default or no
// timeout both do. Handlers run on the source machine: their Event.Machine
// is that machine.
type HandlerFactory func(t *testing.T, s am.Struct, names am.S, handlers any,
	timeout time.Duration) am.Api

// Option configures Run.
type Option func(*config)

type config struct {
	handlers HandlerFactory
	skip     map[string]string
}

// WithHandlers runs the handler scenarios (group Handlers: a negotiation
// veto, a handler's own mutations, Exception from a panic, a handler
// timeout) against targets built by f. Without it they are skipped.
func WithHandlers(f HandlerFactory) Option {
	return func(c *config) { c.handlers = f }
}

// Skip skips the named scenarios ("Group/Name", e.g. "Handlers/Timeout")
// with reason, for a target that can't support them yet. Naming a scenario
// that doesn't exist fails the run, so a skip list can't go stale.
func Skip(reason string, names ...string) Option {
	return func(c *config) {
		for _, n := range names {
			c.skip[n] = reason
		}
	}
}

// Run runs the suite against targets built by newTarget, one subtest per
// scenario (named Group/ScenarioNN_What). It does not call t.Parallel;
// newTarget may be slow (a network round trip) without affecting
// correctness. Run must be called from the test's goroutine.
func Run(t *testing.T, newTarget Factory, opts ...Option) {
	t.Helper()
	if newTarget == nil {
		t.Fatal("machinetest: nil Factory")
	}
	c := config{skip: map[string]string{}}
	for _, o := range opts {
		o(&c)
	}
	known := map[string]bool{}
	for _, g := range groups() {
		for _, sc := range g.cases {
			known[g.name+"/"+sc.name] = true
		}
	}
	for _, sc := range handlerCases {
		known["Handlers/"+sc.name] = true
	}
	for n := range c.skip {
		if !known[n] {
			t.Errorf("machinetest: Skip names an unknown scenario %q", n)
		}
	}
	run := func(t *testing.T, group, name string, fn func(t *testing.T)) {
		t.Run(name, func(t *testing.T) {
			if reason, ok := c.skip[group+"/"+name]; ok {
				t.Skip("machinetest: skipped by the target: " + reason)
			}
			fn(t)
		})
	}
	for _, g := range groups() {
		t.Run(g.name, func(t *testing.T) {
			for _, sc := range g.cases {
				run(t, g.name, sc.name, func(t *testing.T) { sc.fn(t, newTarget) })
			}
		})
	}
	t.Run("Handlers", func(t *testing.T) {
		for _, sc := range handlerCases {
			run(t, "Handlers", sc.name, func(t *testing.T) {
				if c.handlers == nil {
					t.Skip("machinetest: the target gave no HandlerFactory (WithHandlers)")
				}
				sc.fn(t, c.handlers)
			})
		}
	})
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
