package rpc

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	am "github.com/arpc-go/arpc/pkg/machine"
)

// loseUpdate makes the session produce the next update (moving its baseline
// and version) without sending it, as if the push were lost on the way.
func (se *session) loseUpdate(t *testing.T) {
	t.Helper()
	se.mu.Lock()
	defer se.mu.Unlock()
	var u update
	se.updateLocked(&u)
	require.NotZero(t, u.version, "nothing to lose")
}

// TestVersionGapResyncs (W2): a client that receives an update after a gap
// in the versions resynchronises, and its mirror converges on the source's
// time although one update never arrived.
func TestVersionGapResyncs(t *testing.T) {
	src := itSource(t, nil)
	// pushes are an hour apart: the test pushes by hand
	srv := itServer(t, src, WithPushInterval(time.Hour))
	c := itClient(t, srv, "gap", WithResyncAfter(20*time.Millisecond))
	se := itSession(t, srv)
	w := c.Worker
	ctx, cancel := context.WithTimeout(context.Background(), itDeadline)
	defer cancel()

	require.Equal(t, am.Executed, src.Add1("A", nil))
	se.loseUpdate(t)
	require.Equal(t, am.Executed, src.Add1("B", nil))
	calls := c.CallCount()
	se.push(ctx)

	itSynced(t, w, src)
	assert.True(t, w.Is(am.S{"A", "B"}), "A came only with the resync")
	assert.Greater(t, c.CallCount(), calls, "no Sync call")
	assert.False(t, w.hasGap())

	// later updates apply on the new baseline
	require.Equal(t, am.Executed, src.Add1("M", nil))
	se.push(ctx)
	itSynced(t, w, src)
	assert.Equal(t, am.Executed, w.Remove1("A", nil))
	assert.Equal(t, src.Time(nil), w.Time(nil))
}

// TestVersionGapInReply: a mutation reply after a lost update also reveals
// the gap; the mutation returns once the mirror has resynchronised.
func TestVersionGapInReply(t *testing.T) {
	src := itSource(t, nil)
	srv := itServer(t, src, WithPushInterval(time.Hour))
	c := itClient(t, srv, "gap", WithResyncAfter(20*time.Millisecond))
	se := itSession(t, srv)
	w := c.Worker

	require.Equal(t, am.Executed, src.Add1("A", nil))
	se.loseUpdate(t)
	require.Equal(t, am.Executed, w.Add1("B", nil))
	assert.Equal(t, src.Time(nil), w.Time(nil), "the mutation returned before the mirror caught up")
	assert.True(t, w.Is1("A"))
}

// TestStaleUpdatesDropped: updates older than the mirror, and duplicates,
// change nothing; an update from the future waits for the gap to fill.
func TestStaleUpdatesDropped(t *testing.T) {
	src := itSource(t, nil)
	srv := itServer(t, src, WithPushInterval(time.Hour))
	c := itClient(t, srv, "stale", WithResyncAfter(time.Hour))
	w := c.Worker
	v := func() uint64 {
		w.mu.RLock()
		defer w.mu.RUnlock()
		return w.version
	}
	base := v()
	idxA := w.Index("A")

	// version base+2 first: buffered
	w.applyPush(&msgPush{upd: update{version: base + 2, entries: []tickEntry{{idx: idxA, delta: 1}}}})
	assert.True(t, w.Not1("A"))
	assert.True(t, w.hasGap())
	// then base+1: both apply, in order
	w.applyPush(&msgPush{upd: update{version: base + 1, entries: []tickEntry{{idx: idxA, delta: 1}}}})
	assert.Equal(t, uint64(2), w.Tick("A"))
	assert.False(t, w.hasGap())
	// a replay of either: dropped
	w.applyPush(&msgPush{upd: update{version: base + 1, entries: []tickEntry{{idx: idxA, delta: 1}}}})
	w.applyPush(&msgPush{upd: update{version: base + 2, entries: []tickEntry{{idx: idxA, delta: 1}}}})
	assert.Equal(t, uint64(2), w.Tick("A"))
	assert.Equal(t, base+2, v())
}
