package machinetest

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	am "github.com/arpc-go/arpc/pkg/machine"
)

// hScenario is one subtest of the Handlers group.
type hScenario struct {
	name string
	fn   func(t *testing.T, f HandlerFactory)
}

// buildH calls the handler factory and checks it returned a target.
func buildH(t *testing.T, f HandlerFactory, s am.Struct, names am.S, h any, timeout time.Duration) am.Api {
	t.Helper()
	m := f(t, s, names, h, timeout)
	if m == nil {
		t.Fatal("machinetest: HandlerFactory returned nil")
	}
	return m
}

// vetoHandlers refuse A and accept B.
type vetoHandlers struct {
	aEnters atomic.Int32
}

func (h *vetoHandlers) AEnter(*am.Event) bool {
	h.aEnters.Add(1)
	return false
}

func (h *vetoHandlers) BEnter(*am.Event) bool { return true }

// followHandlers queue B from AState, and C from BState.
type followHandlers struct{}

func (h *followHandlers) AState(e *am.Event) { e.Machine.Add1(sB, nil) }
func (h *followHandlers) BState(e *am.Event) { e.Machine.Add1(sC, am.A{"from": "BState"}) }

// panicHandlers panic in AEnter with errMachinetest.
type panicHandlers struct{}

func (h *panicHandlers) AEnter(*am.Event) bool { panic(errMachinetest) }

// slowHandlers overrun the handler timeout in AEnter (on the first call)
// and count how many handlers run at once.
type slowHandlers struct {
	overrun          time.Duration
	entered          chan struct{}
	once             sync.Once
	running, maxSeen atomic.Int32
}

func (h *slowHandlers) track(fn func()) {
	n := h.running.Add(1)
	for {
		mx := h.maxSeen.Load()
		if n <= mx || h.maxSeen.CompareAndSwap(mx, n) {
			break
		}
	}
	fn()
	h.running.Add(-1)
}

func (h *slowHandlers) AEnter(*am.Event) bool {
	h.track(func() {
		first := false
		h.once.Do(func() { first = true })
		if first {
			close(h.entered)
			// the handler's own work overruns the timeout: this is the
			// behaviour under test, not a wait for a condition
			time.Sleep(h.overrun)
		}
	})
	return true
}

func (h *slowHandlers) BEnter(*am.Event) bool {
	h.track(func() {})
	return true
}

// handlerCases cover mutation semantics that need handlers on the source
// machine.
var handlerCases = []hScenario{
	{"NegotiationVeto", func(t *testing.T, f HandlerFactory) {
		h := &vetoHandlers{}
		m := buildH(t, f, structN(), namesN(), h, 0)
		tick := m.Tick(sA)
		res(t, m.Add1(sA, nil), am.Canceled, "Add1(A) vetoed by AEnter")
		if n := h.aEnters.Load(); n != 1 {
			t.Fatalf("AEnter ran %d times, want 1", n)
		}
		active(t, m)
		if got := m.Tick(sA); got != tick {
			t.Fatalf("Tick(A) = %d after a veto, want %d", got, tick)
		}
		// a veto vetoes the whole transition, B included
		res(t, m.Add(am.S{sA, sB}, nil), am.Canceled, "Add(A, B) vetoed by AEnter")
		active(t, m)
		res(t, m.Add1(sB, nil), am.Executed, "Add1(B)")
		active(t, m, sB)
		finish(t, m)
	}},
	{"OwnMutations", func(t *testing.T, f HandlerFactory) {
		m := buildH(t, f, structN(), namesN(), &followHandlers{}, 0)
		// a mutation returns after the mutations its handlers queued, and
		// theirs, have run
		res(t, m.Add1(sA, nil), am.Executed, "Add1(A)")
		active(t, m, sA, sB, sC)
		timeEq(t, m.Time(am.S{sA, sB, sC, sD}), am.Time{1, 1, 1, 0}, "Time(A B C D)")
		finish(t, m)
	}},
	{"PanicException", func(t *testing.T, f HandlerFactory) {
		m := buildH(t, f, structN(), namesN(), &panicHandlers{}, 0)
		w := m.WhenErr(context.Background())
		res(t, m.Add1(sA, nil), am.Canceled, "Add1(A) with a panicking AEnter")
		closedWithin(t, w, "WhenErr after a handler panic")
		active(t, m, am.Exception)
		if err := m.Err(); err == nil {
			t.Fatal("Err() = nil after a handler panic")
		} else {
			contains(t, err.Error(), errMachinetest.Error(), "Err() after a handler panic")
		}
		// the machine keeps working
		res(t, m.Add1(sB, nil), am.Executed, "Add1(B) after the panic")
		active(t, m, sB, am.Exception)
		finish(t, m)
	}},
	{"Timeout", func(t *testing.T, f HandlerFactory) {
		const timeout = 20 * time.Millisecond
		h := &slowHandlers{overrun: 10 * timeout, entered: make(chan struct{})}
		m := buildH(t, f, structN(), namesN(), h, timeout)
		aRes := make(chan am.Result, 1)
		go func() { aRes <- m.Add1(sA, nil) }()
		closedWithin(t, h.entered, "AEnter entered")
		// B arrives while the overdue AEnter still runs: it waits for it,
		// handlers never overlap; a local machine queues it (Queued), a
		// mirror waits for its result (Executed)
		if r := m.Add1(sB, nil); r != am.Queued && r != am.Executed {
			t.Fatalf("Add1(B) during an overdue handler: %v, want queued or executed", r)
		}
		var a am.Result
		select {
		case a = <-aRes:
		case <-time.After(Timeout):
			t.Fatal("Add1(A) with an overdue handler never returned")
		}
		res(t, a, am.Canceled, "Add1(A) whose AEnter timed out")
		if n := h.maxSeen.Load(); n != 1 {
			t.Fatalf("%d handlers ran at once, want 1", n)
		}
		// B ran after the overdue handler returned; A was canceled
		closedWithin(t, m.When1(sB, nil), "When1(B)")
		active(t, m, sB)
		res(t, m.Add1(sA, nil), am.Executed, "Add1(A) again: the machine keeps working")
		active(t, m, sA, sB)
		finish(t, m)
	}},
}
