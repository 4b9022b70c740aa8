package rpc2

import (
	"context"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const (
	mApply       Method = 40 // inline on the client: applies an update
	mUpdateReply Method = 41 // on the server: sends update n, then replies n
	mQueueReply  Method = 42 // on the server: queues update n, then replies n
	mPush        Method = 43 // on the server: pushes updates 1..n from a goroutine
	mQueueNotify Method = 44 // notification on the server: queues update n
	mHold        Method = 45 // on the server: runs until its ctx ends
)

// applied records the updates an inline handler applied.
type applied struct {
	mu   sync.Mutex
	seen map[uint64]bool
	last uint64 // of the pushed sequence (values >= pushBase)
	errs []string
	ch   chan uint64
}

const pushBase = 1 << 32

func newApplied() *applied {
	return &applied{seen: map[uint64]bool{}, ch: make(chan uint64, 16)}
}

func (a *applied) has(v uint64) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.seen[v]
}

func (a *applied) registry(t *testing.T) *Registry {
	r := NewRegistry()
	require.NoError(t, HandleFunc(r, mApply, "apply", func(_ context.Context, _ *Conn, m *binMsg, _ *struct{}) error {
		a.mu.Lock()
		a.seen[m.V] = true
		if m.V >= pushBase {
			if m.V != a.last+1 && !(a.last == 0 && m.V == pushBase+1) {
				a.errs = append(a.errs, fmt.Sprintf("pushed %d after %d", m.V-pushBase, a.last-pushBase))
			}
			a.last = m.V
		}
		a.mu.Unlock()
		select {
		case a.ch <- m.V:
		default:
		}
		return nil
	}, Inline()))
	return r
}

// updaterRegistry is the server side: handlers that send updates to the
// client's inline method before replying.
func updaterRegistry(t *testing.T, pushers *sync.WaitGroup) *Registry {
	r := NewRegistry()
	require.NoError(t, HandleFunc(r, mUpdateReply, "update-reply", func(ctx context.Context, c *Conn, m *binMsg, rep *binMsg) error {
		if err := c.Notify(ctx, mApply, *m); err != nil {
			return err
		}
		rep.V = m.V
		return nil
	}))
	require.NoError(t, HandleFunc(r, mQueueReply, "queue-reply", func(ctx context.Context, c *Conn, m *binMsg, rep *binMsg) error {
		if err := c.Queue(ctx, mApply, *m); err != nil {
			return err
		}
		rep.V = m.V
		return nil
	}))
	require.NoError(t, HandleFunc(r, mPush, "push", func(_ context.Context, c *Conn, m *binMsg, _ *struct{}) error {
		pushers.Add(1)
		go func() {
			defer pushers.Done()
			for i := uint64(1); i <= m.V; i++ {
				if c.Notify(c.Context(), mApply, binMsg{pushBase + i}) != nil {
					return
				}
			}
		}()
		return nil
	}))
	require.NoError(t, HandleFunc(r, mQueueNotify, "queue-notify", func(ctx context.Context, c *Conn, m *binMsg, _ *struct{}) error {
		return c.Queue(ctx, mApply, *m)
	}))
	require.NoError(t, HandleFunc(r, mHold, "hold", func(ctx context.Context, _ *Conn, _ *struct{}, _ *struct{}) error {
		<-ctx.Done()
		return ctx.Err()
	}))
	return r
}

// TestInlineOrdering: a reply the peer sent after notification N arrives
// only after N's inline handler has returned, with many callers and a stream
// of pushed notifications interleaved; pushed notifications are applied in
// the order they were sent.
func TestInlineOrdering(t *testing.T) {
	for _, m := range []Method{mUpdateReply, mQueueReply} {
		t.Run(fmt.Sprint(m), func(t *testing.T) {
			transports(t, func(t *testing.T, dial func(t *testing.T) (net.Conn, net.Conn)) {
				a := newApplied()
				var pushers sync.WaitGroup
				c, s := connPair(t, dial, a.registry(t), updaterRegistry(t, &pushers))
				ctx := context.Background()
				const pushes = 2000
				require.NoError(t, c.Call(ctx, mPush, binMsg{pushes}, nil))
				var wg sync.WaitGroup
				var next atomic.Uint64
				for range 8 {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for range 100 {
							n := next.Add(1)
							var rep binMsg
							if !assert.NoError(t, c.Call(ctx, m, binMsg{n}, &rep)) {
								return
							}
							if !a.has(n) {
								assert.Failf(t, "reply before its update", "update %d not applied when its reply arrived", n)
								return
							}
						}
					}()
				}
				wg.Wait()
				pushers.Wait()
				require.Eventually(t, func() bool { return a.has(pushBase + pushes) }, 10*time.Second, time.Millisecond)
				a.mu.Lock()
				assert.Empty(t, a.errs)
				a.mu.Unlock()
				assert.NoError(t, s.Err())
			})
		})
	}
}

// TestInlineRequestRefused: a request for an Inline method gets
// CodeBadRequest and does not run.
func TestInlineRequestRefused(t *testing.T) {
	a := newApplied()
	_, s := connPair(t, pipePair, a.registry(t), nil)
	err := s.Call(context.Background(), mApply, binMsg{7}, nil)
	var e *Error
	require.ErrorAs(t, err, &e)
	assert.Equal(t, CodeBadRequest, e.Code)
	assert.Contains(t, e.Message, "inline")
	assert.False(t, a.has(7))
	// notifications still work, and their credit comes back
	for i := range uint64(3 * DefaultRequestWindow) {
		require.NoError(t, s.Notify(context.Background(), mApply, binMsg{100 + i}))
	}
	require.Eventually(t, func() bool { return a.has(100 + 3*DefaultRequestWindow - 1) }, 10*time.Second, time.Millisecond)
}

// countingConn counts the writes on a net.Conn.
type countingConn struct {
	net.Conn
	writes atomic.Int32
}

func (c *countingConn) Write(p []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(p)
}

// TestQueueThenReply: a handler's queued notification goes out in the same
// write as its reply, before it.
func TestQueueThenReply(t *testing.T) {
	transports(t, func(t *testing.T, dial func(t *testing.T) (net.Conn, net.Conn)) {
		a := newApplied()
		var pushers sync.WaitGroup
		x, y := dial(t)
		cc := &countingConn{Conn: y}
		c, s := NewConn(x, a.registry(t)), NewConn(cc, updaterRegistry(t, &pushers))
		defer closeWithin(t, c, s)
		ctx := context.Background()
		var rep binMsg
		require.NoError(t, c.Call(ctx, mQueueReply, binMsg{1}, &rep)) // settings, gob types
		require.True(t, a.has(1))
		before := cc.writes.Load()
		require.NoError(t, c.Call(ctx, mQueueReply, binMsg{2}, &rep))
		assert.True(t, a.has(2), "the queued update precedes the reply")
		assert.Equal(t, int32(1), cc.writes.Load()-before, "update and reply in one write")
	})
}

// TestQueueAlone: a queued notification with nothing after it is still
// written: from outside any handler, from a notification handler (which has
// no reply to carry it) and from an inline handler.
func TestQueueAlone(t *testing.T) {
	transports(t, func(t *testing.T, dial func(t *testing.T) (net.Conn, net.Conn)) {
		a := newApplied()
		var pushers sync.WaitGroup
		c, s := connPair(t, dial, a.registry(t), updaterRegistry(t, &pushers))
		ctx := context.Background()

		require.NoError(t, s.Queue(ctx, mApply, binMsg{10}))
		require.Equal(t, uint64(10), recvUint(t, a.ch), "queued outside handlers")

		// A request held in flight on the server keeps it from sending a
		// credit frame after the notification (which would carry the
		// queued frame along).
		hctx, release := context.WithCancel(ctx)
		defer release()
		held := c.Go(hctx, mHold, nil, nil, nil)
		require.Eventually(t, func() bool { return s.inflight.Load() == 1 }, 10*time.Second, time.Millisecond)
		require.NoError(t, c.Notify(ctx, mQueueNotify, binMsg{11}))
		require.Equal(t, uint64(11), recvUint(t, a.ch), "queued by a notification handler")
		release()
		<-held.Done

		assert.ErrorIs(t, s.Queue(ctx, 0, nil), ErrInvalid)
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		assert.ErrorIs(t, s.Queue(cctx, mApply, binMsg{1}), context.Canceled)
	})
}

// TestQueueFromInline: an inline handler queues a message back; it is
// written although the read loop never writes.
func TestQueueFromInline(t *testing.T) {
	got := make(chan uint64, 1)
	cr := NewRegistry()
	require.NoError(t, HandleFunc(cr, 1, "echo-inline", func(ctx context.Context, c *Conn, m *binMsg, _ *struct{}) error {
		return c.Queue(ctx, 2, binMsg{m.V + 1})
	}, Inline()))
	sr := NewRegistry()
	require.NoError(t, HandleFunc(sr, 2, "got", func(_ context.Context, _ *Conn, m *binMsg, _ *struct{}) error {
		got <- m.V
		return nil
	}))
	_, s := connPair(t, pipePair, cr, sr)
	require.NoError(t, s.Notify(context.Background(), 1, binMsg{5}))
	select {
	case v := <-got:
		assert.Equal(t, uint64(6), v)
	case <-time.After(10 * time.Second):
		t.Fatal("queued message from an inline handler never arrived")
	}
}

func recvUint(t *testing.T, ch <-chan uint64) uint64 {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatal("timed out")
		return 0
	}
}

// TestQueueFromInlineWouldBlock: without credit, Queue in an inline handler
// fails at once with ErrWouldBlock instead of stalling the read loop.
func TestQueueFromInlineWouldBlock(t *testing.T) {
	errs := make(chan error, 2)
	cr := NewRegistry()
	require.NoError(t, HandleFunc(cr, 1, "queue-inline", func(ctx context.Context, c *Conn, m *binMsg, _ *struct{}) error {
		err := c.Queue(ctx, 2, *m)
		errs <- err
		return err
	}, Inline()))
	release := make(chan struct{})
	held := make(chan struct{}, 1)
	sr := NewRegistry()
	require.NoError(t, HandleFunc(sr, 2, "hold", func(context.Context, *Conn, *binMsg, *struct{}) error {
		held <- struct{}{}
		<-release
		return nil
	}))
	a, b := net.Pipe()
	c, s := NewConn(a, cr), NewConn(b, sr, WithRequestWindow(1))
	defer closeWithin(t, c, s)
	ctx := context.Background()
	require.NoError(t, s.Notify(ctx, 1, binMsg{1}))
	require.NoError(t, <-errs)
	<-held // the one credit is in use
	require.NoError(t, s.Notify(ctx, 1, binMsg{2}))
	assert.ErrorIs(t, <-errs, ErrWouldBlock)
	close(release)
	assert.NoError(t, c.Err())
}

// TestQueueHeldAfterCancel: a handler whose caller canceled the call can
// still queue a frame for its reply without waiting (the reply goes anyway),
// and the frame reaches the peer.
func TestQueueHeldAfterCancel(t *testing.T) {
	const mCancelQueue Method = 46
	a := newApplied()
	r := NewRegistry()
	queued := make(chan error, 1)
	require.NoError(t, HandleFunc(r, mCancelQueue, "cancel-queue", func(ctx context.Context, c *Conn, m *binMsg, _ *struct{}) error {
		<-ctx.Done()
		queued <- c.Queue(ctx, mApply, *m)
		return ctx.Err()
	}))
	c, s := connPair(t, tcpPair, a.registry(t), r)
	ctx, cancel := context.WithCancel(context.Background())
	call := c.Go(ctx, mCancelQueue, binMsg{7}, nil, nil)
	require.Eventually(t, func() bool { return s.inflight.Load() == 1 }, 10*time.Second, time.Millisecond)
	cancel()
	<-call.Done
	select {
	case err := <-queued:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("the handler did not run to its Queue")
	}
	require.Equal(t, uint64(7), recvUint(t, a.ch), "the held frame was written with the reply")
}
