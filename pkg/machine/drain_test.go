package machine

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"testing/synctest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The trampolines' return PCs were calibrated: all set and all distinct, so
// no two markers or digits can be confused.
func TestDrainCalibration(t *testing.T) {
	seen := map[uintptr]string{}
	check := func(pc uintptr, what string) {
		t.Helper()
		require.NotZero(t, pc, what)
		if prev, ok := seen[pc]; ok {
			t.Fatalf("%s and %s share the PC %#x", what, prev, pc)
		}
		seen[pc] = what
	}
	check(drainPCs.begin, "begin")
	check(drainPCs.end, "end")
	for d, pc := range drainPCs.digit {
		check(pc, "digit "+string("0123456789abcdef"[d]))
	}
	assert.False(t, drainsOnStack(1), "no drain outside the engine")
}

// Every digit decodes: ids covering all 16 digits, 1 to 16 digits long,
// are found on the stack inside their own session only.
func TestDrainIDsRoundTrip(t *testing.T) {
	ids := []uint64{1, 0xf, 0x10, 0x123456789abcdef0, 0xfedcba9876543210, ^uint64(0), 0x8000000000000000}
	for _, id := range ids {
		var in, other bool
		probe := hop(func(*Machine, uint64, *rootState, uint64, int) Result {
			in, other = drainsOnStack(id), drainsOnStack(id+1)
			return Executed
		})
		callThroughChain(id, probe)
		assert.True(t, in, "id %#x found inside its chain", id)
		assert.False(t, other, "id %#x+1 not found", id)
	}
}

// callThroughChain enters the trampoline chain of id like drain does, but
// runs probe where the drain loop would run.
func callThroughChain(id uint64, probe hop) {
	saved := runDrainHop
	runDrainHop = probe
	defer func() { runDrainHop = saved }()
	k := 0
	for v := id; v > 0; v >>= 4 {
		k++
	}
	drainBegin(&Machine{}, 0, nil, id, k)
}

// From a handler, at any depth, the caller is the drainer of its own machine
// and only of it; a goroutine the handler starts is not.
func TestIsDrainerExact(t *testing.T) {
	a := newTestMachine(t, Struct{"A": {}}, nil)
	b := newTestMachine(t, Struct{"B": {}}, nil)
	type seen struct{ a, b, deepA, goA, walkA, walkB, walkDeepA, walkGoA bool }
	var got seen
	h := &funcHandlers{state: func(e *Event) {
		got.a, got.b = a.fromDrainer(), b.fromDrainer()
		// the stack walk, used where curg is not available, agrees
		got.walkA, got.walkB = drainsOnStack(a.drainID), drainsOnStack(b.drainID)
		recurse(500, func() { got.deepA, got.walkDeepA = a.fromDrainer(), drainsOnStack(a.drainID) })
		var wg sync.WaitGroup
		wg.Go(func() { got.goA, got.walkGoA = a.fromDrainer(), drainsOnStack(a.drainID) })
		wg.Wait()
	}}
	require.NoError(t, a.BindHandlers(h))
	assert.False(t, a.fromDrainer())
	require.Equal(t, Executed, a.Add1("A", nil))
	assert.Equal(t, seen{a: true, deepA: true, walkA: true, walkDeepA: true}, got)
}

// funcHandlers runs state as AState (or BState, ...).
type funcHandlers struct {
	state func(e *Event)
}

func (h *funcHandlers) AState(e *Event) { h.state(e) }

// recurse calls fn n frames deeper.
//
//go:noinline
func recurse(n int, fn func()) {
	if n == 0 {
		fn()
		return
	}
	recurse(n-1, fn)
}

// Mutations queued by the running Mutate call's handlers belong to it;
// those queued meanwhile by other goroutines don't, even while a handler of
// that call runs.
func TestAttributionExact(t *testing.T) {
	m := newTestMachine(t, Struct{"A": {}, "B": {}, "C": {}}, nil)
	entered, release := make(chan struct{}), make(chan struct{})
	var roots []*rootState
	require.NoError(t, m.BindHandlers(&funcHandlers{state: func(e *Event) {
		e.Machine.Add1("B", nil)
		close(entered)
		<-release
		m.qmu.Lock()
		for i := m.qhead; i < len(m.queue); i++ {
			roots = append(roots, m.queue[i].root)
		}
		m.qmu.Unlock()
	}}))
	done := make(chan error, 1)
	go func() {
		_, err := m.Mutate(context.Background(), MutationAdd, S{"A"}, nil)
		done <- err
	}()
	recvOrFail(t, entered, "AState entered")
	assert.Equal(t, Queued, m.Add1("C", nil), "another goroutine's Add while a handler runs")
	close(release)
	require.NoError(t, <-done)
	require.Len(t, roots, 2)
	assert.NotNil(t, roots[0], "B, queued by the handler, belongs to the Mutate call")
	assert.Nil(t, roots[1], "C, queued by another goroutine, doesn't")
	assert.True(t, m.Is(S{"A", "B", "C"}))
}

// crossHandlers: A's handler mutates B; B's handlers block and mutate B.
type crossHandlers struct {
	b             *Machine
	bEntered, bGo chan struct{}
	mutating      chan struct{}
	res           Result
	err           error
	bActiveAfter  bool
	ownRes        Result
	ownErr        error
	ownCalled     bool
	mu            sync.Mutex
}

func (h *crossHandlers) AState(e *Event) {
	close(h.mutating)
	h.res, h.err = h.b.Mutate(context.Background(), MutationAdd, S{"Y"}, nil)
	h.bActiveAfter = h.b.Is(S{"Y", "Z"})
}

type bHandlers struct{ h *crossHandlers }

func (b *bHandlers) XState(e *Event) {
	close(b.h.bEntered)
	<-b.h.bGo
}

func (b *bHandlers) YState(e *Event) {
	res, err := e.Machine.Mutate(context.Background(), MutationAdd, S{"Z"}, nil)
	b.h.mu.Lock()
	b.h.ownRes, b.h.ownErr, b.h.ownCalled = res, err, true
	b.h.mu.Unlock()
}

// Machine A's handler calling B.Mutate while B is busy on another goroutine
// waits for B's result like any caller; B's own handler gets Queued, nil at
// once.
func TestCrossMachineMutateWaits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a := newTestMachine(t, Struct{"A": {}}, nil)
		b := newTestMachine(t, Struct{"X": {}, "Y": {}, "Z": {}}, nil)
		a.HandlerTimeout, b.HandlerTimeout = 0, 0
		h := &crossHandlers{b: b, bEntered: make(chan struct{}), bGo: make(chan struct{}),
			mutating: make(chan struct{})}
		require.NoError(t, a.BindHandlers(h))
		require.NoError(t, b.BindHandlers(&bHandlers{h}))

		bRes := make(chan Result, 1)
		go func() { bRes <- b.Add1("X", nil) }()
		<-h.bEntered
		aRes := make(chan Result, 1)
		go func() { aRes <- a.Add1("A", nil) }()
		<-h.mutating
		synctest.Wait()
		select {
		case r := <-aRes:
			t.Fatalf("A's handler didn't wait for B: A returned %v", r)
		default:
		}
		assert.False(t, b.Is1("Y"), "Y waits for B's running pass")

		close(h.bGo)
		assert.Equal(t, Executed, <-aRes)
		assert.Equal(t, Executed, <-bRes)
		assert.Equal(t, Executed, h.res)
		assert.NoError(t, h.err)
		assert.True(t, h.bActiveAfter, "B.Mutate returned after Y and its follow-up Z ran")
		h.mu.Lock()
		defer h.mu.Unlock()
		require.True(t, h.ownCalled)
		assert.Equal(t, Queued, h.ownRes, "B's own handler: Queued")
		assert.NoError(t, h.ownErr)
	})
}

// deepHandlers call Mutate on their own machine from depth frames down.
type deepHandlers struct {
	depth int
	res   Result
	err   error
}

func (h *deepHandlers) AState(e *Event) {
	recurse(h.depth, func() {
		h.res, h.err = e.Machine.Mutate(context.Background(), MutationAdd, S{"B"}, nil)
	})
}

// Mutate on its own machine from 80 and 500 frames deep in a handler
// returns Queued at once: no deadlock, no timeout, and the outer mutation's
// result stays Executed.
func TestMutateFromDeepHandler(t *testing.T) {
	for _, depth := range []int{80, 500} {
		t.Run(fmt.Sprintf("depth%d", depth), func(t *testing.T) {
			m := newTestMachine(t, Struct{"A": {}, "B": {}}, &Opts{HandlerTimeout: waitFor})
			h := &deepHandlers{depth: depth}
			require.NoError(t, m.BindHandlers(h))
			res, err := m.Mutate(context.Background(), MutationAdd, S{"A"}, nil)
			require.NoError(t, err)
			assert.Equal(t, Executed, res)
			assert.Equal(t, Queued, h.res)
			assert.NoError(t, h.err)
			assert.True(t, m.Is(S{"A", "B"}))
		})
	}
}

// chainHandlers: A's handler mutates B, B's mutates C, C's mutates A and
// itself, all on one goroutine, deep in the stack.
type chainHandlers struct {
	next      *Machine
	nextState string
	res, self Result
	me        string
}

func (h *chainHandlers) run(e *Event) {
	recurse(100, func() {
		h.res, _ = h.next.Mutate(context.Background(), MutationAdd, S{h.nextState}, nil)
		if h.me != "" {
			h.self, _ = e.Machine.Mutate(context.Background(), MutationAdd, S{h.me}, nil)
		}
	})
}

type chainA struct{ *chainHandlers }

func (h chainA) AState(e *Event) { h.run(e) }

type chainB struct{ *chainHandlers }

func (h chainB) BState(e *Event) { h.run(e) }

type chainC struct{ *chainHandlers }

func (h chainC) CState(e *Event) { h.run(e) }

// Nested drains of several machines on one goroutine: an idle machine
// mutated from a handler drains inline (Executed); a machine whose drain is
// further up this goroutine's stack queues (Queued).
func TestNestedDrains(t *testing.T) {
	a := newTestMachine(t, Struct{"A": {}, "A2": {}}, nil)
	b := newTestMachine(t, Struct{"B": {}}, nil)
	c := newTestMachine(t, Struct{"C": {}, "C2": {}}, nil)
	ha := &chainHandlers{next: b, nextState: "B"}
	hb := &chainHandlers{next: c, nextState: "C"}
	hc := &chainHandlers{next: a, nextState: "A2", me: "C2"}
	require.NoError(t, a.BindHandlers(&chainA{ha}))
	require.NoError(t, b.BindHandlers(&chainB{hb}))
	require.NoError(t, c.BindHandlers(&chainC{hc}))
	res, err := a.Mutate(context.Background(), MutationAdd, S{"A"}, nil)
	require.NoError(t, err)
	assert.Equal(t, Executed, res)
	assert.Equal(t, Executed, ha.res, "B was idle: drained inside A's handler")
	assert.Equal(t, Executed, hb.res, "C was idle: drained inside B's handler")
	assert.Equal(t, Queued, hc.res, "A drains further up: queued")
	assert.Equal(t, Queued, hc.self, "C's own handler: queued")
	assert.True(t, a.Is(S{"A", "A2"}))
	assert.True(t, c.Is(S{"C", "C2"}))
}

// evalHandlers calls Eval on its own machine and on another one.
type evalHandlers struct {
	other        *Machine
	own, onOther bool
}

func (h *evalHandlers) AState(e *Event) {
	h.own = e.Machine.Eval("own", func() {}, nil)
	h.onOther = h.other.Eval("other", func() {}, nil)
}

// Eval refuses only on its own drainer; from another machine's handler it
// runs.
func TestEvalFromHandlerExact(t *testing.T) {
	a := newTestMachine(t, Struct{"A": {}}, nil)
	b := newTestMachine(t, Struct{"B": {}}, nil)
	h := &evalHandlers{other: b}
	require.NoError(t, a.BindHandlers(h))
	require.Equal(t, Executed, a.Add1("A", nil))
	assert.False(t, h.own, "Eval on its own drainer doesn't run")
	assert.True(t, h.onOther, "Eval on another machine runs")
}

// mutatingTracer mutates its machine once from TransitionEnd.
type mutatingTracer struct {
	NoOpTracer
	once sync.Once
	res  Result
	err  error
}

func (tr *mutatingTracer) TransitionEnd(t *Transition) {
	tr.once.Do(func() {
		tr.res, tr.err = t.Machine.Mutate(context.Background(), MutationAdd, S{"B"}, nil)
	})
}

// Tracers run on the drainer too: Mutate from a tracer queues instead of
// waiting for itself.
func TestMutateFromTracer(t *testing.T) {
	tr := &mutatingTracer{}
	m := newTestMachine(t, Struct{"A": {}, "B": {}}, &Opts{Tracers: []Tracer{tr}})
	require.Equal(t, Executed, m.Add1("A", nil))
	assert.Equal(t, Queued, tr.res)
	assert.NoError(t, tr.err)
	assert.True(t, m.Is(S{"A", "B"}))
}
