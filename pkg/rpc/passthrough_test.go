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

// TestPassThrough (W5): two source transitions within one push window reach
// the mirror as one merged diff, and the mirror still sees that the state
// passed through the awaited condition: When, WhenNot and state contexts
// resolve although the state ends where it started. A Multi re-entry is not a
// deactivation; a Multi removed and added again is.
func TestPassThrough(t *testing.T) {
	// the window is long, so both transitions surely fall into it
	const window = 200 * time.Millisecond

	setup := func(t *testing.T, active ...string) (*am.Machine, *rpc.Server, *rpc.Worker) {
		t.Parallel()
		src := newTestSource(t, nil, active...)
		srv, c := rpctest.NewPair(t, src, []rpc.ServerOption{rpc.WithPushInterval(window)}, nil)
		return src, srv, c.Worker
	}
	// applyOnePush runs the source's mutations and waits for the mirror,
	// checking they came in a single push.
	applyOnePush := func(t *testing.T, src *am.Machine, srv *rpc.Server, w *rpc.Worker, muts ...func()) {
		t.Helper()
		before := srv.CallCount()
		for _, m := range muts {
			m()
		}
		waitSynced(t, w, src)
		require.Equal(t, before+1, srv.CallCount(), "the changes weren't merged into one push")
	}

	t.Run("add-remove", func(t *testing.T) {
		src, srv, w := setup(t)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		when := w.When1(sA, ctx)
		whenTicks := w.WhenTicks(sA, 2, ctx)

		applyOnePush(t, src, srv, w,
			func() { src.Add1(sA, nil) },
			func() { src.Remove1(sA, nil) })
		assert.True(t, w.Not1(sA))
		assert.True(t, isClosed(when), "When1(A) missed A's activation")
		assert.True(t, isClosed(whenTicks))
	})

	t.Run("remove-add", func(t *testing.T) {
		src, srv, w := setup(t, sA)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		whenNot := w.WhenNot1(sA, ctx)
		stateCtx := w.NewStateCtx(sA)
		require.NoError(t, stateCtx.Err())

		applyOnePush(t, src, srv, w,
			func() { src.Remove1(sA, nil) },
			func() { src.Add1(sA, nil) })
		assert.True(t, w.Is1(sA))
		assert.True(t, isClosed(whenNot), "WhenNot1(A) missed A's deactivation")
		assert.Error(t, stateCtx.Err(), "the state ctx outlived the activation it was made for")
		assert.NoError(t, w.NewStateCtx(sA).Err(), "a ctx of the new activation")
	})

	t.Run("multi-reentry", func(t *testing.T) {
		src, srv, w := setup(t, sM)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		whenNot := w.WhenNot1(sM, ctx)
		stateCtx := w.NewStateCtx(sM)

		applyOnePush(t, src, srv, w, func() { src.Add1(sM, nil) })
		assert.Equal(t, uint64(3), w.Tick(sM))
		assert.NoError(t, stateCtx.Err(), "a Multi re-entry canceled the state ctx")
		assert.False(t, isClosed(whenNot), "a Multi re-entry resolved WhenNot")
	})

	t.Run("multi-remove-add", func(t *testing.T) {
		src, srv, w := setup(t, sM)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		whenNot := w.WhenNot1(sM, ctx)
		stateCtx := w.NewStateCtx(sM)

		applyOnePush(t, src, srv, w,
			func() { src.Remove1(sM, nil) },
			func() { src.Add1(sM, nil) })
		assert.Equal(t, uint64(3), w.Tick(sM))
		assert.Error(t, stateCtx.Err(), "Remove+Add of a Multi state kept its state ctx")
		assert.True(t, isClosed(whenNot), "WhenNot1(M) missed M's deactivation")
	})

	t.Run("multi-remove-add-reenter", func(t *testing.T) {
		// re-entries around the deactivation don't hide it
		src, srv, w := setup(t, sM)
		stateCtx := w.NewStateCtx(sM)

		applyOnePush(t, src, srv, w,
			func() { src.Add1(sM, nil) },
			func() { src.Remove1(sM, nil) },
			func() { src.Add1(sM, nil) },
			func() { src.Add1(sM, nil) })
		assert.Equal(t, uint64(7), w.Tick(sM))
		assert.Error(t, stateCtx.Err())
	})
}
