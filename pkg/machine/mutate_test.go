package machine_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	am "github.com/arpc-go/arpc/pkg/machine"
)

// *Machine implements the shared API of local machines and remote mirrors.
var _ am.Api = (*am.Machine)(nil)

func TestMutateBasics(t *testing.T) {
	m := newN(t)
	ctx := context.Background()
	res, err := m.Mutate(ctx, am.MutationAdd, am.S{"A", "B"}, nil)
	assert.NoError(t, err)
	assert.Equal(t, am.Executed, res)
	res, err = m.Mutate(ctx, am.MutationRemove, am.S{"A"}, am.A{"k": 1})
	assert.NoError(t, err)
	assert.Equal(t, am.Executed, res)
	res, err = m.Mutate(ctx, am.MutationSet, am.S{"C"}, nil)
	assert.NoError(t, err)
	assert.Equal(t, am.Executed, res)
	assertActive(t, m, "C")

	res, err = m.Mutate(ctx, am.MutationAdd, am.S{"C", "Unknown"}, nil)
	assert.Equal(t, am.Canceled, res)
	assert.ErrorIs(t, err, am.ErrStateUnknown)
	assert.ErrorIs(t, m.Err(), am.ErrStateUnknown)
	assertActive(t, m, "C", am.Exception)

	finish(t, m)
	res, err = m.Mutate(ctx, am.MutationAdd, am.S{"A"}, nil)
	assert.Equal(t, am.Canceled, res)
	assert.Error(t, err, "disposed")
}

func TestMutateCanceledByHandlers(t *testing.T) {
	m := newM(t, structN(), namesN, newRecorder("AEnter"), nil)
	res, err := m.Mutate(context.Background(), am.MutationAdd, am.S{"A"}, nil)
	assert.Equal(t, am.Canceled, res)
	assert.ErrorIs(t, err, am.ErrCanceled, "a veto is ErrCanceled")
	assert.NotErrorIs(t, err, am.ErrHandlerTimeout)
	assert.Contains(t, err.Error(), "AEnter", "names the vetoing handler")
	finish(t, m)
}

func TestMutateInsideHandler(t *testing.T) {
	var (
		res am.Result
		err error
	)
	r := newRecorder().on("AState", func(e *am.Event) {
		res, err = e.Machine.Mutate(context.Background(), am.MutationAdd, am.S{"B"}, nil)
	})
	m := newM(t, structN(), namesN, r, nil)
	done := make(chan struct{})
	go func() {
		defer close(done)
		m.Add1("A", nil)
	}()
	waitClosed(t, done, "Add1 with Mutate inside a handler (deadlock?)")
	assert.Equal(t, am.Queued, res)
	assert.NoError(t, err)
	assertActive(t, m, "A", "B")
	finish(t, m)
}

// blockA blocks in AState until released.
type blockA struct {
	entered chan struct{}
	release chan struct{}
}

func (h *blockA) AState(*am.Event) {
	close(h.entered)
	<-h.release
}

// Mutate waits for its own mutation even when another goroutine drains the
// queue, and returns Canceled with ctx.Err() when ctx ends first.
func TestMutateWaitsAndCtx(t *testing.T) {
	h := &blockA{entered: make(chan struct{}), release: make(chan struct{})}
	m := newM(t, structN(), namesN, h, &am.Opts{HandlerTimeout: time.Minute})
	drained := make(chan am.Result, 1)
	go func() { drained <- m.Add1("A", nil) }()
	waitClosed(t, h.entered, "AState entered")

	// Queued behind the running pass: canceled by its ctx before it starts.
	ctx, cancel := context.WithCancel(context.Background())
	type out struct {
		res am.Result
		err error
	}
	canceled := make(chan out, 1)
	go func() {
		res, err := m.Mutate(ctx, am.MutationAdd, am.S{"B"}, nil)
		canceled <- out{res, err}
	}()
	// Also queued: this one must wait for its own result.
	waited := make(chan out, 1)
	go func() {
		res, err := m.Mutate(context.Background(), am.MutationAdd, am.S{"C"}, nil)
		waited <- out{res, err}
	}()
	require.Eventually(t, func() bool {
		return m.IsQueued(am.MutationAdd, am.S{"B"}, false, true, 0) >= 0 &&
			m.IsQueued(am.MutationAdd, am.S{"C"}, false, true, 0) >= 0
	}, deadline, time.Millisecond, "both mutations queued")
	cancel()
	select {
	case o := <-canceled:
		assert.Equal(t, am.Canceled, o.res)
		assert.ErrorIs(t, o.err, context.Canceled)
	case <-time.After(deadline):
		t.Fatal("Mutate did not return after its ctx was canceled")
	}
	select {
	case o := <-waited:
		t.Fatalf("Mutate(C) returned %v, %v before its mutation ran", o.res, o.err)
	default:
	}
	close(h.release)
	select {
	case o := <-waited:
		assert.Equal(t, am.Executed, o.res)
		assert.NoError(t, o.err)
	case <-time.After(deadline):
		t.Fatal("Mutate(C) never returned")
	}
	assert.Equal(t, am.Executed, <-drained)
	assertActive(t, m, "A", "C")
	assert.False(t, m.Is1("B"), "the canceled mutation never ran")
	finish(t, m)
}

// Many goroutines mutate at once; each gets Executed for its own
// non-conflicting mutation.
func TestMutateConcurrent(t *testing.T) {
	const workers, rounds = 16, 25
	s := am.Struct{}
	for i := range workers {
		s[fmt.Sprintf("S%d", i)] = am.State{}
	}
	m := newM(t, s, nil, nil, nil)
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for i := range workers {
		name := fmt.Sprintf("S%d", i)
		wg.Go(func() {
			ctx := context.Background()
			for r := range rounds {
				res, err := m.Mutate(ctx, am.MutationAdd, am.S{name}, am.A{"r": r})
				if err != nil || res != am.Executed {
					errs <- fmt.Errorf("%s add #%d: %v, %v", name, r, res, err)
					return
				}
				if !m.Is1(name) {
					errs <- fmt.Errorf("%s add #%d: not active after Executed", name, r)
					return
				}
				res, err = m.Mutate(ctx, am.MutationRemove, am.S{name}, am.A{"r": r})
				if err != nil || res != am.Executed {
					errs <- fmt.Errorf("%s remove #%d: %v, %v", name, r, res, err)
					return
				}
				if m.Is1(name) {
					errs <- fmt.Errorf("%s remove #%d: active after Executed", name, r)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	assertActive(t, m)
	for name := range s {
		assert.Equal(t, uint64(2*rounds), m.Tick(name), name)
	}
	finish(t, m)
}

func TestBindDetachTracer(t *testing.T) {
	m := newN(t)
	tr := &tracer{}
	require.NoError(t, m.BindTracer(tr))
	m.Add1("A", nil)
	inits, ends, queueEnds := tr.counts()
	assert.Equal(t, 1, inits)
	assert.Equal(t, 1, ends)
	assert.Equal(t, 1, queueEnds, "QueueEnd after the pass")
	require.NoError(t, m.DetachTracer(tr))
	m.Add1("B", nil)
	inits2, ends2, queueEnds2 := tr.counts()
	assert.Equal(t, []int{inits, ends, queueEnds}, []int{inits2, ends2, queueEnds2}, "detached")
	assert.Error(t, m.DetachTracer(tr), "not bound")
	finish(t, m)
}

// BindTracer and DetachTracer are safe concurrently with transitions.
func TestBindTracerConcurrent(t *testing.T) {
	m := newN(t)
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := range 200 {
			if i%2 == 0 {
				m.Add1("A", nil)
			} else {
				m.Remove1("A", nil)
			}
		}
	})
	wg.Go(func() {
		for range 50 {
			tr := &tracer{}
			_ = m.BindTracer(tr)
			_ = m.DetachTracer(tr)
		}
	})
	wg.Wait()
	finish(t, m)
}

func TestEval(t *testing.T) {
	m := newN(t)
	ran := false
	assert.True(t, m.Eval("test", func() { ran = true }, nil))
	assert.True(t, ran)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	assert.False(t, m.Eval("canceled", func() { t.Error("ran with a canceled ctx") }, ctx))
	var inside bool
	r := newRecorder().on("AState", func(e *am.Event) {
		inside = e.Machine.Eval("inside", func() {}, nil)
	})
	require.NoError(t, m.BindHandlers(r))
	m.Add1("A", nil)
	assert.False(t, inside, "Eval inside a handler returns false")
	finish(t, m)
}

// Team decision: no exported method panics on an unknown name; queries see
// an inactive state with tick 0.
func TestUnknownNamesNeverPanic(t *testing.T) {
	m := newN(t, "A")
	u := "Unknown"
	require.NotPanics(t, func() {
		assert.False(t, m.Is1(u))
		assert.False(t, m.Is(am.S{"A", u}))
		assert.True(t, m.Not1(u))
		assert.True(t, m.Not(am.S{u}))
		assert.False(t, m.Any1(u))
		assert.False(t, m.Any(am.S{u}))
		assert.Equal(t, uint64(0), m.Tick(u))
		assert.Equal(t, am.Time{1, 0}, m.Time(am.S{"A", u}))
		assert.Equal(t, uint64(0), m.Clock(am.S{u})[u])
		assert.Equal(t, uint64(1), m.TimeSum(am.S{"A", u}))
		assert.True(t, m.IsTime(am.Time{0}, am.S{u}))
		assert.Equal(t, -1, m.Index(u))
		assert.False(t, m.Has1(u))
		assert.Equal(t, "", m.Switch(u))
		assert.False(t, isClosed(m.When1(u, nil)))
		assert.True(t, isClosed(m.WhenNot1(u, nil)))
		assert.Error(t, m.NewStateCtx(u).Err())
		ctx, cancel := context.WithCancel(context.Background())
		chans := []<-chan struct{}{
			m.WhenTime(am.S{u}, am.Time{1}, ctx),
			m.WhenTicks(u, 1, ctx),
			m.WhenTicksEq(u, 1, ctx),
			m.WhenArgs(u, am.A{"a": 1}, ctx),
		}
		cancel()
		for i, ch := range chans {
			waitClosed(t, ch, fmt.Sprintf("waiter %d", i))
		}
		_ = m.Inspect(am.S{u})
		_ = m.IsQueued(am.MutationAdd, am.S{u}, false, false, 0)
	})
	assert.False(t, m.Is1(am.Exception), "queries record no error")
	assert.NoError(t, m.Err())
	assert.Panics(t, func() { m.MustParseStates(am.S{u}) }, "Must... may panic")
	assert.Equal(t, am.S{"A", "B"}, m.MustParseStates(am.S{"A", "B", "A"}))

	for _, mut := range []func() am.Result{
		func() am.Result { return m.Add1(u, nil) },
		func() am.Result { return m.Remove(am.S{"A", u}, nil) },
		func() am.Result { return m.Set(am.S{u}, nil) },
		func() am.Result { return m.AddErrState(u, errors.New("x"), nil) },
	} {
		var res am.Result
		require.NotPanics(t, func() { res = mut() })
		assert.Equal(t, am.Canceled, res)
		assert.ErrorIs(t, m.Err(), am.ErrStateUnknown)
		assert.Empty(t, m.Queue())
		assert.True(t, m.Is1("A"))
	}
	assert.True(t, m.Is1(am.Exception))
	finish(t, m)
}

// Unknown names inside a handler are canceled too, without a panic.
func TestUnknownNameFromHandler(t *testing.T) {
	var res am.Result
	r := newRecorder().on("AState", func(e *am.Event) { res = e.Machine.Add1("Unknown", nil) })
	m := newM(t, structN(), namesN, r, nil)
	assert.Equal(t, am.Executed, m.Add1("A", nil))
	assert.Equal(t, am.Canceled, res)
	assert.ErrorIs(t, m.Err(), am.ErrStateUnknown)
	finish(t, m)
}

// Team decision: data-driven input never panics.
func TestWhenArgsNonComparable(t *testing.T) {
	m := newN(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var w1, w2 <-chan struct{}
	require.NotPanics(t, func() {
		w1 = m.WhenArgs("B", am.A{"x": []int{1}}, ctx)
		w2 = m.WhenArgs("B", am.A{"y": 1}, ctx)
		m.Add1("B", am.A{"x": []int{1}, "y": map[string]int{"a": 1}})
	})
	assert.False(t, isClosed(w2), "a non-comparable value does not equal 1")
	cancel()
	waitClosed(t, w1, "w1 after cancel")
	waitClosed(t, w2, "w2 after cancel")
	finish(t, m)
}

func TestExportUnverified(t *testing.T) {
	m := am.New(context.Background(), structN(), nil)
	m.Add1("B", nil)
	var data *am.Serialized
	require.NotPanics(t, func() { data = m.Export() })
	require.NotNil(t, data)
	assert.Equal(t, m.StateNames(), data.StateNames)
	assert.Equal(t, m.Time(nil), data.Time)
	assert.Equal(t, am.S{"A", "B", "C", "D", am.Exception}, data.StateNames, "alphabetical until verified")
	finish(t, m)
}

// Export and Time(nil) are consistent snapshots under concurrent mutations.
func TestExportConcurrent(t *testing.T) {
	m := newN(t)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			// A and B always change together.
			if i%2 == 0 {
				m.Add(am.S{"A", "B"}, nil)
			} else {
				m.Remove(am.S{"A", "B"}, nil)
			}
		}
	})
	for range 500 {
		e := m.Export()
		require.Len(t, e.Time, 5)
		require.Equal(t, e.Time[0], e.Time[1], "torn Export %v", e.Time)
		tm := m.Time(nil)
		require.Equal(t, tm[0], tm[1], "torn Time %v", tm)
	}
	close(stop)
	wg.Wait()
	finish(t, m)
}

// BindHandlers rejects what is not a pointer to a struct, and a handler with
// a wrong signature, with an error.
func TestBindHandlersErrors(t *testing.T) {
	m := newN(t)
	assert.Error(t, m.BindHandlers(nil))
	assert.Error(t, m.BindHandlers(struct{}{}))
	x := 1
	assert.Error(t, m.BindHandlers(&x))
	assert.Error(t, m.BindHandlers(&badSignature{}))
	finish(t, m)
}

// badSignature has an AEnter handler with the wrong shape.
type badSignature struct{}

func (b *badSignature) AEnter(int) bool { return true }
