package machine_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	am "github.com/arpc-go/arpc/pkg/machine"
)

// enterCounter counts AEnter calls; block, when set, holds the first BEnter
// until release closes, keeping the queue busy.
type enterCounter struct {
	aEnters atomic.Int32
	block   bool
	entered chan struct{}
	release chan struct{}
}

func (h *enterCounter) AEnter(*am.Event) bool {
	h.aEnters.Add(1)
	return true
}

func (h *enterCounter) BEnter(*am.Event) bool {
	if h.block {
		h.block = false
		close(h.entered)
		<-h.release
	}
	return true
}

// TestMutateIfHolds: a precondition that holds lets the mutation run, as
// Mutate would; an empty one is no precondition.
func TestMutateIfHolds(t *testing.T) {
	m := newN(t, "B")
	ctx := context.Background()
	res, err := m.MutateIf(ctx, am.Clock{"A": 0, "B": 1}, am.MutationAdd, am.S{"A"}, nil)
	require.NoError(t, err)
	assert.Equal(t, am.Executed, res)
	assert.Equal(t, am.Time{1, 1, 0, 0, 0}, m.Time(nil))

	res, err = m.MutateIf(ctx, nil, am.MutationRemove, am.S{"A"}, nil)
	require.NoError(t, err)
	assert.Equal(t, am.Executed, res)
	assert.False(t, m.Is1("A"))
}

// TestMutateIfFails: a precondition that doesn't hold changes nothing (no
// handler runs, no tick moves) and gives Canceled with ErrPrecondition,
// which is not ErrCanceled; the machine's Err is untouched.
func TestMutateIfFails(t *testing.T) {
	h := &enterCounter{}
	m := newM(t, structN(), namesN, h, nil, "B")
	before := m.Time(nil)
	res, err := m.MutateIf(context.Background(), am.Clock{"B": 3}, am.MutationAdd, am.S{"A"}, nil)
	assert.Equal(t, am.Canceled, res)
	require.ErrorIs(t, err, am.ErrPrecondition)
	assert.NotErrorIs(t, err, am.ErrCanceled)
	assert.Contains(t, err.Error(), "tick of B is 1, not 3")
	assert.Equal(t, before, m.Time(nil))
	assert.Zero(t, h.aEnters.Load(), "no handler runs")
	assert.NoError(t, m.Err())

	// a Remove of an inactive state is a no-op that Mutate answers at
	// once; with a precondition it is checked all the same
	res, err = m.MutateIf(context.Background(), am.Clock{"A": 5}, am.MutationRemove, am.S{"A"}, nil)
	assert.Equal(t, am.Canceled, res)
	require.ErrorIs(t, err, am.ErrPrecondition)
}

// TestMutateIfBadInput: an unknown state in the precondition fails the
// call alone; a bad type too.
func TestMutateIfBadInput(t *testing.T) {
	m := newN(t)
	ctx := context.Background()
	res, err := m.MutateIf(ctx, am.Clock{"Nope": 0}, am.MutationAdd, am.S{"A"}, nil)
	assert.Equal(t, am.Canceled, res)
	require.ErrorIs(t, err, am.ErrStateUnknown)
	assert.NoError(t, m.Err(), "the machine's Err is untouched")
	assert.False(t, m.Is1("A"))

	_, err = m.MutateIf(ctx, am.Clock{"A": 0}, am.MutationEval, am.S{"A"}, nil)
	require.ErrorIs(t, err, am.ErrInvalidArgs)
}

// TestMutateIfCheckedAtItsTurn: the precondition is checked when the
// mutation's turn in the queue comes, not when it is queued: two
// mutations queued behind a busy handler with the same precondition, and
// only the first one runs.
func TestMutateIfCheckedAtItsTurn(t *testing.T) {
	h := &enterCounter{block: true, entered: make(chan struct{}), release: make(chan struct{})}
	m := newM(t, structN(), namesN, h, nil)
	ctx := context.Background()
	busy := make(chan error, 1)
	go func() {
		_, err := m.Mutate(ctx, am.MutationAdd, am.S{"B"}, nil)
		busy <- err
	}()
	<-h.entered
	cond := am.Clock{"A": 0}
	type out struct {
		res am.Result
		err error
	}
	outs := make(chan out, 2)
	for range 2 {
		go func() {
			res, err := m.MutateIf(ctx, cond, am.MutationAdd, am.S{"A"}, nil)
			outs <- out{res, err}
		}()
	}
	waitUntil(t, "both queued", func() bool { return len(m.Queue()) == 2 })
	close(h.release)
	require.NoError(t, <-busy)
	var won, lost int
	for range 2 {
		o := <-outs
		switch {
		case o.err == nil && o.res == am.Executed:
			won++
		case errors.Is(o.err, am.ErrPrecondition) && o.res == am.Canceled:
			lost++
		default:
			t.Fatalf("unexpected outcome %v, %v", o.res, o.err)
		}
	}
	assert.Equal(t, 1, won)
	assert.Equal(t, 1, lost)
	assert.Equal(t, int32(1), h.aEnters.Load(), "A entered once")
}

// TestMutateIfNotADuplicate: a plain Add queued behind an identical
// conditional one is not skipped as a duplicate, since the conditional one
// may not run.
func TestMutateIfNotADuplicate(t *testing.T) {
	h := &enterCounter{block: true, entered: make(chan struct{}), release: make(chan struct{})}
	m := newM(t, structN(), namesN, h, nil)
	ctx := context.Background()
	busy := make(chan error, 1)
	go func() {
		_, err := m.Mutate(ctx, am.MutationAdd, am.S{"B"}, nil)
		busy <- err
	}()
	<-h.entered
	condErr := make(chan error, 1)
	go func() {
		_, err := m.MutateIf(ctx, am.Clock{"A": 7}, am.MutationAdd, am.S{"A"}, nil)
		condErr <- err
	}()
	waitUntil(t, "the conditional Add queued", func() bool { return len(m.Queue()) == 1 })
	assert.Equal(t, am.Queued, m.Add1("A", nil))
	close(h.release)
	require.NoError(t, <-busy)
	require.ErrorIs(t, <-condErr, am.ErrPrecondition)
	waitClosed(t, m.WhenQueueEnds(ctx), "queue end")
	assert.True(t, m.Is1("A"), "the plain Add ran")
}

// TestMutateIfFromHandler: from the goroutine draining the machine it
// returns Queued, nil, and the precondition is checked at its turn.
func TestMutateIfFromHandler(t *testing.T) {
	m := newN(t)
	var res am.Result
	var err error
	h := &stateHook{fn: func(e *am.Event) {
		res, err = e.Machine.MutateIf(context.Background(), am.Clock{"C": 5}, am.MutationAdd, am.S{"C"}, nil)
		e.Machine.Add1("D", nil)
	}}
	require.NoError(t, m.BindHandlers(h))
	require.Equal(t, am.Executed, m.Add1("B", nil))
	assert.Equal(t, am.Queued, res)
	require.NoError(t, err)
	assert.False(t, m.Is1("C"), "its precondition failed at its turn")
	assert.True(t, m.Is1("D"))
}

// stateHook runs fn in BState.
type stateHook struct {
	fn func(e *am.Event)
}

func (h *stateHook) BState(e *am.Event) { h.fn(e) }

// TestMutateIfRace: N goroutines read the same tick and race to remove the
// state with it as their precondition: exactly one wins each round.
func TestMutateIfRace(t *testing.T) {
	const goroutines, rounds = 16, 50
	m := newN(t)
	ctx := context.Background()
	for round := range rounds {
		require.Equal(t, am.Executed, m.Add1("A", nil))
		tick := m.Tick("A")
		var wins, losses atomic.Int32
		var wg sync.WaitGroup
		start := make(chan struct{})
		for range goroutines {
			wg.Go(func() {
				<-start
				res, err := m.MutateIf(ctx, am.Clock{"A": tick}, am.MutationRemove, am.S{"A"}, nil)
				switch {
				case err == nil && res == am.Executed:
					wins.Add(1)
				case errors.Is(err, am.ErrPrecondition):
					losses.Add(1)
				default:
					t.Errorf("round %d: %v, %v", round, res, err)
				}
			})
		}
		close(start)
		wg.Wait()
		require.Equal(t, int32(1), wins.Load(), "round %d: winners", round)
		require.Equal(t, int32(goroutines-1), losses.Load(), "round %d: losers", round)
		require.Equal(t, tick+1, m.Tick("A"), "round %d: removed once", round)
	}
}

// pollEvery is the polling period of waitUntil.
const pollEvery = time.Millisecond

// waitUntil polls cond until it holds, failing the test after the deadline.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	require.Eventually(t, cond, deadline, pollEvery, what)
}
