package rpc

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	am "github.com/arpc-go/arpc/pkg/machine"
)

// TestMutateIfRetryRunsOnce: a conditional mutation whose call times out is
// sent again with the same request ID; the server runs it once and the
// retry gets that run's outcome. Run twice, its precondition would have
// failed the second time: the caller would see ErrPrecondition for a
// mutation that was in fact applied.
func TestMutateIfRetryRunsOnce(t *testing.T) {
	blk := NewTestBlocker()
	src := itSource(t, blk)
	srv := itServer(t, src)
	c := itClient(t, srv, "retry-if", WithRetries(2), WithCallTimeout(300*time.Millisecond))
	defer blk.Release()
	se := itSession(t, srv)

	type out struct {
		res am.Result
		err error
	}
	outs := make(chan out, 1)
	go func() {
		res, err := c.Worker.MutateIf(context.Background(), am.Clock{"Block": 0}, am.MutationAdd,
			am.S{"Block"}, nil)
		outs <- out{res, err}
	}()
	itWait(t, blk.Entered, "the first attempt to reach the source")
	require.Eventually(t, func() bool { return se.inflightNow() >= 2 }, itDeadline, itPoll,
		"the retry never reached the server")
	blk.Release()
	select {
	case o := <-outs:
		require.NoError(t, o.err, "the retry got the first attempt's outcome")
		assert.Equal(t, am.Executed, o.res)
	case <-time.After(itDeadline):
		t.Fatal("MutateIf didn't return")
	}
	assert.Equal(t, uint64(1), src.Tick("Block"), "ran once")
	itSynced(t, c.Worker, src)
}

// TestMutateIfWire: the precondition's encoding round-trips in both forms,
// and a malformed one fails the message or the call, never runs unchecked.
func TestMutateIfWire(t *testing.T) {
	m := &msgMutate{Type: mutRemove, ReqID: 9, Ack: 3, States: []int{1},
		Cond: []wireCond{{idx: 1, tick: 8, offset: 6}, {idx: 0, tick: 0}}, Args: am.A{"k": "v"}}
	b, err := m.AppendBinary(nil)
	require.NoError(t, err)
	assert.Equal(t, mutRemove|condFlag, b[0])
	var got msgMutate
	require.NoError(t, got.UnmarshalBinary(b))
	assert.Equal(t, *m, got)

	// an empty precondition stays one (flagged, no entries)
	m.Cond = []wireCond{}
	b, _ = m.AppendBinary(nil)
	got = msgMutate{}
	require.NoError(t, got.UnmarshalBinary(b))
	assert.NotNil(t, got.Cond)

	// without the flag, the bytes of a precondition are not read as one
	plain := &msgMutate{Type: mutAdd, States: []int{0}}
	b, _ = plain.AppendBinary(nil)
	got = msgMutate{}
	require.NoError(t, got.UnmarshalBinary(b))
	assert.Nil(t, got.Cond)

	// a count larger than the bytes left fails before allocating
	bad := append([]byte{mutAdd | condFlag, 1, 0, 0}, 0xff, 0xff, 0x03)
	require.ErrorIs(t, (&msgMutate{}).UnmarshalBinary(bad), ErrInvalidMsg)

	// gob: triples, and a broken list becomes an invalid index
	g := &MsgMutateGob{Type: mutAdd | condFlag, States: []int{0}, Cond: []uint64{1, 8, 6}}
	assert.Equal(t, []wireCond{{idx: 1, tick: 8, offset: 6}}, g.toBinary().Cond)
	assert.Equal(t, mutAdd, g.toBinary().Type)
	g.Cond = []uint64{1, 8}
	assert.Equal(t, []wireCond{{idx: -1}}, g.toBinary().Cond)
}

// TestMutateIfServerChecks: the server refuses a malformed precondition
// without running the mutation.
func TestMutateIfServerChecks(t *testing.T) {
	src := itSource(t, nil)
	srv := itServer(t, src)
	ctx := context.Background()
	for name, tc := range map[string]struct {
		m    *msgMutate
		code byte
	}{
		"bad index":    {&msgMutate{Type: mutAdd, States: []int{0}, Cond: []wireCond{{idx: 99}}}, outInvalid},
		"neg index":    {&msgMutate{Type: mutAdd, States: []int{0}, Cond: []wireCond{{idx: -1}}}, outInvalid},
		"on AddErr":    {&msgMutate{Type: mutAddErr, States: []int{0}, Cond: []wireCond{{idx: 0}}}, outInvalid},
		"below offset": {&msgMutate{Type: mutAdd, States: []int{0}, Cond: []wireCond{{idx: 0, tick: 1, offset: 2}}}, outPrecondition},
		"twice":        {&msgMutate{Type: mutAdd, States: []int{0}, Cond: []wireCond{{idx: 1}, {idx: 1, tick: 1}}}, outPrecondition},
	} {
		var resp respResult
		require.True(t, srv.runMutation(ctx, tc.m, &resp), name)
		assert.Equal(t, am.Canceled, resp.result, name)
		assert.Equal(t, tc.code, resp.code, "%s: %s", name, resp.errMsg)
	}
	assert.Equal(t, am.Time{0, 0, 0, 0, 0}, src.Time(nil), "nothing ran")
	assert.NoError(t, src.Err())
}
