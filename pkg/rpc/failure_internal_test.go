package rpc

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	am "github.com/arpc-go/arpc/pkg/machine"
)

// failBadWireNames are the states of the bad-input test's source.
var failBadWireNames = am.S{"A", "B", am.Exception}

// TestFailBadWireInputIsClientScoped: mutations that a well-behaved Worker
// never sends (a state index out of range, negative, an unknown mutation
// type, over both encodings; a watch of an unknown state) fail that call
// only, with ErrInvalidParams: the source never sees them and gets no
// Exception, and the sender and another client keep working.
func TestFailBadWireInputIsClientScoped(t *testing.T) {
	src := am.New(context.Background(), am.Struct{"A": {}, "B": {}}, &am.Opts{ID: "fbad"})
	require.NoError(t, src.VerifyStates(failBadWireNames))
	t.Cleanup(func() {
		src.Dispose()
		<-src.WhenDisposed()
	})
	srv, err := Listen(context.Background(), "127.0.0.1:0", src)
	require.NoError(t, err)
	t.Cleanup(func() { _ = srv.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	dial := func() *Client {
		c, err := Dial(ctx, srv.Addr, am.Struct{"A": {}, "B": {}}, failBadWireNames)
		require.NoError(t, err)
		t.Cleanup(func() { _ = c.Close() })
		return c
	}
	bad, good := dial(), dial()
	conn, err := bad.liveConn()
	require.NoError(t, err)
	before := src.Time(nil)

	send := func(gob bool, typ byte, states []int) (respResult, error) {
		reqID, ack := bad.pend.add()
		defer bad.pend.done(reqID)
		var resp respResult
		if gob {
			return resp, bad.callOn(ctx, conn, mMutateGob,
				&MsgMutateGob{Type: typ, ReqID: reqID, Ack: ack, States: states}, &resp)
		}
		return resp, bad.callOn(ctx, conn, mMutate,
			&msgMutate{Type: typ, ReqID: reqID, Ack: ack, States: states}, &resp)
	}
	for _, tc := range []struct {
		name   string
		typ    byte
		states []int
	}{
		{"index past the end", mutAdd, []int{len(failBadWireNames)}},
		{"index far out", mutAdd, []int{99}},
		{"negative index", mutAdd, []int{-1}},
		{"good and bad index", mutAdd, []int{0, 99}},
		{"unknown mutation type", 9, []int{0}},
	} {
		for _, gob := range []bool{false, true} {
			resp, err := send(gob, tc.typ, tc.states)
			if err == nil {
				err = outcomeErr(resp.code, resp.errMsg)
				assert.Equal(t, am.Canceled, resp.result, "%s (gob %t)", tc.name, gob)
			}
			t.Logf("%s (gob %t): %v", tc.name, gob, err)
			assert.ErrorIs(t, err, ErrInvalidParams, "%s (gob %t)", tc.name, gob)
		}
	}
	err = bad.call(ctx, mWatchArgs, &MsgWatchArgs{ID: 1 << 40, State: 99}, &Empty{})
	t.Logf("watch of state index 99: %v", err)
	assert.True(t, errors.Is(err, ErrInvalidParams), "watch of an unknown state: %v", err)

	waitCtx, waitCancel := context.WithTimeout(ctx, 10*time.Second)
	defer waitCancel()
	<-src.WhenQueueEnds(waitCtx)
	assert.False(t, src.IsErr(), "source: %s, err %v", src.String(), src.Err())
	assert.Equal(t, before, src.Time(nil), "the source saw nothing")

	res, err := good.Worker.Mutate(ctx, am.MutationAdd, am.S{"A"}, nil)
	require.NoError(t, err)
	assert.Equal(t, am.Executed, res)
	res, err = bad.Worker.Mutate(ctx, am.MutationAdd, am.S{"B"}, nil)
	require.NoError(t, err, "the sender keeps working")
	assert.Equal(t, am.Executed, res)
	assert.True(t, bad.Worker.Is(am.S{"A", "B"}))
	assert.False(t, bad.Worker.IsErr())
	require.NoError(t, good.Worker.Resync(ctx))
	assert.True(t, good.Worker.Is(am.S{"A", "B"}))
	assert.False(t, good.Worker.IsErr())
}
