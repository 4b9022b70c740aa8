package machine_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	am "github.com/arpc-go/arpc/pkg/machine"
)

// TestSelectReadyNow: a case ready at once is chosen without waiting, and
// Selected tells what it saw.
func TestSelectReadyNow(t *testing.T) {
	m1, m2 := newN(t), newN(t, "B")
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	sel, err := am.Select(ctx, am.OnActive(m1, "A"), am.OnActive(m2, "B"))
	require.NoError(t, err)
	assert.Equal(t, 1, sel.Index)
	assert.Equal(t, am.Clock{"B": 1}, sel.Clock)

	sel, err = am.Select(ctx, am.OnInactive(m2, "B"), am.OnTime(m2, am.S{"B"}, am.Time{1}))
	require.NoError(t, err)
	assert.Equal(t, 1, sel.Index)
}

// TestSelectDefault: Default is chosen when nothing is ready at once, and
// never when something is; an OnArgs case is never ready at once.
func TestSelectDefault(t *testing.T) {
	m := newN(t, "B")
	ctx := context.Background()
	sel, err := am.Select(ctx, am.OnActive(m, "A"), am.OnArgs(m, "B", am.A{"x": 1}), am.Default())
	require.NoError(t, err)
	assert.Equal(t, 2, sel.Index)

	for range 100 {
		sel, err = am.Select(ctx, am.Default(), am.OnActive(m, "B"))
		require.NoError(t, err)
		require.Equal(t, 1, sel.Index)
	}
}

// TestSelectWaits: with nothing ready, Select waits on every case and
// chooses the one that becomes ready, on whichever machine.
func TestSelectWaits(t *testing.T) {
	m1, m2 := newN(t), newN(t)
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	type out struct {
		sel am.Selected
		err error
	}
	outs := make(chan out, 1)
	go func() {
		sel, err := am.Select(ctx, am.OnActive(m1, "A"), am.OnArgs(m2, "C", am.A{"id": 7}),
			am.OnActive(m2, "D"))
		outs <- out{sel, err}
	}()
	// the OnArgs wait is registered once Select blocks
	waitUntil(t, "Select to wait", func() bool { return m2.CountArgsWaits() == 1 })
	m2.Add1("C", am.A{"id": 6})
	m2.Remove1("C", nil)
	m2.Add1("C", am.A{"id": 7})
	o := <-outs
	require.NoError(t, o.err)
	assert.Equal(t, 1, o.sel.Index)
	assert.Equal(t, am.Clock{"C": 3}, o.sel.Clock)
}

// TestSelectUniform: among ready cases the choice is uniformly random: over
// 3000 Selects on three always-ready cases, each is chosen 1000 times give
// or take 150 (about 6 standard deviations).
func TestSelectUniform(t *testing.T) {
	const n = 3000
	m := newN(t, "A", "B")
	ctx := context.Background()
	cases := []am.SelectCase{am.OnActive(m, "A"), am.OnActive(m, "B"), am.OnInactive(m, "C")}
	var counts [3]int
	for range n {
		sel, err := am.Select(ctx, cases...)
		require.NoError(t, err)
		counts[sel.Index]++
	}
	t.Logf("choices: %v", counts)
	for i, c := range counts {
		assert.InDelta(t, n/3, c, 150, "case %d chosen %d times of %d", i, c, n)
	}
}

// addCounter counts XState calls (X is Multi, so every Add enters it).
type addCounter struct{ n atomic.Int32 }

func (h *addCounter) XState(*am.Event) { h.n.Add(1) }

// TestSelectSendOnlyWhenChosen: a Send runs its mutation only when its case
// is chosen: over 1000 Selects of two always-ready Sends (on two machines)
// the mutations ran 1000 times in all, about half each; a Send not chosen
// because another case was ready leaves its machine untouched.
func TestSelectSendOnlyWhenChosen(t *testing.T) {
	const n = 1000
	s := am.Struct{"X": {Multi: true}, "Y": {}}
	h1, h2 := &addCounter{}, &addCounter{}
	m1 := newM(t, s, nil, h1, nil)
	m2 := newM(t, s, nil, h2, nil)
	ctx := context.Background()
	for range n {
		sel, err := am.Select(ctx, am.Send(m1, nil, am.MutationAdd, am.S{"X"}, nil),
			am.Send(m2, nil, am.MutationAdd, am.S{"X"}, nil))
		require.NoError(t, err)
		require.Equal(t, am.Executed, sel.Result)
	}
	t.Logf("sends: %d, %d", h1.n.Load(), h2.n.Load())
	assert.Equal(t, int32(n), h1.n.Load()+h2.n.Load(), "one mutation per Select")
	assert.InDelta(t, n/2, h1.n.Load(), 120)

	// a Send whose precondition doesn't hold on the machine is not ready:
	// the other case is chosen and the Send's machine is untouched
	before := m2.Time(nil)
	sel, err := am.Select(ctx, am.OnActive(m1, "X"),
		am.Send(m2, am.Clock{"Y": 1}, am.MutationAdd, am.S{"X"}, nil))
	require.NoError(t, err)
	assert.Equal(t, 0, sel.Index)
	assert.Equal(t, before, m2.Time(nil))

	// with a precondition that holds it is ready, and its Clock is the
	// precondition
	sel, err = am.Select(ctx, am.OnActive(m1, "Y"),
		am.Send(m2, am.Clock{"Y": 0}, am.MutationAdd, am.S{"Y"}, nil))
	require.NoError(t, err)
	assert.Equal(t, 1, sel.Index)
	assert.Equal(t, am.Clock{"Y": 0}, sel.Clock)
	assert.True(t, m2.Is1("Y"))
}

// racer is a Mutator whose MutateIf lets a competitor change the machine
// first, once: the precondition Select saw is stale when it reaches the
// machine.
type racer struct {
	*am.Machine
	compete func()
	once    sync.Once
}

func (r *racer) MutateIf(ctx context.Context, cond am.Clock, typ am.MutationType, states am.S,
	args am.A,
) (am.Result, error) {
	r.once.Do(r.compete)
	return r.Machine.MutateIf(ctx, cond, typ, states, args)
}

// TestSelectTakeConflict: a Take that loses its activation to a competitor
// changed nothing, counts a conflict and waits for the next activation,
// which it takes; its Clock names the tick it consumed.
func TestSelectTakeConflict(t *testing.T) {
	m := newN(t, "A")
	r := &racer{Machine: m}
	r.compete = func() {
		// another consumer takes tick 1, and a producer adds the next job
		require.Equal(t, am.Executed, m.Remove1("A", nil))
		require.Equal(t, am.Executed, m.Add1("A", nil))
	}
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	sel, err := am.Select(ctx, am.Take(r, "A", nil))
	require.NoError(t, err)
	assert.Equal(t, 0, sel.Index)
	assert.Equal(t, 1, sel.Conflicts)
	assert.Equal(t, am.Clock{"A": 3}, sel.Clock)
	assert.Equal(t, am.Executed, sel.Result)
	assert.Equal(t, uint64(4), m.Tick("A"))
}

// TestSelectSendConflict: a Send that loses its precondition is dropped
// from the Select, which goes on with the other cases.
func TestSelectSendConflict(t *testing.T) {
	m := newN(t)
	r := &racer{Machine: m, compete: func() { m.Add1("B", nil) }}
	sel, err := am.Select(context.Background(),
		am.Send(r, am.Clock{"B": 0}, am.MutationAdd, am.S{"A"}, nil), am.Default())
	require.NoError(t, err)
	assert.Equal(t, 1, sel.Index, "Default")
	assert.Equal(t, 1, sel.Conflicts)
	assert.False(t, m.Is1("A"))
}

// TestSelectTakeExactlyOnce: 8 goroutines take 400 activations of a state
// that a handler re-adds after each take: every activation is taken once.
func TestSelectTakeExactlyOnce(t *testing.T) {
	const takers, jobs = 8, 400
	h := &refill{left: jobs - 1}
	m := newM(t, am.Struct{"Job": {}, "Done": {}}, nil, h, nil, "Job")
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	var mu sync.Mutex
	taken := map[uint64]int{}
	var conflicts atomic.Int32
	var wg sync.WaitGroup
	for k := range takers {
		wg.Go(func() {
			for {
				sel, err := am.Select(ctx, am.Take(m, "Job", am.A{"by": k}), am.OnActive(m, "Done"))
				if err != nil {
					t.Errorf("taker %d: %v", k, err)
					return
				}
				conflicts.Add(int32(sel.Conflicts))
				if sel.Index == 1 {
					return
				}
				mu.Lock()
				taken[sel.Clock["Job"]]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	require.Len(t, taken, jobs)
	for tick, n := range taken {
		require.Equal(t, 1, n, "activation at tick %d taken %d times", tick, n)
	}
	t.Logf("%d activations taken by %d takers, %d conflicts", jobs, takers, conflicts.Load())
}

// refill re-adds Job after each take, left more times, then adds Done.
type refill struct{ left int }

func (h *refill) JobEnd(e *am.Event) {
	if h.left == 0 {
		e.Machine.Add1("Done", nil)
		return
	}
	h.left--
	e.Machine.Add1("Job", nil)
}

// TestSelectTimer: with nothing else ready, a Timer case is chosen exactly
// when its time comes (on synctest's clock); a state that comes first wins.
func TestSelectTimer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := am.New(context.Background(), structN(), nil)
		defer func() {
			m.Dispose()
			<-m.WhenDisposed()
		}()
		ctx := context.Background()
		start := time.Now()
		sel, err := am.Select(ctx, am.OnActive(m, "A"), am.Timer(time.Second), am.Timer(time.Hour))
		require.NoError(t, err)
		assert.Equal(t, 1, sel.Index)
		assert.Equal(t, time.Second, time.Since(start))

		start = time.Now()
		stop := time.AfterFunc(300*time.Millisecond, func() { m.Add1("A", nil) })
		defer stop.Stop()
		sel, err = am.Select(ctx, am.OnActive(m, "A"), am.Timer(time.Second))
		require.NoError(t, err)
		assert.Equal(t, 0, sel.Index)
		assert.Equal(t, 300*time.Millisecond, time.Since(start))

		// a timer of 0 is ready at once
		sel, err = am.Select(ctx, am.OnActive(m, "B"), am.Timer(0), am.Default())
		require.NoError(t, err)
		assert.Equal(t, 1, sel.Index)
	})
}

// TestSelectCtx: ctx ending first gives ctx.Err() and Index -1, whether it
// ended before the call or while Select waited.
func TestSelectCtx(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := am.New(context.Background(), structN(), nil)
		defer func() {
			m.Dispose()
			<-m.WhenDisposed()
		}()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		start := time.Now()
		sel, err := am.Select(ctx, am.OnActive(m, "A"), am.Take(m, "B", nil), am.Timer(time.Hour))
		require.ErrorIs(t, err, context.DeadlineExceeded)
		assert.Equal(t, -1, sel.Index)
		assert.Equal(t, 2*time.Second, time.Since(start))

		sel, err = am.Select(ctx, am.OnActive(m, "A"), am.Default())
		require.ErrorIs(t, err, context.DeadlineExceeded)
		assert.Equal(t, -1, sel.Index)
	})
}

// TestSelectDisposed: a machine disposed while Select waits on it gives
// ErrDisposed with its case's index; one disposed before, at once.
func TestSelectDisposed(t *testing.T) {
	m1 := newN(t)
	m2 := am.New(context.Background(), structN(), nil)
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	errc := make(chan error, 1)
	var idx atomic.Int32
	go func() {
		sel, err := am.Select(ctx, am.OnActive(m1, "A"), am.OnActive(m2, "A"))
		idx.Store(int32(sel.Index))
		errc <- err
	}()
	waitUntil(t, "Select to wait", func() bool { return m2.CountWaits() == 1 })
	m2.Dispose()
	require.ErrorIs(t, <-errc, am.ErrDisposed)
	assert.Equal(t, int32(1), idx.Load())
	waitClosed(t, m2.WhenDisposed(), "disposed")

	sel, err := am.Select(ctx, am.OnActive(m2, "A"), am.Default())
	require.ErrorIs(t, err, am.ErrDisposed)
	assert.Equal(t, 0, sel.Index)
}

// TestSelectInvalid: bad cases fail the call with Index -1.
func TestSelectInvalid(t *testing.T) {
	m := newN(t)
	ctx := context.Background()
	for name, cases := range map[string][]am.SelectCase{
		"zero":         {{}},
		"two defaults": {am.Default(), am.Default()},
		"nil machine":  {am.OnActive(nil, "A")},
		"time lengths": {am.OnTime(m, am.S{"A"}, nil)},
		"send type":    {am.Send(m, nil, am.MutationEval, am.S{"A"}, nil)},
	} {
		sel, err := am.Select(ctx, cases...)
		require.ErrorIs(t, err, am.ErrInvalidArgs, name)
		assert.Equal(t, -1, sel.Index, name)
	}
	for name, c := range map[string]am.SelectCase{
		"state": am.OnActive(m, "Nope"),
		"cond":  am.Send(m, am.Clock{"Nope": 1}, am.MutationAdd, am.S{"A"}, nil),
		"take":  am.Take(m, "Nope", nil),
	} {
		_, err := am.Select(ctx, c, am.Default())
		require.ErrorIs(t, err, am.ErrStateUnknown, name)
	}
}

// TestSelectLeavesNothing: when Select returns, chosen or not, its waits are
// released at once (goleak, in TestMain, checks the goroutines).
func TestSelectLeavesNothing(t *testing.T) {
	m1, m2 := newN(t, "D"), newN(t)
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	errc := make(chan error, 1)
	go func() {
		_, err := am.Select(ctx, am.OnActive(m1, "A"), am.OnArgs(m1, "B", nil), am.OnInactive(m1, "D"),
			am.Take(m2, "C", nil), am.OnTime(m2, am.S{"D"}, am.Time{5}), am.Timer(time.Hour))
		errc <- err
	}()
	waitUntil(t, "Select to wait", func() bool { return m2.CountWaits() == 2 && m1.CountArgsWaits() == 1 })
	m1.Add1("A", nil)
	require.NoError(t, <-errc)
	assert.Zero(t, m1.CountWaits()+m1.CountArgsWaits()+m2.CountWaits(), "waits left")

	ctx2, cancel2 := context.WithCancel(context.Background())
	go func() {
		_, err := am.Select(ctx2, am.OnActive(m2, "A"), am.OnArgs(m2, "B", nil))
		errc <- err
	}()
	waitUntil(t, "Select to wait", func() bool { return m2.CountWaits() == 1 && m2.CountArgsWaits() == 1 })
	cancel2()
	require.True(t, errors.Is(<-errc, context.Canceled))
	assert.Zero(t, m2.CountWaits()+m2.CountArgsWaits(), "waits left")
}
