package machine

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const waitFor = 5 * time.Second

func newTestMachine(t *testing.T, s Struct, opts *Opts) *Machine {
	t.Helper()
	m := New(context.Background(), s, opts)
	t.Cleanup(func() {
		m.Dispose()
		select {
		case <-m.WhenDisposed():
		case <-time.After(waitFor):
			t.Error("not disposed in time")
		}
	})
	return m
}

func recvOrFail(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(waitFor):
		t.Fatalf("%s: timed out", what)
	}
}

// blockingHandlers blocks in the handler named by block until release closes.
type blockingHandlers struct {
	block   string
	entered chan struct{}
	release chan struct{}
	once    sync.Once
}

func (h *blockingHandlers) wait(name string) {
	if h.block != name {
		return
	}
	h.once.Do(func() { close(h.entered) })
	<-h.release
}

func (h *blockingHandlers) AEnter(e *Event) bool { h.wait("AEnter"); return true }
func (h *blockingHandlers) AState(e *Event)      { h.wait("AState") }
func (h *blockingHandlers) AnyAny(e *Event) bool {
	if e.Machine.Transition().CalledStates()[0] == "A" {
		h.wait("AnyAny")
	}
	return true
}

// Mutate from a handler returns Queued at once instead of deadlocking.
func TestMutateFromHandler(t *testing.T) {
	m := newTestMachine(t, Struct{"A": {}, "B": {}}, nil)
	h := &mutator{}
	require.NoError(t, m.BindHandlers(h))
	assert.Equal(t, Executed, m.Add1("A", nil))
	assert.Equal(t, Queued, h.res)
	assert.NoError(t, h.err)
	assert.True(t, m.Is1("B"), "queued mutation ran in the same pass")
}

type mutator struct {
	res Result
	err error
}

func (h *mutator) AState(e *Event) {
	h.res, h.err = e.Machine.Mutate(context.Background(), MutationAdd, S{"B"}, nil)
}

// Handlers bound with value receivers, promoted methods of an embedded nil
// pointer and of an embedded value all take the direct (non-reflect) path.
type valueRecv struct{ calls *[]string }

func (v valueRecv) AEnter(e *Event) bool { *v.calls = append(*v.calls, "AEnter"); return true }

type embedded struct{ calls *[]string }

func (e2 *embedded) AState(e *Event) { *e2.calls = append(*e2.calls, "AState") }

type outer struct {
	*ExceptionHandler
	valueRecv
	*embedded
}

func TestDirectMethods(t *testing.T) {
	var calls []string
	h := &outer{valueRecv: valueRecv{&calls}, embedded: &embedded{&calls}}
	m := newTestMachine(t, Struct{"A": {}}, nil)
	require.NoError(t, m.BindHandlers(h))
	tab := m.htab.Load()
	a := m.Index("A")
	require.Len(t, tab.enter[a], 1)
	assert.NotNil(t, tab.enter[a][0].dB, "direct bool handler")
	require.Len(t, tab.state[a], 1)
	assert.NotNil(t, tab.state[a][0].dV, "direct void handler")
	ex := tab.state[m.Index(Exception)]
	require.Len(t, ex, 1)
	assert.NotNil(t, ex[0].dV, "promoted from a nil embedded pointer")

	assert.Equal(t, Executed, m.Add1("A", nil))
	assert.Equal(t, []string{"AEnter", "AState"}, calls)
	m.AddErr(errors.New("boom"), nil)
	assert.True(t, m.IsErr(), "ExceptionState on a nil receiver works")
}

// Wrong handler signatures are reported at bind time; others are ignored.
type badSig struct{}

func (b *badSig) AEnter(e *Event) int { return 1 }
func (b *badSig) AState(x int)        {}
func (b *badSig) Helper(x int)        {}

func TestBindWrongSignature(t *testing.T) {
	m := newTestMachine(t, Struct{"A": {}}, nil)
	err := m.BindHandlers(&badSig{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "AEnter")
	assert.Contains(t, err.Error(), "AState")
	assert.NotContains(t, err.Error(), "Helper")
	assert.Equal(t, 0, m.emitterCount())
	assert.Error(t, m.BindHandlers(badSig{}))
	assert.Error(t, m.BindHandlers(nil))
}

// Ended contexts release their bindings from the index.
func TestWaiterIndexCleanup(t *testing.T) {
	m := newTestMachine(t, Struct{"A": {}, "B": {}}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	chs := []<-chan struct{}{
		m.When1("A", ctx), m.WhenNot1("B", ctx), m.WhenTime(S{"A"}, Time{5}, ctx),
		m.WhenArgs("A", A{"x": 1}, ctx), m.When1("Unknown", ctx),
	}
	m.Add1("B", nil)
	chs = append(chs, m.WhenNot1("B", ctx))
	cancel()
	for _, ch := range chs {
		recvOrFail(t, ch, "released by ctx")
	}
	require.Eventually(t, func() bool {
		m.mu.Lock()
		defer m.mu.Unlock()
		for _, l := range m.byState {
			if len(l) > 0 {
				return false
			}
		}
		for _, l := range m.byArgs {
			if len(l) > 0 {
				return false
			}
		}
		return len(m.orphans) == 0 && m.nWatch.Load() == 0 && m.nWhenArgs.Load() == 0
	}, waitFor, time.Millisecond)
}

// Matched bindings leave the index too, and satisfied ones never enter it.
func TestWaiterIndexMatched(t *testing.T) {
	m := newTestMachine(t, Struct{"A": {}, "B": {}}, nil)
	w := m.When(S{"A", "B"}, nil)
	m.Add1("A", nil)
	assert.Equal(t, int32(1), m.nWatch.Load())
	m.Add1("B", nil)
	recvOrFail(t, w, "When")
	assert.Equal(t, int32(0), m.nWatch.Load())
	assert.Equal(t, (<-chan struct{})(closedCh), m.When1("A", nil))
}

// Records are reused only while nobody holds them.
func TestTransitionReuse(t *testing.T) {
	m := newTestMachine(t, Struct{"A": {}}, nil)
	m.Add1("A", nil)
	t1 := m.spareT
	m.Remove1("A", nil)
	assert.Same(t, t1, m.spareT, "reused")

	h := &holder{}
	require.NoError(t, m.BindHandlers(h))
	m.Add1("A", nil)
	require.NotNil(t, h.t)
	held := h.t
	assert.NotEmpty(t, held.ID)
	assert.Equal(t, S{"A"}, held.TargetStates)
	m.Remove1("A", nil)
	assert.NotSame(t, held, m.spareT, "an exposed record is not reused")
	assert.Equal(t, txExposed, held.life.Load())
	assert.Equal(t, S{"A"}, held.TargetStates, "held record intact")
}

type holder struct{ t *Transition }

func (h *holder) AState(e *Event) { h.t = e.Transition() }

// Is stays consistent with the tick parity under concurrent transitions.
func TestSeqlockReaders(t *testing.T) {
	m := newTestMachine(t, Struct{"A": {Add: S{"B"}}, "B": {}}, nil)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			m.Set(S{"A"}, nil)
			m.Set(S{}, nil)
		}
	}()
	for range 20000 {
		// A implies B, and both change in one transition
		if m.Is1("A") {
			if tm := m.Time(S{"A", "B"}); tm[0]%2 == 1 {
				require.Equal(t, uint64(1), tm[1]%2, "torn read: %v", tm)
			}
		}
		_ = m.Is(S{"A", "B"})
	}
	close(stop)
	wg.Wait()
}

// A Mutate whose ctx ends while queued drops its item.
func TestMutateCtxDropsItem(t *testing.T) {
	h := &blockingHandlers{block: "AEnter", entered: make(chan struct{}), release: make(chan struct{})}
	m := newTestMachine(t, Struct{"A": {}, "B": {}}, &Opts{HandlerTimeout: time.Minute})
	require.NoError(t, m.BindHandlers(h))
	go m.Add1("A", nil)
	recvOrFail(t, h.entered, "handler entered")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	res, err := m.Mutate(ctx, MutationAdd, S{"B"}, nil)
	assert.Equal(t, Canceled, res)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Equal(t, 0, m.queueLen())
	close(h.release)
	require.Eventually(t, func() bool { return m.Is1("A") }, waitFor, time.Millisecond)
	assert.False(t, m.Is1("B"))
}

// BenchmarkNameLookup compares the schema's name index with a plain map.
func BenchmarkNameLookup(b *testing.B) {
	var names []string
	idx := map[string]int{}
	for i := range 20 {
		n := "State" + string(rune('A'+i))
		names = append(names, n)
		idx[n] = i
	}
	ni := newNameIndex(names)
	q := []string{"StateD", "StateR"}
	b.Run("nameIndex", func(b *testing.B) {
		for b.Loop() {
			for _, n := range q {
				if ni.get(n) < 0 {
					b.Fatal(n)
				}
			}
		}
	})
	b.Run("map", func(b *testing.B) {
		for b.Loop() {
			for _, n := range q {
				if _, ok := idx[n]; !ok {
					b.Fatal(n)
				}
			}
		}
	})
}

// stressHandlers queue follow-up mutations and occasionally panic or stall.
type stressHandlers struct {
	*ExceptionHandler
}

func (h *stressHandlers) AState(e *Event) { e.Machine.Add1("B", nil) }
func (h *stressHandlers) BEnter(e *Event) bool {
	if v, _ := e.Args["panic"].(bool); v {
		panic(errors.New("stress"))
	}
	return true
}
func (h *stressHandlers) CState(e *Event) {
	if v, _ := e.Args["stall"].(bool); v {
		time.Sleep(15 * time.Millisecond)
	}
	e.Machine.Remove1("A", nil)
}
func (h *stressHandlers) DEnd(e *Event) { _ = e.Machine.Eval("stress", func() {}, nil) }

// TestStress mixes every entry point from many goroutines, under -race, and
// checks the tick invariants and that disposal leaves no goroutine behind.
func TestStress(t *testing.T) {
	s := Struct{
		"A": {Add: S{"C"}},
		"B": {Multi: true, Remove: S{"D"}},
		"C": {After: S{"A"}},
		"D": {Auto: true, Require: S{"C"}},
		"E": {Remove: S{"A"}},
	}
	m := New(context.Background(), s, &Opts{HandlerTimeout: 10 * time.Millisecond})
	require.NoError(t, m.BindHandlers(&stressHandlers{}))
	states := S{"A", "B", "C", "D", "E"}
	var wg sync.WaitGroup
	var progress atomic.Int64
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx := context.Background()
			for i := range 300 {
				progress.Add(1)
				st := states[(g+i)%len(states)]
				switch (g + i) % 9 {
				case 0:
					m.Add1(st, nil)
				case 1:
					m.Remove1(st, nil)
				case 2:
					m.Set(S{st, states[i%len(states)]}, nil)
				case 3:
					_, _ = m.Mutate(ctx, MutationAdd, S{st}, A{"stall": i%50 == 0})
				case 4:
					wctx, cancel := context.WithTimeout(ctx, time.Millisecond)
					<-m.When1(st, wctx)
					cancel()
				case 5:
					m.Add1("B", A{"panic": i%30 == 0})
				case 6:
					_ = m.NewStateCtx(st)
					_ = m.WhenTicks(st, 1, nil)
				case 7:
					_ = m.Eval("g", func() {}, nil)
				case 8:
					tm := m.Time(nil)
					act := m.ActiveStates()
					if m.Disposed.Load() || !slices.Equal(tm, m.Time(nil)) {
						continue
					}
					for k, n := range m.StateNames() {
						if slices.Contains(act, n) != (tm[k]%2 == 1) {
							t.Errorf("%s: active %v, tick %d", n, act, tm[k])
						}
					}
				}
			}
		}()
	}
	// ticks never decrease
	wg.Add(1)
	stop := make(chan struct{})
	go func() {
		defer wg.Done()
		prev := m.Time(nil)
		for {
			select {
			case <-stop:
				return
			default:
			}
			now := m.Time(nil)
			if m.Disposed.Load() {
				return // disposal clears the clock
			}
			for k := range now {
				if now[k] < prev[k] {
					t.Errorf("tick %d decreased: %d < %d", k, now[k], prev[k])
				}
			}
			prev = now
		}
	}()
	// dispose mid-stress, once a good share of the work has run
	require.Eventually(t, func() bool { return progress.Load() >= 600 },
		10*time.Second, time.Millisecond)
	m.Dispose()
	recvOrFail(t, m.WhenDisposed(), "disposed")
	close(stop)
	wg.Wait()
	assert.Equal(t, Canceled, m.Add1("A", nil))
}

type handoffHandlers struct {
	releaseZ, xReturned chan struct{}
}

func (h *handoffHandlers) ZState(e *Event) { <-h.releaseZ }
func (h *handoffHandlers) AState(e *Event) {
	<-h.xReturned // deadlocks (until the timeout) if X still drained
	e.Machine.Add1("B", nil)
}
func (h *handoffHandlers) BState(e *Event) { e.Machine.Add1("C", nil) }

// A draining Mutate hands the queue over to a waiting Mutate once its own
// work is done, and a waiting Mutate returns only after the follow-ups its
// handlers queued (B, then C) have run.
func TestMutateHandoffAndFollowUps(t *testing.T) {
	defer func(n int) { handoffAfter = n }(handoffAfter)
	handoffAfter = 0
	h := &handoffHandlers{releaseZ: make(chan struct{}), xReturned: make(chan struct{})}
	m := newTestMachine(t, Struct{"A": {}, "B": {}, "C": {}, "Z": {}}, &Opts{HandlerTimeout: time.Minute})
	require.NoError(t, m.BindHandlers(h))
	ctx := context.Background()
	xRes := make(chan Result, 1)
	go func() {
		r, _ := m.Mutate(ctx, MutationAdd, S{"Z"}, nil)
		close(h.xReturned)
		xRes <- r
	}()
	require.Eventually(t, func() bool { return m.wd.running.Load() != 0 }, waitFor, time.Millisecond)
	type out struct {
		res    Result
		err    error
		active S
	}
	yOut := make(chan out, 1)
	go func() {
		r, err := m.Mutate(ctx, MutationAdd, S{"A"}, nil)
		yOut <- out{r, err, m.ActiveStates()}
	}()
	require.Eventually(t, func() bool { return m.IsQueued(MutationAdd, S{"A"}, false, true, 0) >= 0 },
		waitFor, time.Millisecond)
	close(h.releaseZ)
	select {
	case o := <-yOut:
		require.NoError(t, o.err)
		assert.Equal(t, Executed, o.res)
		assert.ElementsMatch(t, S{"A", "B", "C", "Z"}, o.active, "follow-ups ran before Mutate returned")
	case <-time.After(waitFor):
		t.Fatal("Y didn't return: no handoff")
	}
	assert.Equal(t, Executed, <-xRes)
}

// Transition() from other goroutines during transitions is race-free.
func TestTransitionConcurrentExpose(t *testing.T) {
	m := newTestMachine(t, Struct{"A": {}, "B": {}}, nil)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if tr := m.Transition(); tr != nil {
					_ = tr.ID
					_ = tr.String()
				}
			}
		}()
	}
	for range 2000 {
		m.Add1("A", nil)
		m.Remove1("A", nil)
	}
	close(stop)
	wg.Wait()
}

// onlyCalled is a custom resolver: targets are exactly the called states
// (no relations), reversed exit order, never auto.
type onlyCalled struct{ calls int }

func (r *onlyCalled) GetTargetStates(t *Transition, called S) S {
	r.calls++
	if t.Type() == MutationRemove {
		return DiffStates(t.StatesBefore, called)
	}
	if t.Type() == MutationAdd {
		return SAdd(called, t.StatesBefore)
	}
	return slices.Clone(called)
}
func (r *onlyCalled) GetAutoMutation() *Mutation                             { return nil }
func (r *onlyCalled) SortStates(states S)                                    { slices.Reverse(states) }
func (r *onlyCalled) GetRelationsOf(string) ([]Relation, error)              { return nil, nil }
func (r *onlyCalled) GetRelationsBetween(string, string) ([]Relation, error) { return nil, nil }

func TestCustomResolver(t *testing.T) {
	r := &onlyCalled{}
	m := newTestMachine(t, Struct{"A": {Add: S{"B"}}, "B": {}, "C": {Auto: true}}, &Opts{Resolver: r})
	assert.Same(t, RelationsResolver(r), m.Resolver())
	assert.Equal(t, Executed, m.Add1("A", nil))
	assert.Equal(t, S{"A"}, m.ActiveStates(), "no implication, no auto")
	assert.Equal(t, Executed, m.Add1("B", nil))
	assert.Equal(t, Executed, m.Remove1("A", nil))
	assert.Equal(t, S{"B"}, m.ActiveStates())
	assert.Equal(t, 3, r.calls)
}

// Handlers follow schema changes: states renamed by SetStruct get their
// handlers, and in-flight indexes are remapped.
type schemaHandlers struct{ calls []string }

func (h *schemaHandlers) AState(e *Event) { h.calls = append(h.calls, "AState") }
func (h *schemaHandlers) ZState(e *Event) { h.calls = append(h.calls, "ZState") }

func TestSetStructRebindsHandlers(t *testing.T) {
	h := &schemaHandlers{}
	m := newTestMachine(t, Struct{"A": {}}, nil)
	require.NoError(t, m.BindHandlers(h))
	m.Add1("A", nil)
	w := m.WhenNot1("A", nil)
	require.NoError(t, m.SetStruct(Struct{"A": {}, "Z": {}, Exception: {Multi: true}}, S{"Z", "A", Exception}))
	assert.Equal(t, S{"Z", "A", Exception}, m.StateNames())
	assert.True(t, m.Is1("A"), "ticks kept")
	assert.Equal(t, uint64(1), m.Tick("A"))
	m.Add1("Z", nil)
	assert.Equal(t, []string{"AState", "ZState"}, h.calls)
	m.Remove1("A", nil)
	recvOrFail(t, w, "WhenNot1(A) registered before the change")
	// a failing SetStruct changes nothing
	assert.Error(t, m.SetStruct(Struct{"Q": {}}, S{"Q", "A"}))
	assert.Equal(t, S{"Z", "A", Exception}, m.StateNames())
}

type transientTracer struct {
	NoOpTracer
	transient bool
	ends      int
	last      Time
}

func (tr *transientTracer) TransientTransitions() bool { return tr.transient }
func (tr *transientTracer) TransitionEnd(t *Transition) {
	tr.ends++
	tr.last = slices.Clone(t.TimeAfter)
}

// Records are reused with transient tracers only.
func TestTransientTracerReuse(t *testing.T) {
	for _, transient := range []bool{true, false} {
		tr := &transientTracer{transient: transient}
		m := newTestMachine(t, Struct{"A": {}}, nil)
		require.NoError(t, m.BindTracer(tr))
		m.Add1("A", nil)
		first := m.spareT
		m.Remove1("A", nil)
		assert.Equal(t, transient, first == m.spareT, "transient=%v", transient)
		assert.Equal(t, 2, tr.ends)
		assert.Equal(t, Time{2, 0}, tr.last)
		require.NoError(t, m.DetachTracer(tr))
	}
}
