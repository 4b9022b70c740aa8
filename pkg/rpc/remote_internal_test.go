package rpc

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	am "github.com/arpc-go/arpc/pkg/machine"
)

// watchCount reads how many remote WhenArgs watches the session holds.
func (se *session) watchCount() int {
	se.mu.Lock()
	defer se.mu.Unlock()
	return len(se.watches)
}

// TestWhenArgsReleased: the server holds a remote WhenArgs until it matches
// or the client's ctx ends, then releases it; the limit of watches per
// session is enforced and freed again.
func TestWhenArgsReleased(t *testing.T) {
	src := itSource(t, nil)
	srv := itServer(t, src, WithMaxWatches(2))
	c := itClient(t, srv, "watcher")
	se := itSession(t, srv)
	w := c.Worker
	ctx, cancel := context.WithTimeout(context.Background(), itDeadline)
	defer cancel()

	// a canceled watch is released on the server
	wctx, wcancel := context.WithCancel(ctx)
	ch := w.WhenArgs("M", am.A{"k": 1}, wctx)
	require.NoError(t, w.Err())
	assert.Equal(t, 1, se.watchCount())
	wcancel()
	itWait(t, ch, "the canceled watch")
	require.Eventually(t, func() bool { return se.watchCount() == 0 }, itDeadline, itPoll,
		"the server kept a canceled watch")

	// a matched watch is released too
	ch = w.WhenArgs("M", am.A{"k": 2}, ctx)
	assert.Equal(t, 1, se.watchCount())
	require.Equal(t, am.Executed, w.Add1("M", am.A{"k": 2}))
	itWait(t, ch, "the matched watch")
	assert.Equal(t, 0, se.watchCount())
	w.mu.RLock()
	assert.Empty(t, w.watches, "the client kept a resolved watch")
	w.mu.RUnlock()

	// the limit
	ctx1, cancel1 := context.WithCancel(ctx)
	defer cancel1()
	w.WhenArgs("M", am.A{"k": 3}, ctx1)
	w.WhenArgs("M", am.A{"k": 4}, ctx1)
	require.NoError(t, w.Err())
	over, cancelOver := context.WithCancel(ctx)
	chOver := w.WhenArgs("M", am.A{"k": 5}, over)
	assert.ErrorIs(t, w.Err(), ErrRpc, "a watch beyond the limit")
	assert.Equal(t, 2, se.watchCount())
	cancelOver()
	itWait(t, chOver, "the refused watch with a canceled ctx")
	cancel1()
	require.Eventually(t, func() bool { return se.watchCount() == 0 }, itDeadline, itPoll)

	// a client that leaves releases its watches
	w.WhenArgs("M", am.A{"k": 6}, ctx)
	assert.Equal(t, 1, se.watchCount())
	itStop(t, "client", func() { c.Stop(ctx, false) })
	require.Eventually(t, func() bool { return se.watchCount() == 0 }, itDeadline, itPoll)
	require.Eventually(t, func() bool { return srv.ClientCount() == 0 }, itDeadline, itPoll)
}
