package rpc

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	am "github.com/arpc-go/arpc/pkg/machine"
)

// inflight reads how many mutations of the session are running.
func (se *session) inflightNow() int {
	se.mu.Lock()
	defer se.mu.Unlock()
	return se.inflight
}

// TestRetryRunsOnce (W7): a mutation whose call times out is sent again with
// the same request ID; the server runs it once, the retry waits for that run
// and gets its result, and a Multi state's tick shows a single activation.
func TestRetryRunsOnce(t *testing.T) {
	blk := NewTestBlocker()
	src := itSource(t, blk)
	srv := itServer(t, src)
	c := itClient(t, srv, "retry", WithRetries(2), WithCallTimeout(300*time.Millisecond))
	defer blk.Release()
	se := itSession(t, srv)
	calls := c.CallCount()

	res := make(chan am.Result, 1)
	go func() { res <- c.Worker.Add1("Block", nil) }()
	itWait(t, blk.Entered, "the first attempt to reach the source")
	// the first attempt times out on the client; its retry reaches the server
	// while the first still runs
	require.Eventually(t, func() bool { return se.inflightNow() >= 2 }, itDeadline, itPoll,
		"the retry never reached the server")
	blk.Release()

	select {
	case r := <-res:
		assert.Equal(t, am.Executed, r, "the retry got the first attempt's result")
	case <-time.After(itDeadline):
		t.Fatal("Add1 didn't return")
	}
	assert.Equal(t, uint64(1), src.Tick("Block"), "the mutation ran more than once")
	assert.Equal(t, uint64(1), c.Worker.Tick("Block"))
	assert.NoError(t, c.Worker.Err())
	assert.GreaterOrEqual(t, c.CallCount()-calls, uint64(2), "no retry was sent")
	select {
	case <-blk.Entered:
		t.Error("BlockState ran twice")
	default:
	}

	// a later mutation is a new request
	require.Equal(t, am.Executed, c.Worker.Add1("Block", nil))
	assert.Equal(t, uint64(3), src.Tick("Block"))
	itSynced(t, c.Worker, src)
}

// TestCallTimeout: without retries, a mutation that outlives the call
// timeout returns Canceled with ErrNetworkTimeout; the source still runs it
// once and the mirror catches up.
func TestCallTimeout(t *testing.T) {
	blk := NewTestBlocker()
	src := itSource(t, blk)
	srv := itServer(t, src)
	c := itClient(t, srv, "timeout", WithCallTimeout(100*time.Millisecond))
	defer blk.Release()

	res := make(chan am.Result, 1)
	go func() { res <- c.Worker.Add1("Block", nil) }()
	itWait(t, blk.Entered, "the mutation to reach the source")
	select {
	case r := <-res:
		assert.Equal(t, am.Canceled, r)
	case <-time.After(itDeadline):
		t.Fatal("Add1 didn't time out")
	}
	assert.ErrorIs(t, c.Worker.Err(), ErrNetworkTimeout)
	blk.Release()
	itSynced(t, c.Worker, src)
	assert.Equal(t, uint64(1), c.Worker.Tick("Block"))
	assert.Equal(t, am.Executed, c.Worker.Add1("A", nil), "the connection survives a timeout")
}
