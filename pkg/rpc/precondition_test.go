package rpc_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	am "github.com/arpc-go/arpc/pkg/machine"
	"github.com/arpc-go/arpc/pkg/rpc"
	"github.com/arpc-go/arpc/pkg/rpc/rpctest"
	ssC "github.com/arpc-go/arpc/states/client"
)

// TestMutateIfRemote: a precondition travels with the mutation and is
// checked by the source; a failed one changes nothing there, and when the
// call returns the mirror shows the clock that made it fail, even when it
// was stale before.
func TestMutateIfRemote(t *testing.T) {
	src := newTestSource(t, nil)
	// pushes are slow, so c1's mirror stays stale until its own reply
	srv := rpctest.NewServer(t, src, rpc.WithPushInterval(time.Minute))
	c1 := newTestClient(t, srv, "c1")
	c2 := newTestClient(t, srv, "c2")
	w := c1.Worker
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()

	res, err := w.MutateIf(ctx, am.Clock{sA: 0, sB: 0}, am.MutationAdd, am.S{sA}, nil)
	require.NoError(t, err)
	assert.Equal(t, am.Executed, res)
	assert.True(t, src.Is1(sA))
	assert.True(t, w.Is1(sA), "the mirror reflects it on return")

	// another client removes A; c1 still sees tick 1
	res, err = c2.Worker.Mutate(ctx, am.MutationRemove, am.S{sA}, nil)
	require.NoError(t, err)
	require.Equal(t, am.Executed, res)
	require.Equal(t, uint64(1), w.Tick(sA), "c1's mirror is stale")
	before := src.Time(nil)
	res, err = w.MutateIf(ctx, am.Clock{sA: 1}, am.MutationAdd, am.S{sB}, nil)
	assert.Equal(t, am.Canceled, res)
	require.ErrorIs(t, err, am.ErrPrecondition)
	assert.NotErrorIs(t, err, am.ErrCanceled)
	assert.Contains(t, err.Error(), "tick of A is 2, not 1")
	assert.Equal(t, before, src.Time(nil), "nothing changed on the source")
	assert.Equal(t, uint64(2), w.Tick(sA), "the failure's reply brought the clock")
	assert.NoError(t, src.Err())

	// arguments without a binary encoding travel as gob, with the
	// precondition
	res, err = w.MutateIf(ctx, am.Clock{sB: 1}, am.MutationAdd, am.S{sB}, am.A{"p": point{1, 2}})
	require.ErrorIs(t, err, am.ErrPrecondition)
	assert.Equal(t, am.Canceled, res)
	res, err = w.MutateIf(ctx, am.Clock{sB: 0}, am.MutationAdd, am.S{sB}, am.A{"p": point{1, 2}})
	require.NoError(t, err)
	assert.Equal(t, am.Executed, res)
	assert.True(t, src.Is1(sB))

	// bad input fails locally: nothing is sent
	calls := c1.CallCount()
	_, err = w.MutateIf(ctx, am.Clock{"Nope": 0}, am.MutationAdd, am.S{sA}, nil)
	require.ErrorIs(t, err, am.ErrStateUnknown)
	_, err = w.MutateIf(ctx, am.Clock{sA: 0}, am.MutationEval, am.S{sA}, nil)
	require.ErrorIs(t, err, am.ErrInvalidArgs)
	assert.Equal(t, calls, c1.CallCount())
	assert.NoError(t, w.Err())
}

// TestMutateIfRace: 10 clients see the same activation and race to remove
// it with its tick as their precondition: exactly one wins each round.
func TestMutateIfRace(t *testing.T) {
	const nClients, rounds = 10, 20
	src := newTestSource(t, nil)
	srv := rpctest.NewServer(t, src)
	workers := make([]*rpc.Worker, nClients)
	for i := range workers {
		workers[i] = newTestClient(t, srv, fmt.Sprintf("c%d", i)).Worker
	}
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	for round := range rounds {
		require.Equal(t, am.Executed, src.Add1(sA, nil))
		tick := src.Tick(sA)
		var wins, losses atomic.Int32
		var wg sync.WaitGroup
		for i, w := range workers {
			wg.Go(func() {
				waitCh(t, w.WhenTime(am.S{sA}, am.Time{tick}, ctx), "the activation on mirror")
				res, err := w.MutateIf(ctx, am.Clock{sA: tick}, am.MutationRemove, am.S{sA}, nil)
				switch {
				case err == nil && res == am.Executed:
					wins.Add(1)
				case errors.Is(err, am.ErrPrecondition) && res == am.Canceled:
					losses.Add(1)
				default:
					t.Errorf("round %d, client %d: %v, %v", round, i, res, err)
				}
			})
		}
		wg.Wait()
		require.Equal(t, int32(1), wins.Load(), "round %d: winners", round)
		require.Equal(t, int32(nClients-1), losses.Load(), "round %d: losers", round)
		require.Equal(t, tick+1, src.Tick(sA), "round %d: removed once", round)
	}
}

// TestMutateIfAfterRestart: after the server restarted with a new source
// whose ticks are lower, the mirror keeps its ticks by an offset; a
// precondition written in the mirror's ticks is checked correctly against
// the new source: the mirror's current tick holds, a stale one does not,
// and so does not the source's raw tick (which the mirror never showed).
func TestMutateIfAfterRestart(t *testing.T) {
	src1 := newTestSource(t, nil)
	for range 3 {
		src1.Add1(sA, nil)
		src1.Remove1(sA, nil)
	}
	src1.Add1(sA, nil)
	require.Equal(t, uint64(7), src1.Tick(sA))
	srv1, err := rpc.Listen(context.Background(), "127.0.0.1:0", src1)
	require.NoError(t, err)
	addr := srv1.Addr
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	c, err := rpc.Dial(ctx, addr, testStruct(), testNames,
		rpc.WithReconnect(true, time.Millisecond, 20*time.Millisecond))
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	w := c.Worker
	require.Equal(t, uint64(7), w.Tick(sA))

	// the new source: A active at tick 1, B active too (a sign of resync)
	src2 := newTestSource(t, nil, sA, sB)
	require.NoError(t, srv1.Close())
	var srv2 *rpc.Server
	require.Eventually(t, func() bool {
		srv2, err = rpc.Listen(context.Background(), addr, src2)
		return err == nil
	}, deadline, poll, "listening again on %s", addr)
	t.Cleanup(func() { _ = srv2.Close() })
	require.NoError(t, am.WaitFor(ctx, w, sB), "the mirror resynced")
	require.NoError(t, am.WaitFor(ctx, c.Mach, ssC.Ready))
	require.Equal(t, uint64(1), src2.Tick(sA))
	require.Equal(t, uint64(7), w.Tick(sA), "mirrored ticks never decrease: offset 6")

	res, err := w.MutateIf(ctx, am.Clock{sA: 5}, am.MutationRemove, am.S{sA}, nil)
	require.ErrorIs(t, err, am.ErrPrecondition, "a stale tick")
	assert.Equal(t, am.Canceled, res)
	_, err = w.MutateIf(ctx, am.Clock{sA: 1}, am.MutationRemove, am.S{sA}, nil)
	require.ErrorIs(t, err, am.ErrPrecondition, "the source's raw tick is not the mirror's")
	assert.True(t, src2.Is1(sA), "nothing changed")

	res, err = w.MutateIf(ctx, am.Clock{sA: 7, sB: 1}, am.MutationRemove, am.S{sA}, nil)
	require.NoError(t, err)
	assert.Equal(t, am.Executed, res)
	assert.Equal(t, uint64(2), src2.Tick(sA))
	assert.Equal(t, uint64(8), w.Tick(sA))

	// Select's Take uses the mirror's ticks too
	require.Equal(t, am.Executed, src2.Add1(sA, nil))
	require.NoError(t, am.Wait(ctx, w, func(ctx context.Context) <-chan struct{} {
		return w.WhenTime(am.S{sA}, am.Time{9}, ctx)
	}))
	sel, err := am.Select(ctx, am.Take(w, sA, nil))
	require.NoError(t, err)
	assert.Equal(t, am.Clock{sA: 9}, sel.Clock)
	assert.Equal(t, uint64(4), src2.Tick(sA))
}

// jobRefill re-adds A on the source after each take, until left runs out;
// then it adds B.
type jobRefill struct {
	mu   sync.Mutex
	left int
	// by counts the takes per client, as the source saw them
	by map[any]int
}

func (h *jobRefill) AEnd(e *am.Event) {
	h.mu.Lock()
	h.by[e.Args["by"]]++
	last := h.left == 0
	h.left--
	h.mu.Unlock()
	if last {
		e.Machine.Add1(sB, nil)
		return
	}
	e.Machine.Add1(sA, nil)
}

// TestSelectTakeAcrossClients: 10 clients select on Take of the same remote
// state, which the source re-adds after each take, or on B, which ends the
// run: every activation is taken by exactly one client (the source counts
// as many takes as the clients report, and no tick is reported twice).
func TestSelectTakeAcrossClients(t *testing.T) {
	const nClients, jobs = 10, 200
	h := &jobRefill{left: jobs - 1, by: map[any]int{}}
	src := newTestSource(t, h, sA)
	srv := rpctest.NewServer(t, src, rpc.WithPushInterval(0))
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	var mu sync.Mutex
	ticks := map[uint64]int{}
	mine := make([]int, nClients)
	var conflicts atomic.Int32
	var wg sync.WaitGroup
	for i := range nClients {
		w := newTestClient(t, srv, fmt.Sprintf("c%d", i)).Worker
		wg.Go(func() {
			for {
				sel, err := am.Select(ctx, am.Take(w, sA, am.A{"by": i}), am.OnActive(w, sB))
				if err != nil {
					t.Errorf("client %d: %v", i, err)
					return
				}
				conflicts.Add(int32(sel.Conflicts))
				if sel.Index == 1 {
					return
				}
				mu.Lock()
				ticks[sel.Clock[sA]]++
				mine[i]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	require.Len(t, ticks, jobs, "activations taken")
	for tick, n := range ticks {
		require.Equal(t, 1, n, "tick %d taken %d times", tick, n)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for i, n := range mine {
		assert.Equal(t, n, h.by[i], "client %d: takes it reported vs the source's", i)
	}
	t.Logf("%d jobs taken by %d clients %v, %d conflicts", jobs, nClients, mine, conflicts.Load())
}

// TestSelectMirrors: a Select over two mirrors of different servers and a
// timer chooses the state that comes first, wherever it is, and the timer
// when none comes.
func TestSelectMirrors(t *testing.T) {
	src1, src2 := newTestSource(t, nil), newTestSource(t, nil)
	w1 := newTestClient(t, rpctest.NewServer(t, src1), "c1").Worker
	w2 := newTestClient(t, rpctest.NewServer(t, src2), "c2").Worker
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	type out struct {
		sel am.Selected
		err error
	}
	outs := make(chan out, 1)
	sel := func(timer time.Duration) {
		s, err := am.Select(ctx, am.OnActive(w1, sA), am.OnArgs(w2, sM, am.A{"n": 2}), am.Timer(timer))
		outs <- out{s, err}
	}
	go sel(time.Hour)
	// the remote wait is registered at some point: until Select returns,
	// activate M with other args, then with the awaited ones
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	var o out
	for got := false; !got; {
		select {
		case o = <-outs:
			got = true
		case <-tick.C:
			src2.Add1(sM, am.A{"n": 1})
			src2.Add1(sM, am.A{"n": 2})
		case <-ctx.Done():
			t.Fatal("Select did not return")
		}
	}
	require.NoError(t, o.err)
	assert.Equal(t, 1, o.sel.Index)

	go sel(20 * time.Millisecond)
	o = <-outs
	require.NoError(t, o.err)
	assert.Equal(t, 2, o.sel.Index)

	src1.Add1(sA, nil)
	go sel(time.Hour)
	o = <-outs
	require.NoError(t, o.err)
	assert.Equal(t, 0, o.sel.Index)
}
