package machine_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	am "github.com/arpc-go/arpc/pkg/machine"
)

func TestScenario34_HandlerQueuesMutation(t *testing.T) {
	var res am.Result
	r := newRecorder().on("BEnter", func(e *am.Event) {
		res = e.Machine.Add1("C", nil)
	})
	m := newM(t, structN(), namesN, r, nil, "A")
	assert.Equal(t, am.Executed, m.Set(am.S{"B"}, nil))
	assert.Equal(t, am.Queued, res, "a handler's mutation is queued")
	assertActive(t, m, "B", "C")
	calls := r.take()
	assert.Equal(t, 1, count(calls, "CEnter"))
	assert.Equal(t, 1, count(calls, "AExit"))
	assert.Empty(t, m.Queue())
	finish(t, m)
}

func TestScenario35_IsQueued(t *testing.T) {
	var (
		results    []am.Result
		qLen       int
		idxC, idxA int
	)
	r := newRecorder().on("AState", func(e *am.Event) {
		m := e.Machine
		results = append(results, m.Add1("B", nil), m.Add1("C", nil), m.Add1("D", nil))
		qLen = len(m.Queue())
		idxC = m.IsQueued(am.MutationAdd, am.S{"C"}, false, false, 0)
		idxA = m.IsQueued(am.MutationAdd, am.S{"A"}, false, false, 0)
	})
	m := newM(t, structN(), namesN, r, nil)
	assert.Equal(t, am.Executed, m.Add1("A", nil))
	assert.Equal(t, []am.Result{am.Queued, am.Queued, am.Queued}, results)
	assert.Equal(t, 3, qLen)
	assert.Equal(t, 1, idxC)
	assert.Equal(t, -1, idxA)
	assertActive(t, m, "A", "B", "C", "D")
	finish(t, m)
}

func TestScenario36_QueueDedupe(t *testing.T) {
	var lens []int
	r := newRecorder().on("AState", func(e *am.Event) {
		m := e.Machine
		for range 3 {
			m.Add1("B", nil)
		}
		lens = append(lens, len(m.Queue()))
		m.Remove1("B", nil)
		lens = append(lens, len(m.Queue()))
		m.Remove1("B", nil)
		lens = append(lens, len(m.Queue()))
	})
	m := newM(t, structN(), namesN, r, nil, "B")
	assert.Equal(t, am.Executed, m.Add1("A", nil))
	assert.Equal(t, []int{1, 2, 2}, lens)
	assertActive(t, m, "A")
	finish(t, m)
}

func TestScenario37_WhenQueueEnds(t *testing.T) {
	var during <-chan struct{}
	var closedInHandler bool
	r := newRecorder().on("AState", func(e *am.Event) {
		during = e.Machine.WhenQueueEnds(context.Background())
		closedInHandler = isClosed(during)
	})
	m := newM(t, structN(), namesN, r, nil)
	assert.True(t, isClosed(m.WhenQueueEnds(context.Background())), "idle: already closed")
	assert.Equal(t, am.Executed, m.Add1("A", nil))
	assert.False(t, closedInHandler, "open while the pass runs")
	assert.True(t, isClosed(during), "closed by the time Add1 returns")
	finish(t, m)
}

// Which queued mutations are dropped as duplicates, and IsQueued.
func TestQueueDedupeRulesAndIsQueued(t *testing.T) {
	var (
		lens []int
		idx  []int
	)
	r := newRecorder().on("AState", func(e *am.Event) {
		m := e.Machine
		step := func(res am.Result) { lens = append(lens, len(m.Queue())) }
		step(m.Add1("B", nil))            // 1
		step(m.Add1("B", nil))            // dup: 1
		step(m.Add1("B", am.A{"x": 1}))   // args: never a dup: 2
		step(m.Remove1("B", nil))         // 3
		step(m.Add1("B", nil))            // a Remove(B) follows the first Add(B): 4
		step(m.Add(am.S{"B", "C"}, nil))  // 5
		step(m.Add(am.S{"C", "B"}, nil))  // same set: dup: 5
		step(m.Remove(am.S{"D"}, nil))    // 6
		step(m.Remove(am.S{"D"}, am.A{})) // empty args count as none: dup: 6
		q := func(typ am.MutationType, s am.S, noArgs, strict bool, start int) {
			idx = append(idx, m.IsQueued(typ, s, noArgs, strict, start))
		}
		q(am.MutationAdd, am.S{"B"}, false, false, 0)     // 0
		q(am.MutationAdd, am.S{"B"}, false, false, 1)     // 1
		q(am.MutationAdd, am.S{"B"}, true, false, 1)      // 3
		q(am.MutationAdd, am.S{"C"}, false, false, 0)     // 4: a superset
		q(am.MutationAdd, am.S{"C"}, false, true, 0)      // -1: not exactly
		q(am.MutationAdd, am.S{"C", "B"}, false, true, 0) // 4
		q(am.MutationRemove, am.S{"B"}, false, false, 0)  // 2
		q(am.MutationSet, am.S{"B"}, false, false, 0)     // -1
		q(am.MutationAdd, am.S{"B"}, false, false, 99)    // -1
		q(am.MutationRemove, am.S{"D"}, false, false, 3)  // 5
	})
	m := newM(t, structN(), namesN, r, nil)
	assert.Equal(t, am.Executed, m.Add1("A", nil))
	assert.Equal(t, []int{1, 1, 2, 3, 4, 5, 5, 6, 6}, lens)
	assert.Equal(t, []int{0, 1, 3, 4, -1, 4, 2, -1, -1, 5}, idx)
	assertActive(t, m, "A", "B", "C")
	assert.Empty(t, m.Queue())
	finish(t, m)
}

// Queue() is a copy of the queued items.
func TestQueueCopy(t *testing.T) {
	var q []*am.Mutation
	r := newRecorder().on("AState", func(e *am.Event) {
		e.Machine.Add(am.S{"B", "C"}, am.A{"k": 1})
		q = e.Machine.Queue()
	})
	m := newM(t, structN(), namesN, r, nil)
	m.Add1("A", nil)
	require.Len(t, q, 1)
	assert.Equal(t, am.MutationAdd, q[0].Type)
	assert.Equal(t, am.S{"B", "C"}, q[0].CalledStates)
	assert.Equal(t, am.A{"k": 1}, q[0].Args)
	assert.False(t, q[0].Auto)
	finish(t, m)
}

// A WhenQueueEnds taken during a pass honours its ctx.
func TestWhenQueueEndsCtx(t *testing.T) {
	var ch <-chan struct{}
	var closedAfterCancel bool
	r := newRecorder().on("AState", func(e *am.Event) {
		ctx, cancel := context.WithCancel(context.Background())
		ch = e.Machine.WhenQueueEnds(ctx)
		cancel()
		select {
		case <-ch:
			closedAfterCancel = true
		case <-time.After(deadline):
		}
	})
	m := newM(t, structN(), namesN, r, nil)
	m.Add1("A", nil)
	assert.True(t, closedAfterCancel, "closed by its ctx before the pass ended")
	finish(t, m)
}
