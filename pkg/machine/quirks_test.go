package machine_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	am "github.com/arpc-go/arpc/pkg/machine"
)

// Tests of asyncmachine-go behaviours that this engine fixes on purpose.
// Each asserts the fixed behaviour.

// NewCommon does not force debug options nor mutate the caller's Opts.
func TestFixed_NewCommonNoForcedDebug(t *testing.T) {
	s := am.Struct{"A": {}}
	m, err := am.NewCommon(context.Background(), "u1", s, am.S{"A", am.Exception}, nil, nil, nil)
	require.NoError(t, err)
	assert.True(t, m.PanicToException, "panics still become Exception")
	assert.Equal(t, 100*time.Millisecond, m.HandlerTimeout, "default timeout")
	finish(t, m)

	opts := &am.Opts{HandlerTimeout: time.Second}
	m, err = am.NewCommon(context.Background(), "u1b", s, am.S{"A", am.Exception}, nil, nil, opts)
	require.NoError(t, err)
	assert.True(t, m.PanicToException)
	assert.Equal(t, time.Second, m.HandlerTimeout)
	assert.False(t, opts.DontPanicToException, "the caller's Opts are not switched to debug")
	assert.Equal(t, time.Second, opts.HandlerTimeout)
	finish(t, m)
}

// when AnyAny cancels, TransitionEnd still fires and TimeAfter
// is recorded (AnyAny still runs for canceled transitions: kept).
func TestFixed_AnyAnyCancelStillEnds(t *testing.T) {
	tr := &tracer{}
	r := newRecorder("AnyAny")
	m := newM(t, structN(), namesN, r, &am.Opts{Tracers: []am.Tracer{tr}})
	assert.Equal(t, am.Canceled, m.Add1("A", nil))
	assertActive(t, m)
	inits, ends, _ := tr.counts()
	assert.Equal(t, 1, inits)
	require.Equal(t, 1, ends, "TransitionEnd fires")
	tr.mu.Lock()
	end := tr.ends[0]
	tr.mu.Unlock()
	assert.NotNil(t, end.TimeAfter, "TimeAfter recorded")
	assert.Equal(t, end.TimeBefore, end.TimeAfter, "nothing applied")
	assert.False(t, end.Accepted)

	// Kept: AnyAny runs for a transition canceled by Require.
	s := structN()
	s["A"] = am.State{Require: am.S{"B"}}
	r2 := newRecorder()
	m2 := newM(t, s, namesN, r2, nil)
	assert.Equal(t, am.Canceled, m2.Add1("A", nil))
	assert.Equal(t, fields("AnyAny"), r2.take())
	finish(t, m)
	finish(t, m2)
}

// XAny receives the mutation's args.
func TestFixed_XAnyGetsArgs(t *testing.T) {
	r := newRecorder()
	m := newM(t, structN(), namesN, r, nil, "A")
	assert.Equal(t, am.Executed, m.Set(am.S{"B"}, am.A{"k": "v"}))
	assert.Equal(t, am.A{"k": "v"}, r.argsOf("AAny"))
	assert.Equal(t, am.A{"k": "v"}, r.argsOf("AExit"))
	finish(t, m)
}

// Remove1(X) called from XEnter is queued, not lost.
func TestFixed_RemoveFromEnterNotLost(t *testing.T) {
	var res am.Result
	r := newRecorder().on("AEnter", func(e *am.Event) { res = e.Machine.Remove1("A", nil) })
	m := newM(t, structN(), namesN, r, nil)
	assert.Equal(t, am.Executed, m.Add1("A", nil))
	assert.Equal(t, am.Queued, res)
	assertActive(t, m)
	assert.Equal(t, uint64(2), m.Tick("A"))
	finish(t, m)
}

// WhenArgs bindings for one state are independent, and each honours its
// own ctx.
func TestFixed_WhenArgsBindings(t *testing.T) {
	m := newN(t)
	w1 := m.WhenArgs("B", am.A{"foo": "bar"}, nil)
	w2 := m.WhenArgs("B", am.A{"foo": "bar"}, nil)
	w3 := m.WhenArgs("B", am.A{"foo": "baz"}, nil)
	m.Add1("B", am.A{"foo": "bar"})
	assert.True(t, isClosed(w1), "first binding not orphaned")
	assert.True(t, isClosed(w2))
	assert.False(t, isClosed(w3))

	m.Remove1("B", nil)
	super := m.WhenArgs("B", am.A{"foo": "bar", "x": 1}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	sub := m.WhenArgs("B", am.A{"foo": "bar"}, ctx)
	cancel()
	waitClosed(t, sub, "subset-args binding closes on its own ctx")
	assert.False(t, isClosed(super), "the other binding is not affected")
	m.Add1("B", am.A{"foo": "bar", "x": 1})
	assert.True(t, isClosed(super))
	finish(t, m)
}

// disposal closes WhenTime, WhenTicks, WhenTicksEq and WhenArgs.
func TestFixed_DisposeClosesAllWaiters(t *testing.T) {
	m := newN(t)
	chans := map[string]<-chan struct{}{
		"WhenTime":    m.WhenTime(am.S{"A"}, am.Time{7}, nil),
		"WhenTicks":   m.WhenTicks("A", 5, nil),
		"WhenTicksEq": m.WhenTicksEq("B", 9, nil),
		"WhenArgs":    m.WhenArgs("C", am.A{"k": 1}, nil),
		"When":        m.When1("D", nil),
		"WhenNot":     m.WhenNot1(am.Exception, nil),
		"WhenErr":     m.WhenErr(context.Background()),
	}
	m.Add1("A", nil)
	chans["WhenNot"] = m.WhenNot1("A", nil)
	for name, ch := range chans {
		require.False(t, isClosed(ch), name)
	}
	finish(t, m)
	for name, ch := range chans {
		waitClosed(t, ch, name+" after disposal")
	}
	assert.True(t, isClosed(m.WhenTime(am.S{"A"}, am.Time{9}, nil)), "WhenTime after disposal")
	assert.True(t, isClosed(m.WhenTicks("A", 9, nil)), "WhenTicks after disposal")
}

// NewStateCtx after disposal does not panic and is canceled.
func TestFixed_StateCtxAfterDispose(t *testing.T) {
	m := newN(t, "A")
	finish(t, m)
	var ctx context.Context
	require.NotPanics(t, func() { ctx = m.NewStateCtx("A") })
	require.NotNil(t, ctx)
	assert.Error(t, ctx.Err())
}

// When with a repeated name closes.
func TestFixed_WhenRepeatedName(t *testing.T) {
	m := newN(t)
	w := m.When(am.S{"A", "A", "B"}, nil)
	wn := m.WhenNot(am.S{"C", "C"}, nil)
	m.Add1("C", nil)
	m.Add(am.S{"A", "B"}, nil)
	assert.True(t, isClosed(w))
	m.Remove1("C", nil)
	assert.True(t, isClosed(wn))
	assert.True(t, isClosed(m.When(am.S{"A", "A"}, nil)), "already active")
	finish(t, m)
}

// After is a topological order, not only for adjacent states.
func TestFixed_AfterTopological(t *testing.T) {
	s := structN()
	s["A"] = am.State{After: am.S{"B"}}
	s["B"] = am.State{After: am.S{"C"}}
	for range 5 {
		r := newRecorder()
		m := newM(t, s, namesN, r, nil)
		assert.Equal(t, am.Executed, m.Add(am.S{"A", "D", "B", "C"}, nil))
		calls := r.take()
		var states []string
		for _, c := range calls {
			if len(c) == len("AState") && c[1:] == "State" {
				states = append(states, c)
			}
		}
		require.Len(t, states, 4, "%v", calls)
		iA, iB, iC := slices.Index(states, "AState"), slices.Index(states, "BState"), slices.Index(states, "CState")
		assert.True(t, iC < iB && iB < iA, "C before B before A; got %v", states)
		// Enter handlers follow the same order.
		iA, iB, iC = slices.Index(calls, "AEnter"), slices.Index(calls, "BEnter"), slices.Index(calls, "CEnter")
		assert.True(t, iC < iB && iB < iA, "enters C, B, A; got %v", calls)
		finish(t, m)
	}
}

// panicException's ExceptionState panics.
type panicException struct{}

func (h *panicException) ExceptionState(*am.Event) { panic("ExceptionState panic") }
func (h *panicException) AState(*am.Event)         {}

// a panic while Exception is called does not kill the handler runner.
func TestFixed_PanicInExceptionHandler(t *testing.T) {
	for _, h := range []any{&panicException{}, &panicEnter{}} {
		m := newM(t, structN(), namesN, h, nil)
		done := make(chan am.Result, 1)
		go func() {
			m.Add1(am.Exception, nil) // ExceptionHandler panics on a missing "err"
			m.AddErr(errors.New("x"), nil)
			done <- m.Add1("A", nil)
		}()
		select {
		case res := <-done:
			assert.Equal(t, am.Executed, res, "%T", h)
		case <-time.After(deadline):
			t.Fatalf("%T: machine deadlocked after a panic in ExceptionState", h)
		}
		assert.True(t, m.Is1("A"))
		finish(t, m)
	}
}

var errSentinel = errors.New("sentinel")

// panicErr panics with a wrapped sentinel error in BEnter.
type panicErr struct{}

func (h *panicErr) BEnter(*am.Event) bool { panic(fmt.Errorf("wrapped: %w", errSentinel)) }

// errors.Is matches the error of a recovered panic.
func TestFixed_RecoveredErrorIdentity(t *testing.T) {
	m := newM(t, structN(), namesN, &panicErr{}, nil)
	assert.Equal(t, am.Canceled, m.Add1("B", nil))
	assert.True(t, m.Is1(am.Exception))
	assert.ErrorIs(t, m.Err(), errSentinel)
	finish(t, m)
}

// PanicToErr keeps non-error panic values.
func TestFixed_PanicToErrNonError(t *testing.T) {
	s := structN()
	s["ErrX"] = am.State{Require: am.S{am.Exception}}
	m := newM(t, s, nil, nil, nil)
	func() {
		defer m.PanicToErr(nil)
		panic("plain string")
	}()
	require.Error(t, m.Err())
	assert.Contains(t, m.Err().Error(), "plain string")
	assert.True(t, m.Is1(am.Exception))

	func() {
		defer m.PanicToErrState("ErrX", nil)
		panic(42)
	}()
	require.Error(t, m.Err())
	assert.Contains(t, m.Err().Error(), "42")
	assert.True(t, m.Is1("ErrX"))

	func() {
		defer m.PanicToErr(nil)
		panic(errSentinel)
	}()
	assert.ErrorIs(t, m.Err(), errSentinel)

	// No panic: nothing happens.
	before := m.Tick(am.Exception)
	func() { defer m.PanicToErr(nil) }()
	assert.Equal(t, before, m.Tick(am.Exception))
	finish(t, m)
}

// panicEnd panics in AEnd.
type panicEnd struct{ *am.ExceptionHandler }

func (h *panicEnd) AEnd(*am.Event) { panic("AEnd panic") }

// an XEnd panic never duplicates active states.
func TestFixed_NoDuplicateActiveStates(t *testing.T) {
	m := newM(t, structN(), namesN, &panicEnd{}, nil, "A")
	assert.Equal(t, am.Canceled, m.Set(am.S{"B", "C"}, nil))
	assert.True(t, m.Is1(am.Exception))
	assertConsistent(t, m)
	// The next transition is consistent too.
	m.Add1("D", nil)
	assertConsistent(t, m)
	finish(t, m)
}

// Transition.String() handles relation steps.
func TestFixed_TransitionStringRelations(t *testing.T) {
	s := am.Struct{
		"A": {Add: am.S{"B"}, Require: am.S{"C"}, Remove: am.S{"D"}},
		"B": {After: am.S{"C"}},
		"C": {},
		"D": {},
	}
	var str string
	var panicked any
	r := newRecorder().on("AState", func(e *am.Event) {
		defer func() { panicked = recover() }()
		str = e.Transition().String()
	})
	m := newM(t, s, nil, r, nil, "C", "D")
	assert.Equal(t, am.Executed, m.Add1("A", nil))
	assert.Nil(t, panicked, "Transition.String() panicked")
	assert.NotEmpty(t, str)
	assertActive(t, m, "A", "B", "C")
	finish(t, m)
}

// no lost wakeup at the end of a pass: concurrent mutations from many
// goroutines are all processed.
func TestFixed_NoLostWakeup(t *testing.T) {
	const n = 32
	s := am.Struct{}
	names := am.S{}
	for i := range n {
		name := fmt.Sprintf("S%d", i)
		s[name] = am.State{}
		names = append(names, name)
	}
	m := newM(t, s, nil, nil, nil)
	for round := range 20 {
		var wg sync.WaitGroup
		for _, name := range names {
			wg.Go(func() {
				if round%2 == 0 {
					m.Add1(name, nil)
				} else {
					m.Remove1(name, nil)
				}
			})
		}
		wg.Wait()
		if round%2 == 0 {
			waitClosed(t, m.When(names, nil), fmt.Sprintf("round %d: all added", round))
		} else {
			waitClosed(t, m.WhenNot(names, nil), fmt.Sprintf("round %d: all removed", round))
		}
		waitClosed(t, m.WhenQueueEnds(context.Background()), "queue drained")
		assert.Empty(t, m.Queue())
	}
	finish(t, m)
}

// a canceled parent ctx disposes the machine even without handlers.
func TestFixed_CtxCancelDisposes(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	m := am.New(ctx, structN(), nil)
	cancel()
	waitClosed(t, m.WhenDisposed(), "WhenDisposed after ctx cancel")
	assert.True(t, m.Disposed.Load())
}

// the states of an auto mutation follow StateNames() order.
func TestFixed_AutoOrder(t *testing.T) {
	s := am.Struct{
		"A": {},
		"W": {Auto: true, Require: am.S{"A"}},
		"X": {Auto: true, Require: am.S{"A"}},
		"Y": {Auto: true, Require: am.S{"A"}},
		"Z": {Auto: true, Require: am.S{"A"}},
	}
	names := am.S{"A", "Z", "X", "Y", "W", am.Exception}
	for range 10 {
		tr := &tracer{}
		m := newM(t, s, names, nil, &am.Opts{Tracers: []am.Tracer{tr}})
		m.Add1("A", nil)
		assertActive(t, m, "A", "W", "X", "Y", "Z")
		tr.mu.Lock()
		var auto am.S
		for _, tt := range tr.inits {
			if tt.IsAuto() {
				auto = tt.CalledStates()
				break
			}
		}
		tr.mu.Unlock()
		assert.Equal(t, am.S{"Z", "X", "Y", "W"}, auto)
		finish(t, m)
	}
}

// Import is all-or-nothing and requires every state.
func TestFixed_ImportAtomic(t *testing.T) {
	m := newN(t, "A")
	id := m.ID
	before := m.Time(nil)
	err := m.Import(&am.Serialized{
		ID: "other", Time: am.Time{1, 1, 1, 1, 0}, StateNames: am.S{"B", "C", "Nope", "D", am.Exception},
	})
	require.Error(t, err)
	assert.ErrorIs(t, err, am.ErrStateUnknown)
	assert.Equal(t, id, m.ID, "ID unchanged")
	assert.Equal(t, before, m.Time(nil), "no partial import")
	assertActive(t, m, "A")

	err = m.Import(&am.Serialized{ID: "other", Time: am.Time{1, 1}, StateNames: am.S{"B", "C"}})
	assert.Error(t, err, "every state must be listed")
	assert.Equal(t, id, m.ID)
	assert.Equal(t, before, m.Time(nil))

	err = m.Import(&am.Serialized{ID: "other", Time: am.Time{1}, StateNames: namesN})
	assert.Error(t, err, "time and names of different lengths")
	assert.Equal(t, before, m.Time(nil))
	finish(t, m)
}

// VerifyStates checks each name, not a count.
func TestFixed_VerifyStatesEachName(t *testing.T) {
	m := newN(t)
	assert.Error(t, m.VerifyStates(am.S{"A", "B", "C", "D"}), "Exception missing")
	s := am.StructMerge(m.GetStruct(), am.Struct{"E": {}})
	assert.Error(t, m.SetStruct(s, am.S{"A", "B", "C", "D", "E"}), "Exception missing after SetStruct")
	assert.NoError(t, m.SetStruct(s, am.S{"A", "B", "C", "D", "E", am.Exception}))
	finish(t, m)
}

// the clone and merge helpers keep Tags, and StructMerge always clones.
func TestFixed_HelpersKeepTags(t *testing.T) {
	s := am.Struct{"A": {Add: am.S{"B"}, Tags: []string{"t1"}}, "B": {Tags: []string{"t2"}}}
	c := am.CloneStates(s)
	assert.Equal(t, []string{"t1"}, c["A"].Tags)
	c["A"].Add[0] = "X"
	assert.Equal(t, "B", s["A"].Add[0], "deep clone")

	one := am.StructMerge(s)
	assert.Equal(t, []string{"t2"}, one["B"].Tags)
	one["C"] = am.State{}
	assert.NotContains(t, s, "C", "a one-argument StructMerge returns a copy")
	one["A"].Add[0] = "Y"
	assert.Equal(t, "B", s["A"].Add[0], "deep clone")

	two := am.StructMerge(s, am.Struct{"C": {Tags: []string{"t3"}}})
	assert.Equal(t, []string{"t1"}, two["A"].Tags)
	assert.Equal(t, []string{"t3"}, two["C"].Tags)

	added := am.StateAdd(s["A"], am.State{Remove: am.S{"C"}})
	assert.Contains(t, added.Tags, "t1")
	set := am.StateSet(s["A"], true, false, am.State{Add: am.S{"C"}})
	assert.Contains(t, set.Tags, "t1")
	assert.Equal(t, am.S{"C"}, set.Add)
	assert.True(t, set.Auto)
}
