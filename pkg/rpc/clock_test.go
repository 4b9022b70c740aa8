package rpc_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	am "github.com/arpc-go/arpc/pkg/machine"
	"github.com/arpc-go/arpc/pkg/rpc"
	"github.com/arpc-go/arpc/pkg/rpc/rpctest"
)

// chainHandlers: A's final handler queues C (which removes B), and MEnter
// refuses an M whose args say deny.
type chainHandlers struct{}

func (chainHandlers) AState(e *am.Event) { e.Machine.Add1(sC, nil) }

func (chainHandlers) MEnter(e *am.Event) bool {
	deny, _ := e.Args["deny"].(bool)
	return !deny
}

// TestReplyCarriesDiff: once a mutation returns, the mirror shows what it
// caused on the source, including the mutations the source's handlers queued,
// without waiting for a push (pushes are an hour apart here).
func TestReplyCarriesDiff(t *testing.T) {
	src := newTestSource(t, &chainHandlers{}, sB)
	srv, c := rpctest.NewPair(t, src, []rpc.ServerOption{rpc.WithPushInterval(time.Hour)}, nil)
	w := c.Worker
	pushes := srv.CallCount()

	require.Equal(t, am.Executed, w.Add1(sA, nil))
	require.True(t, src.Is(am.S{sA, sC}) && src.Not1(sB), "source: %s", src.StringAll())
	assert.Equal(t, src.Time(nil), w.Time(nil), "after Add1(A) with a queued C")
	assert.True(t, w.Is(am.S{sA, sC}))
	assert.True(t, w.Not1(sB))

	require.Equal(t, am.Executed, w.Remove1(sA, nil))
	assert.Equal(t, src.Time(nil), w.Time(nil), "after Remove1")
	assert.True(t, w.Not1(sA))

	require.Equal(t, am.Executed, w.Set(am.S{sB, sM}, nil))
	assert.Equal(t, src.Time(nil), w.Time(nil), "after Set")
	assert.Equal(t, am.S{sB, sM}, w.ActiveStates())

	require.Equal(t, am.Executed, w.Add1(sM, nil))
	assert.Equal(t, uint64(3), w.Tick(sM), "a Multi re-entry")

	// a refused mutation: its result crosses the wire, nothing changes
	before := w.Time(nil)
	assert.Equal(t, am.Canceled, w.Add1(sM, am.A{"deny": true}))
	assert.Equal(t, before, w.Time(nil))
	assert.Equal(t, before, src.Time(nil))

	assert.Equal(t, pushes, srv.CallCount(), "no push was needed")
}

// TestPushes: changes made on the source itself reach the mirror; a burst of
// them is gathered into few pushes, and the last change is always flushed.
func TestPushes(t *testing.T) {
	const n = 100
	src := newTestSource(t, nil)
	srv, c := rpctest.NewPair(t, src, []rpc.ServerOption{rpc.WithPushInterval(50 * time.Millisecond)}, nil)
	w := c.Worker
	pushes := srv.CallCount()

	for i := range n {
		src.Add1(sM, nil)
		if i%2 == 0 {
			src.Add1(sA, nil)
		} else {
			src.Remove1(sA, nil)
		}
	}
	waitSynced(t, w, src)
	assert.Equal(t, uint64(2*n-1), w.Tick(sM))
	sent := srv.CallCount() - pushes
	assert.Positive(t, sent)
	assert.Less(t, sent, uint64(n/2), "%d changes took %d pushes: not debounced", 2*n, sent)

	// a lone change after a quiet period is pushed too
	src.Add1(sB, nil)
	waitSynced(t, w, src)
	assert.True(t, w.Is1(sB))
}

// TestSyncResetsBaseline: after a batch of AddNS, Sync brings the mirror to the
// source's time and resets the server's baseline for this client, so the next
// push doesn't apply the batch a second time.
func TestSyncResetsBaseline(t *testing.T) {
	const (
		n        = 10
		interval = time.Second
	)
	src := newTestSource(t, nil)
	_, c := rpctest.NewPair(t, src, []rpc.ServerOption{rpc.WithPushInterval(interval)}, nil)
	w := c.Worker
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()

	start := time.Now()
	for range n {
		require.Equal(t, am.Queued, w.Add1NS(sM, nil))
	}
	require.Equal(t, am.Queued, w.AddNS(am.S{sA}, nil))
	waitCh(t, src.WhenTicksEq(sM, 2*n-1, ctx), "the source to run the batch")
	waitCh(t, src.When1(sA, ctx), "the source to run the batch")
	if time.Since(start) < interval*8/10 {
		// no push yet: what the mirror gets next comes from Sync
		require.Zero(t, w.Tick(sM), "the batch reached the mirror before Sync")
	}

	got := w.Sync()
	assert.Equal(t, src.Time(nil), got)
	assert.Equal(t, src.Time(nil), w.Time(nil))
	assert.NoError(t, w.Err())

	// the pending push (of the batch) and the next one apply on the new baseline
	src.Add1(sB, nil)
	waitCh(t, src.When1(sB, ctx), "B on the source")
	waitSynced(t, w, src)
	assert.Equal(t, uint64(2*n-1), w.Tick(sM), "the batch was applied twice")
	assert.True(t, w.Is(am.S{sA, sB, sM}))

	// Sync with nothing new changes nothing
	assert.Equal(t, src.Time(nil), w.Sync())
}

// TestAddNSPushed: what AddNS changes reaches the mirror with a push, without
// Sync.
func TestAddNSPushed(t *testing.T) {
	src := newTestSource(t, nil)
	_, c := rpctest.NewPair(t, src, nil, nil)
	w := c.Worker
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()

	require.Equal(t, am.Queued, w.Add1NS(sA, nil))
	waitCh(t, w.When1(sA, ctx), "A on the mirror")
	for range 5 {
		require.Equal(t, am.Queued, w.Add1NS(sM, nil))
	}
	waitCh(t, w.WhenTicksEq(sM, 9, ctx), "M's 5 activations on the mirror")
	waitSynced(t, w, src)
	assert.NoError(t, w.Err())
}
