package rpc2

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// blockingRegistry has method 1, whose handler reports its start on started
// and returns ctx's error once its ctx ends (or nil when released), and
// method 2, which counts its runs.
func blockingRegistry(t *testing.T, started chan<- string, release <-chan struct{}, runs *atomic.Int32) *Registry {
	r := NewRegistry()
	require.NoError(t, HandleFunc(r, 1, "block", func(ctx context.Context, _ *Conn, _ *Args, _ *Reply) error {
		started <- "block"
		select {
		case <-ctx.Done():
			started <- "ctx done"
			return ctx.Err()
		case <-release:
			return nil
		}
	}))
	require.NoError(t, HandleFunc(r, 2, "count", func(_ context.Context, _ *Conn, _ *Args, rep *Reply) error {
		runs.Add(1)
		rep.C = 1
		return nil
	}))
	return r
}

// TestCancelRunningHandler: when the caller's ctx ends, the handler's ctx is
// canceled (for Call and for Go), and the connection keeps serving.
func TestCancelRunningHandler(t *testing.T) {
	transports(t, func(t *testing.T, dial func(t *testing.T) (net.Conn, net.Conn)) {
		started := make(chan string, 4)
		var runs atomic.Int32
		c, _ := connPair(t, dial, nil, blockingRegistry(t, started, nil, &runs))

		ctx, cancel := context.WithCancel(context.Background())
		errc := make(chan error, 1)
		go func() { errc <- c.Call(ctx, 1, &Args{}, nil) }()
		require.Equal(t, "block", recvWithin(t, started))
		cancel()
		require.ErrorIs(t, <-errc, context.Canceled)
		require.Equal(t, "ctx done", recvWithin(t, started), "the handler's ctx was canceled")

		ctx, cancel = context.WithCancel(context.Background())
		call := c.Go(ctx, 1, &Args{}, nil, nil)
		require.Equal(t, "block", recvWithin(t, started))
		cancel()
		<-call.Done
		require.ErrorIs(t, call.Error, context.Canceled)
		require.Equal(t, "ctx done", recvWithin(t, started))

		var rep Reply
		require.NoError(t, c.Call(context.Background(), 2, &Args{}, &rep))
		assert.Equal(t, 1, rep.C)
	})
}

// TestCancelTimeoutReachesHandler: WithCallTimeout cancels the handler too.
func TestCancelTimeoutReachesHandler(t *testing.T) {
	started := make(chan string, 4)
	var runs atomic.Int32
	c, _ := connPair(t, pipePair, nil, blockingRegistry(t, started, nil, &runs), WithCallTimeout(20*time.Millisecond))
	err := c.Call(context.Background(), 1, &Args{}, nil)
	require.ErrorIs(t, err, ErrTimeout)
	require.Equal(t, "block", recvWithin(t, started))
	require.Equal(t, "ctx done", recvWithin(t, started))
}

// TestCancelQueuedRequest: a request waiting for a concurrency slot is not
// run at all once its caller gave up, and its credit comes back.
func TestCancelQueuedRequest(t *testing.T) {
	transports(t, func(t *testing.T, dial func(t *testing.T) (net.Conn, net.Conn)) {
		started := make(chan string, 4)
		release := make(chan struct{})
		var runs atomic.Int32
		c, s := connPair(t, dial, nil, blockingRegistry(t, started, release, &runs),
			WithMaxConcurrency(1), WithRequestWindow(2))

		first := c.Go(context.Background(), 1, &Args{}, nil, nil)
		require.Equal(t, "block", recvWithin(t, started))
		ctx, cancel := context.WithCancel(context.Background())
		queued := c.Go(ctx, 2, &Args{}, nil, nil)
		require.Eventually(t, func() bool { return s.inflight.Load() == 2 }, 10*time.Second, time.Millisecond,
			"the second request is queued behind the first")
		cancel()
		<-queued.Done
		require.ErrorIs(t, queued.Error, context.Canceled)
		require.Eventually(t, func() bool {
			h := activeCtx(s, 2)
			return h != nil && h.canceled()
		}, 10*time.Second, time.Millisecond, "the cancel frame reached the queued request")

		close(release)
		<-first.Done
		require.NoError(t, first.Error)
		// Both credits come back (the dropped request was answered with an
		// error frame), so two calls can be outstanding again.
		require.Eventually(t, func() bool {
			c.cmu.Lock()
			defer c.cmu.Unlock()
			return c.credits == 2
		}, 10*time.Second, time.Millisecond)
		assert.Equal(t, int32(0), runs.Load(), "the canceled request never ran")
		var rep Reply
		require.NoError(t, c.Call(context.Background(), 2, &Args{}, &rep))
		assert.Equal(t, int32(1), runs.Load())
	})
}

// TestCancelWire drives the receiver with raw frames: a cancel for a queued
// request gets it answered with CodeCanceled without running it; a cancel
// for a running request cancels the handler's ctx; cancels for unknown seqs
// are ignored.
func TestCancelWire(t *testing.T) {
	a, b := net.Pipe()
	started := make(chan string, 4)
	var runs atomic.Int32
	c := NewConn(a, blockingRegistry(t, started, nil, &runs), WithMaxConcurrency(1))
	defer closeWithin(t, c)
	p := newRawPeer(t, b)
	p.write(buildFrames(t, testFrame{kind: kindSettings, seq: 10}))
	require.Equal(t, kindSettings, p.read(nil).kind)

	p.write(buildFrames(t,
		testFrame{kind: kindRequest, seq: 1, method: 1},
		testFrame{kind: kindRequest, seq: 2, method: 2},
		testFrame{kind: kindCancel, seq: 99}, // unknown: ignored
		testFrame{kind: kindCancel, seq: 2},
	))
	require.Equal(t, "block", recvWithin(t, started))
	p.write(buildFrames(t, testFrame{kind: kindCancel, seq: 1}))
	require.Equal(t, "ctx done", recvWithin(t, started))

	got := map[uint64]string{}
	for range 2 {
		f := p.read(nil)
		require.Equal(t, kindError, f.kind)
		assert.Equal(t, uint64(CodeCanceled), f.code)
		got[f.seq] = string(f.body)
	}
	assert.Equal(t, "context canceled", got[1])
	assert.Equal(t, errCanceledByPeer, got[2])
	assert.Equal(t, int32(0), runs.Load())

	p.write(buildFrames(t, testFrame{kind: kindCancel, seq: 1})) // finished: ignored
	p.write(buildFrames(t, testFrame{kind: kindRequest, seq: 3, method: 2}))
	f := p.read(new(Reply))
	require.Equal(t, kindReply, f.kind)
	assert.Equal(t, uint64(3), f.seq)
	assert.NoError(t, c.Err())
}

// TestHandlerContext: the handler's context behaves as a context: derived
// contexts follow it, Value reaches the connection's context, it ends when
// the handler returns and when the connection ends.
func TestHandlerContext(t *testing.T) {
	type key struct{}
	base := context.WithValue(context.Background(), key{}, "v")
	kept := make(chan context.Context, 2)
	derived := make(chan context.Context, 1)
	r := NewRegistry()
	require.NoError(t, HandleFunc(r, 1, "keep", func(ctx context.Context, _ *Conn, _ *Args, _ *Reply) error {
		if ctx.Value(key{}) != "v" {
			return errors.New("value lost")
		}
		d, cancel := context.WithCancel(ctx)
		_ = cancel // canceled through its parent below
		derived <- d
		kept <- ctx
		return ctx.Err()
	}))
	srv := NewServer(r)
	a, b := net.Pipe()
	served := make(chan error, 1)
	go func() { served <- srv.ServeConn(base, b) }()
	c := NewConn(a, nil)
	defer closeWithin(t, c)
	require.NoError(t, c.Call(context.Background(), 1, &Args{}, nil))
	ctx := <-kept
	select {
	case <-ctx.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the handler's ctx is not done after the handler returned")
	}
	assert.ErrorIs(t, ctx.Err(), context.Canceled)
	assert.ErrorIs(t, context.Cause(ctx), context.Canceled)
	d := <-derived
	select {
	case <-d.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("a derived ctx did not follow its parent")
	}
	require.NoError(t, srv.Close())
	<-served
}

func recvWithin(t *testing.T, ch <-chan string) string {
	t.Helper()
	select {
	case s := <-ch:
		return s
	case <-time.After(10 * time.Second):
		t.Fatal("timed out")
		return ""
	}
}

func activeCtx(c *Conn, seq uint64) *handlerCtx { return c.active.lookup(seq) }

// TestCancelDuplicateSeq: a request whose seq is still in flight ends the
// connection (it would make the first request unreachable by cancel frames
// and by the end of the connection).
func TestCancelDuplicateSeq(t *testing.T) {
	a, b := net.Pipe()
	started := make(chan string, 4)
	var runs atomic.Int32
	c := NewConn(a, blockingRegistry(t, started, nil, &runs))
	defer closeWithin(t, c)
	p := newRawPeer(t, b)
	p.write(buildFrames(t, testFrame{kind: kindSettings, seq: 10}))
	require.Equal(t, kindSettings, p.read(nil).kind)
	go func() { // drain
		buf := make([]byte, 1024)
		for {
			if _, err := b.Read(buf); err != nil {
				return
			}
		}
	}()
	p.write(buildFrames(t, testFrame{kind: kindRequest, seq: 1, method: 1}))
	require.Equal(t, "block", recvWithin(t, started))
	p.write(buildFrames(t, testFrame{kind: kindRequest, seq: 1, method: 2}))
	waitDone(t, c, 10*time.Second)
	assert.ErrorIs(t, c.Err(), ErrProtocol)
	require.Equal(t, "ctx done", recvWithin(t, started), "the first request's ctx ends with the connection")
}

// TestActiveTableOverflow: requests whose slots collide (seqs a table size
// apart) are tracked in the overflow map: cancel frames reach them, and the
// end of the connection cancels them.
func TestActiveTableOverflow(t *testing.T) {
	a, b := net.Pipe()
	started := make(chan string, 8)
	var runs atomic.Int32
	c := NewConn(a, blockingRegistry(t, started, nil, &runs), WithRequestWindow(4))
	defer closeWithin(t, c)
	p := newRawPeer(t, b)
	p.write(buildFrames(t, testFrame{kind: kindSettings, seq: 10}))
	require.Equal(t, kindSettings, p.read(nil).kind)
	size := uint64(len(c.active.slots))
	require.Equal(t, uint64(4), size)
	seqs := []uint64{1, 1 + size, 1 + 2*size}
	for _, seq := range seqs {
		p.write(buildFrames(t, testFrame{kind: kindRequest, seq: seq, method: 1}))
		require.Equal(t, "block", recvWithin(t, started))
	}
	require.Equal(t, int32(2), c.active.nover.Load(), "two of three in the overflow map")
	p.write(buildFrames(t, testFrame{kind: kindCancel, seq: seqs[1]}))
	require.Equal(t, "ctx done", recvWithin(t, started))
	f := p.read(nil)
	require.Equal(t, kindError, f.kind)
	assert.Equal(t, seqs[1], f.seq)
	require.Eventually(t, func() bool { return c.active.nover.Load() == 1 }, 10*time.Second, time.Millisecond)
	p.write(buildFrames(t, testFrame{kind: kindRequest, seq: seqs[2], method: 2}))
	waitDone(t, c, 10*time.Second) // a duplicate of a seq in the overflow map
	assert.ErrorIs(t, c.Err(), ErrProtocol)
	for range 2 {
		require.Equal(t, "ctx done", recvWithin(t, started), "the end of the connection reaches every request")
	}
}

// TestDetachedOutlivesConnection: the context of a Detached method's request
// survives the end of its connection and ends when the handler returns; an
// ordinary request's context ends with the connection.
func TestDetachedOutlivesConnection(t *testing.T) {
	for _, detached := range []bool{true, false} {
		t.Run(fmt.Sprintf("detached=%t", detached), func(t *testing.T) {
			entered := make(chan context.Context, 1)
			release := make(chan struct{})
			r := NewRegistry()
			var opts []HandlerOption
			if detached {
				opts = append(opts, Detached())
			}
			require.NoError(t, HandleFunc(r, 1, "work", func(ctx context.Context, _ *Conn, _ *Args, _ *Reply) error {
				entered <- ctx
				<-release
				return nil
			}, opts...))
			c, s := connPair(t, pipePair, nil, r)
			go func() { _ = c.Call(context.Background(), 1, &Args{}, &Reply{}) }()
			var ctx context.Context
			select {
			case ctx = <-entered:
			case <-time.After(10 * time.Second):
				t.Fatal("the handler did not start")
			}
			require.NoError(t, c.Close())
			select {
			case <-s.Context().Done():
			case <-time.After(10 * time.Second):
				t.Fatal("the server end did not see the connection end")
			}
			if detached {
				assert.NoError(t, ctx.Err(), "a detached request's context outlives its connection")
			} else {
				select {
				case <-ctx.Done():
				case <-time.After(10 * time.Second):
					t.Fatal("an ordinary request's context did not end with its connection")
				}
			}
			close(release)
			select {
			case <-ctx.Done():
			case <-time.After(10 * time.Second):
				t.Fatal("the context did not end when the handler returned")
			}
		})
	}
}
