package machine_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	am "github.com/arpc-go/arpc/pkg/machine"
)

// deadline bounds every wait on a condition in these tests.
const deadline = 5 * time.Second

// namesN are the verified names of fixture N (and of R).
var namesN = am.S{"A", "B", "C", "D", am.Exception}

// structN is fixture N: states A B C D without relations.
func structN() am.Struct {
	return am.Struct{"A": {}, "B": {}, "C": {}, "D": {}}
}

// structR is fixture R: A{Auto, Require C}, B{Multi, Add C}, C{After D},
// D{Add C B}.
func structR() am.Struct {
	return am.Struct{
		"A": {Auto: true, Require: am.S{"C"}},
		"B": {Multi: true, Add: am.S{"C"}},
		"C": {After: am.S{"D"}},
		"D": {Add: am.S{"C", "B"}},
	}
}

// newM builds a machine for s, verifies names (when given), binds handlers
// (when non-nil) and activates the given states. Cleanup disposes it.
func newM(t *testing.T, s am.Struct, names am.S, handlers any, opts *am.Opts, active ...string) *am.Machine {
	t.Helper()
	m := am.New(context.Background(), s, opts)
	t.Cleanup(func() {
		m.Dispose()
		select {
		case <-m.WhenDisposed():
		case <-time.After(deadline):
			t.Error("cleanup: WhenDisposed not closed")
		}
	})
	if names != nil {
		require.NoError(t, m.VerifyStates(names))
	}
	if len(active) > 0 {
		require.Equal(t, am.Executed, m.Add(am.S(active), nil), "setup Add(%v)", active)
	}
	if handlers != nil {
		require.NoError(t, m.BindHandlers(handlers))
	}
	return m
}

// newN builds fixture N with the given states active.
func newN(t *testing.T, active ...string) *am.Machine {
	t.Helper()
	return newM(t, structN(), namesN, nil, nil, active...)
}

// finish disposes m and waits for WhenDisposed.
func finish(t *testing.T, m *am.Machine) {
	t.Helper()
	m.Dispose()
	waitClosed(t, m.WhenDisposed(), "WhenDisposed")
}

// waitClosed fails unless ch closes within the deadline.
func waitClosed(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	require.NotNil(t, ch, what)
	timer := time.NewTimer(deadline)
	defer timer.Stop()
	select {
	case <-ch:
	case <-timer.C:
		t.Fatalf("%s: not closed within %v", what, deadline)
	}
}

// isClosed tells, without blocking, whether ch is closed.
func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// assertActive checks that exactly want is active (any order, no
// duplicates) and that Is1 agrees for every state.
func assertActive(t *testing.T, m *am.Machine, want ...string) {
	t.Helper()
	got := m.ActiveStates()
	assert.ElementsMatch(t, want, got, "ActiveStates()")
	for _, s := range m.StateNames() {
		assert.Equal(t, slices.Contains(want, s), m.Is1(s), "Is1(%s)", s)
	}
}

// assertConsistent checks the tick invariant: a state is active iff its
// tick is odd, and ActiveStates lists each active state once.
func assertConsistent(t *testing.T, m *am.Machine) {
	t.Helper()
	act := m.ActiveStates()
	seen := map[string]bool{}
	for _, s := range act {
		assert.False(t, seen[s], "ActiveStates() %v lists %s twice", act, s)
		seen[s] = true
	}
	for _, s := range m.StateNames() {
		odd := m.Tick(s)%2 == 1
		assert.Equal(t, odd, m.Is1(s), "Is1(%s) vs tick %d", s, m.Tick(s))
		assert.Equal(t, odd, seen[s], "ActiveStates() %v vs tick %d of %s", act, m.Tick(s), s)
	}
}

// logCapture collects formatted log lines of a machine.
type logCapture struct {
	mu    sync.Mutex
	lines []string
}

// capture installs a logger on m at level lvl and returns the capture.
func capture(m *am.Machine, lvl am.LogLevel) *logCapture {
	c := &logCapture{}
	m.SetLogger(func(_ am.LogLevel, msg string, args ...any) {
		c.mu.Lock()
		defer c.mu.Unlock()
		c.lines = append(c.lines, fmt.Sprintf(msg, args...))
	})
	m.SetLogLevel(lvl)
	return c
}

// text returns all captured lines joined by newlines.
func (c *logCapture) text() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return strings.Join(c.lines, "\n")
}

// has asserts that some captured line contains sub.
func (c *logCapture) has(t *testing.T, sub string) {
	t.Helper()
	assert.Contains(t, c.text(), sub)
}

// recorder is a handler struct with every handler of states A-D (the
// methods are in recorder_methods_test.go). It records the names of the
// handlers it runs, in order; negotiation handlers named in cancel return
// false; hooks run inside the named handler before it returns.
type recorder struct {
	mu     sync.Mutex
	calls  []string
	args   map[string]am.A
	cancel map[string]bool
	hooks  map[string]func(e *am.Event)
}

// newRecorder returns a recorder that cancels in the named handlers.
func newRecorder(cancel ...string) *recorder {
	r := &recorder{
		args:   map[string]am.A{},
		cancel: map[string]bool{},
		hooks:  map[string]func(e *am.Event){},
	}
	for _, c := range cancel {
		r.cancel[c] = true
	}
	return r
}

// on sets a hook for a handler name; call before binding.
func (r *recorder) on(name string, fn func(e *am.Event)) *recorder {
	r.hooks[name] = fn
	return r
}

func (r *recorder) record(name string, e *am.Event) {
	r.mu.Lock()
	r.calls = append(r.calls, name)
	r.args[name] = e.Args
	hook := r.hooks[name]
	r.mu.Unlock()
	if hook != nil {
		hook(e)
	}
}

// neg records a negotiation handler; false cancels when configured.
func (r *recorder) neg(name string, e *am.Event) bool {
	r.record(name, e)
	return !r.cancel[name]
}

// fin records a final handler.
func (r *recorder) fin(name string, e *am.Event) {
	r.record(name, e)
}

// take returns the recorded calls and forgets them.
func (r *recorder) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.calls
	r.calls = nil
	return c
}

// argsOf returns the args seen by the last call of the named handler.
func (r *recorder) argsOf(name string) am.A {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.args[name]
}

// count returns how many times name appears in calls.
func count(calls []string, name string) int {
	n := 0
	for _, c := range calls {
		if c == name {
			n++
		}
	}
	return n
}

// fields splits a space-separated list (a shorthand for expected orders).
func fields(s string) []string { return strings.Fields(s) }

// tracer records hook calls; the embedded NoOpTracer supplies the rest.
type tracer struct {
	am.NoOpTracer
	mu       sync.Mutex
	ends     []*am.Transition
	inits    []*am.Transition
	queueEnd int
}

func (tr *tracer) TransitionInit(t *am.Transition) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.inits = append(tr.inits, t)
}

func (tr *tracer) TransitionEnd(t *am.Transition) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.ends = append(tr.ends, t)
}

func (tr *tracer) QueueEnd(*am.Machine) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.queueEnd++
}

func (tr *tracer) counts() (inits, ends, queueEnds int) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return len(tr.inits), len(tr.ends), tr.queueEnd
}
