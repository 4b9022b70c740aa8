package rpc2

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCall(t *testing.T) {
	transports(t, func(t *testing.T, dial func(t *testing.T) (net.Conn, net.Conn)) {
		c, _ := connPair(t, dial, nil, testRegistry(t))
		ctx := context.Background()

		var rep Reply
		require.NoError(t, c.Call(ctx, mAdd, &Args{2, 3}, &rep))
		assert.Equal(t, 5, rep.C)

		var s string
		require.NoError(t, c.Call(ctx, mEcho, "hello", &s))
		assert.Equal(t, "hello", s)

		var b binMsg
		require.NoError(t, c.Call(ctx, mBin, binMsg{21}, &b))
		assert.Equal(t, uint64(42), b.V)

		require.NoError(t, c.Call(ctx, mRefl, Args{6, 7}, &rep), "reflection handler, args by value")
		assert.Equal(t, 42, rep.C)

		require.NoError(t, c.Call(ctx, mAdd, &Args{1, 1}, nil), "nil reply discards")
		rep = Reply{} // gob leaves zero fields alone, as net/rpc does
		require.NoError(t, c.Call(ctx, mAdd, nil, &rep), "nil args: zero value")
		assert.Equal(t, 0, rep.C)
		require.NoError(t, c.Call(ctx, mAdd, (*Args)(nil), &rep), "typed nil args: zero value")

		blob := make([]byte, 200<<10)
		for i := range blob {
			blob[i] = byte(i)
		}
		var out []byte
		require.NoError(t, c.Call(ctx, mBlob, &blob, &out), "frame larger than the read buffer")
		assert.Equal(t, blob, out)

		assert.ErrorIs(t, c.Call(ctx, 0, nil, nil), ErrInvalid)
	})
}

func TestCallConcurrent(t *testing.T) {
	transports(t, func(t *testing.T, dial func(t *testing.T) (net.Conn, net.Conn)) {
		c, _ := connPair(t, dial, nil, testRegistry(t))
		var wg sync.WaitGroup
		errs := make(chan error, 1)
		for g := range 16 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range 100 {
					var rep Reply
					if err := c.Call(context.Background(), mAdd, &Args{g, i}, &rep); err != nil || rep.C != g+i {
						select {
						case errs <- fmt.Errorf("call %d/%d: %v, %d", g, i, err, rep.C):
						default:
						}
						return
					}
				}
			}()
		}
		wg.Wait()
		select {
		case err := <-errs:
			t.Fatal(err)
		default:
		}
	})
}

func TestBothEndsCall(t *testing.T) {
	transports(t, func(t *testing.T, dial func(t *testing.T) (net.Conn, net.Conn)) {
		c, s := connPair(t, dial, testRegistry(t), testRegistry(t))
		ctx := context.Background()
		var wg sync.WaitGroup
		for _, conn := range []*Conn{c, s} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range 50 {
					var rep Reply
					assert.NoError(t, conn.Call(ctx, mCallback, &Args{i, 1}, &rep))
					assert.Equal(t, (i+1)*10, rep.C)
				}
			}()
		}
		wg.Wait()
	})
}

func TestGo(t *testing.T) {
	c, _ := connPair(t, pipePair, nil, testRegistry(t))
	ctx := context.Background()
	done := make(chan *Call, 10)
	replies := make([]Reply, 10)
	for i := range 10 {
		c.Go(ctx, mAdd, &Args{i, i}, &replies[i], done)
	}
	for range 10 {
		select {
		case call := <-done:
			require.NoError(t, call.Error)
			a := call.Args.(*Args)
			assert.Equal(t, a.A*2, call.Reply.(*Reply).C)
		case <-time.After(10 * time.Second):
			t.Fatal("Go call did not complete")
		}
	}

	call := c.Go(ctx, mAdd, &Args{1, 2}, new(Reply), nil)
	<-call.Done
	require.NoError(t, call.Error)
	assert.Equal(t, 3, call.Reply.(*Reply).C)

	call = c.Go(ctx, mAdd, &Args{}, nil, make(chan *Call))
	assert.ErrorIs(t, call.Error, ErrInvalid, "unbuffered done")

	call = c.Go(ctx, 0, nil, nil, nil)
	<-call.Done
	assert.ErrorIs(t, call.Error, ErrInvalid)

	cctx, cancel := context.WithCancel(ctx)
	cancel()
	call = c.Go(cctx, mAdd, &Args{}, nil, nil)
	<-call.Done
	assert.ErrorIs(t, call.Error, context.Canceled)
}

func TestGoContextCancel(t *testing.T) {
	c, _ := connPair(t, pipePair, nil, testRegistry(t))
	ctx, cancel := context.WithCancel(context.Background())
	call := c.Go(ctx, mSlow, &Args{}, nil, nil)
	require.Eventually(t, func() bool { return pendingLen(c) == 1 }, 10*time.Second, time.Millisecond)
	cancel()
	select {
	case <-call.Done:
		assert.ErrorIs(t, call.Error, context.Canceled)
	case <-time.After(10 * time.Second):
		t.Fatal("canceled Go call did not complete")
	}
	assert.Equal(t, 0, pendingLen(c))
}

func pendingLen(c *Conn) int {
	c.pmu.Lock()
	defer c.pmu.Unlock()
	return len(c.pending)
}

func TestCallContextCancelRemovesPending(t *testing.T) {
	transports(t, func(t *testing.T, dial func(t *testing.T) (net.Conn, net.Conn)) {
		release := make(chan struct{})
		started := make(chan struct{}, 1)
		r := testRegistry(t)
		type late struct{ X, Y string } // first seen in the late reply
		require.NoError(t, HandleFunc(r, 30, "late", func(_ context.Context, _ *Conn, _ *Args, rep *late) error {
			started <- struct{}{}
			<-release
			rep.X = "late"
			return nil
		}))
		c, _ := connPair(t, dial, nil, r)

		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		begin := time.Now()
		err := c.Call(ctx, 30, &Args{}, new(late))
		assert.ErrorIs(t, err, context.DeadlineExceeded)
		assert.Less(t, time.Since(begin), 5*time.Second)
		assert.Equal(t, 0, pendingLen(c), "the pending entry is removed at once")

		<-started
		close(release) // the late reply (with new gob types) must be discarded cleanly
		var l late
		require.NoError(t, c.Call(context.Background(), 31-1, &Args{}, &l), "stream still in sync")
		assert.Equal(t, "late", l.X)
	})
}

func TestCallAlreadyCanceled(t *testing.T) {
	c, _ := connPair(t, pipePair, nil, testRegistry(t))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	assert.ErrorIs(t, c.Call(ctx, mAdd, &Args{}, nil), context.Canceled)
	assert.ErrorIs(t, c.Notify(ctx, mAdd, &Args{}), context.Canceled)
}

func TestRemoteErrors(t *testing.T) {
	c, _ := connPair(t, pipePair, nil, testRegistry(t))
	ctx := context.Background()

	err := c.Call(ctx, mFail, &Args{A: 1, B: 7}, nil)
	var e *Error
	require.ErrorAs(t, err, &e)
	assert.Equal(t, Code(123), e.Code)
	assert.Equal(t, "custom 7", e.Message)
	assert.ErrorIs(t, err, &Error{Code: 123})
	assert.NotErrorIs(t, err, &Error{Code: CodeApplication})

	err = c.Call(ctx, mFail, &Args{A: 2}, nil)
	require.ErrorAs(t, err, &e)
	assert.Equal(t, CodeApplication, e.Code)
	assert.Equal(t, "plain failure", e.Message)
	assert.Equal(t, "rpc2: application error: plain failure", err.Error())

	err = c.Call(ctx, mPanic, &Args{}, nil)
	require.ErrorAs(t, err, &e)
	assert.Equal(t, CodeInternal, e.Code)
	assert.Contains(t, e.Message, "boom")

	var rep Reply
	require.NoError(t, c.Call(ctx, mAdd, &Args{1, 2}, &rep), "connection survives a handler panic")
}

func TestHandlerContextErrors(t *testing.T) {
	r := NewRegistry()
	require.NoError(t, HandleFunc(r, 1, "canceled", func(context.Context, *Conn, *Args, *Reply) error {
		return fmt.Errorf("wrapped: %w", context.Canceled)
	}))
	require.NoError(t, HandleFunc(r, 2, "deadline", func(context.Context, *Conn, *Args, *Reply) error {
		return context.DeadlineExceeded
	}))
	c, _ := connPair(t, pipePair, nil, r)
	assert.ErrorIs(t, c.Call(context.Background(), 1, &Args{}, nil), &Error{Code: CodeCanceled})
	assert.ErrorIs(t, c.Call(context.Background(), 2, &Args{}, nil), &Error{Code: CodeDeadlineExceeded})
}

func TestNotifyOrdered(t *testing.T) {
	transports(t, func(t *testing.T, dial func(t *testing.T) (net.Conn, net.Conn)) {
		const n = 300
		var (
			mu  sync.Mutex
			got []uint64
		)
		all := make(chan struct{})
		r := NewRegistry()
		require.NoError(t, HandleFunc(r, 1, "seq", func(_ context.Context, _ *Conn, a *binMsg, _ *struct{}) error {
			mu.Lock()
			defer mu.Unlock()
			got = append(got, a.V)
			if len(got) == n {
				close(all)
			}
			return nil
		}, Ordered()))
		c, _ := connPair(t, dial, nil, r, WithRequestWindow(4))
		var wg sync.WaitGroup
		var order sync.Mutex // serialize sends so "sent order" is defined
		next := uint64(0)
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range n / 4 {
					order.Lock()
					next++
					err := c.Notify(context.Background(), 1, binMsg{next})
					order.Unlock()
					if !assert.NoError(t, err) {
						return
					}
				}
			}()
		}
		wg.Wait()
		select {
		case <-all:
		case <-time.After(10 * time.Second):
			t.Fatal("notifications not all handled")
		}
		mu.Lock()
		defer mu.Unlock()
		for i, v := range got {
			require.Equal(t, uint64(i+1), v, "handled out of order")
		}
	})
}

func TestNotifyHandlerErrorIsDropped(t *testing.T) {
	c, _ := connPair(t, pipePair, nil, testRegistry(t))
	ctx := context.Background()
	require.NoError(t, c.Notify(ctx, mFail, &Args{}))
	require.NoError(t, c.Notify(ctx, mPanic, &Args{}))
	require.NoError(t, c.Notify(ctx, 77, &Args{}), "unknown method: dropped by the peer")
	assert.ErrorIs(t, c.Notify(ctx, 0, nil), ErrInvalid)
	var rep Reply
	require.NoError(t, c.Call(ctx, mAdd, &Args{1, 2}, &rep))
	assert.Equal(t, 3, rep.C)
}

// TestCallbackNoDeadlock: a handler calls back over the same connection in
// every dispatch mode, with the smallest concurrency bound.
func TestCallbackNoDeadlock(t *testing.T) {
	for _, mode := range []string{"concurrent", "ordered"} {
		t.Run(mode, func(t *testing.T) {
			transports(t, func(t *testing.T, dial func(t *testing.T) (net.Conn, net.Conn)) {
				var opts []HandlerOption
				if mode == "ordered" {
					opts = append(opts, Ordered())
				}
				sr := NewRegistry()
				require.NoError(t, HandleFunc(sr, 1, "outer", func(ctx context.Context, c *Conn, a *Args, rep *Reply) error {
					var inner Reply
					if err := c.Call(ctx, 2, a, &inner); err != nil {
						return err
					}
					rep.C = inner.C + 1
					return c.Notify(ctx, 3, a)
				}, opts...))
				cr := NewRegistry()
				require.NoError(t, HandleFunc(cr, 2, "inner", func(_ context.Context, _ *Conn, a *Args, rep *Reply) error {
					rep.C = a.A * a.B
					return nil
				}, opts...))
				var notified atomic.Int32
				require.NoError(t, HandleFunc(cr, 3, "note", func(context.Context, *Conn, *Args, *struct{}) error {
					notified.Add(1)
					return nil
				}, opts...))
				c, _ := connPair(t, dial, cr, sr, WithMaxConcurrency(1), WithRequestWindow(1))
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				var wg sync.WaitGroup
				for i := range 8 {
					wg.Add(1)
					go func() {
						defer wg.Done()
						var rep Reply
						if assert.NoError(t, c.Call(ctx, 1, &Args{i, 3}, &rep)) {
							assert.Equal(t, i*3+1, rep.C)
						}
					}()
				}
				wg.Wait()
				require.Eventually(t, func() bool { return notified.Load() == 8 }, 10*time.Second, time.Millisecond)
			})
		})
	}
}

func TestConcurrencyBound(t *testing.T) {
	const limit = 3
	var running, peak atomic.Int32
	release := make(chan struct{})
	r := NewRegistry()
	require.NoError(t, HandleFunc(r, 1, "block", func(context.Context, *Conn, *Args, *Reply) error {
		n := running.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		<-release
		running.Add(-1)
		return nil
	}))
	c, _ := connPair(t, pipePair, nil, r, WithMaxConcurrency(limit))
	done := make(chan *Call, 10)
	for range 10 {
		c.Go(context.Background(), 1, &Args{}, nil, done)
	}
	require.Eventually(t, func() bool { return running.Load() == limit }, 10*time.Second, time.Millisecond)
	close(release)
	for range 10 {
		call := <-done
		require.NoError(t, call.Error)
	}
	assert.Equal(t, int32(limit), peak.Load())
}

func TestCloseAndErr(t *testing.T) {
	transports(t, func(t *testing.T, dial func(t *testing.T) (net.Conn, net.Conn)) {
		c, s := connPair(t, dial, nil, testRegistry(t))
		assert.NoError(t, c.Err())
		ctx := context.Background()

		// a call in flight on the peer side fails promptly when the peer closes
		call := c.Go(ctx, mSlow, &Args{}, nil, nil)
		require.Eventually(t, func() bool { return s.inflight.Load() == 1 }, 10*time.Second, time.Millisecond)
		require.NoError(t, s.Close())
		require.NoError(t, s.Close(), "idempotent")
		assert.ErrorIs(t, s.Err(), ErrClosed)
		select {
		case <-call.Done:
			assert.ErrorIs(t, call.Error, ErrConnLost)
		case <-time.After(10 * time.Second):
			t.Fatal("pending call did not fail")
		}
		waitDone(t, c, 10*time.Second)
		assert.ErrorIs(t, c.Err(), ErrConnLost)
		assert.ErrorIs(t, c.Err(), io.EOF)
		assert.ErrorIs(t, c.Call(ctx, mAdd, &Args{}, nil), ErrConnLost)
		assert.ErrorIs(t, c.Notify(ctx, mAdd, &Args{}), ErrConnLost)
		assert.ErrorIs(t, s.Call(ctx, mAdd, &Args{}, nil), ErrClosed)
		assert.Error(t, c.Context().Err(), "context canceled at the end")
	})
}

func TestCloseFailsPendingLocally(t *testing.T) {
	c, _ := connPair(t, pipePair, nil, testRegistry(t))
	errc := make(chan error, 1)
	go func() { errc <- c.Call(context.Background(), mSlow, &Args{}, nil) }()
	require.Eventually(t, func() bool { return pendingLen(c) == 1 }, 10*time.Second, time.Millisecond)
	require.NoError(t, c.Close())
	assert.ErrorIs(t, <-errc, ErrClosed)
}

func TestValuesAndAddrs(t *testing.T) {
	c, s := connPair(t, tcpPair, nil, nil)
	assert.Nil(t, c.Value("k"))
	c.SetValue("k", 1)
	c.SetValue("k", 2)
	assert.Equal(t, 2, c.Value("k"))
	assert.Nil(t, s.Value("k"))
	assert.Equal(t, c.LocalAddr().String(), s.RemoteAddr().String())
	assert.Equal(t, c.RemoteAddr().String(), s.LocalAddr().String())
}

func TestNilRegistry(t *testing.T) {
	c, _ := connPair(t, pipePair, nil, nil)
	err := c.Call(context.Background(), mAdd, &Args{}, nil)
	assert.ErrorIs(t, err, &Error{Code: CodeUnknownMethod})
}

func TestInvalidOptions(t *testing.T) {
	for _, o := range []Option{
		WithMaxMessageSize(1), WithMaxMessageSize(2 << 30), WithMaxConcurrency(0),
		WithRequestWindow(0), WithCodec(nil), WithLogger(nil),
	} {
		a, b := net.Pipe()
		c := NewConn(a, nil, o)
		waitDone(t, c, time.Second)
		assert.ErrorIs(t, c.Err(), ErrInvalid)
		assert.ErrorIs(t, c.Call(context.Background(), 1, nil, nil), ErrInvalid)
		assert.NoError(t, c.Close())
		_, err := b.Write([]byte{1})
		assert.Error(t, err, "the transport was closed")
	}
	c := NewConn(nil, nil)
	assert.ErrorIs(t, c.Err(), ErrInvalid)
	assert.Nil(t, c.RemoteAddr())
	assert.Nil(t, c.LocalAddr())
}

func TestRegistryErrors(t *testing.T) {
	r := NewRegistry()
	ok := func(context.Context, *Conn, *Args, *Reply) error { return nil }
	require.NoError(t, r.Handle(1, "one", ok))
	assert.ErrorIs(t, r.Handle(1, "dup", ok), ErrInvalid)
	assert.ErrorIs(t, HandleFunc(r, 1, "dup", ok), ErrInvalid)
	assert.ErrorIs(t, r.Handle(0, "zero", ok), ErrInvalid)
	assert.ErrorIs(t, HandleFunc[Args, Reply](r, 2, "nil", nil), ErrInvalid)
	assert.ErrorIs(t, HandleFunc(nil, 2, "nilreg", ok), ErrInvalid)
	for i, fn := range []any{
		nil, 42, (func())(nil),
		func(context.Context, *Conn, *Args, *Reply) {},
		func(context.Context, *Conn, Args, *Reply) error { return nil },
		func(context.Context, *Conn, *Args, Reply) error { return nil },
		func(*Conn, *Args, *Reply) error { return nil },
		func(context.Context, *Args, *Args, *Reply) error { return nil },
		func(int, *Conn, *Args, *Reply) error { return nil },
		func(context.Context, *Conn, *Args, *Reply) int { return 0 },
		func(context.Context, *Conn, *Args, ...*Reply) error { return nil },
	} {
		assert.ErrorIs(t, r.Handle(Method(10+i), "bad", fn), ErrInvalid, "case %d", i)
	}
	require.NoError(t, HandleFunc(r, 300, "", ok), "two-byte method, default name")
	assert.Equal(t, "method 300", r.lookup(300).name)
	assert.Nil(t, r.lookup(1<<20))
}

func TestCodeString(t *testing.T) {
	assert.Equal(t, "unknown method", CodeUnknownMethod.String())
	assert.Equal(t, "code 555", Code(555).String())
	assert.Equal(t, "rpc2: internal error", (&Error{Code: CodeInternal}).Error())
	assert.False(t, (&Error{Code: 1}).Is(errors.New("x")))
}

// jsonCodec is a stateless Codec, to show the interface is not gob-specific.
type jsonCodec struct{}

func (jsonCodec) Encode(dst []byte, v any) ([]byte, error) {
	b, err := json.Marshal(v)
	return append(dst, b...), err
}

func (jsonCodec) Decode(body []byte, v any) error {
	if v == nil {
		return nil
	}
	return json.Unmarshal(body, v)
}

func (jsonCodec) ResetEncoder() {}
func (jsonCodec) ResetDecoder() {}

func TestCustomCodecAndLogger(t *testing.T) {
	var logs bytes.Buffer
	var mu sync.Mutex
	logger := slog.New(slog.NewTextHandler(&lockedWriter{w: &logs, mu: &mu}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	newJSON := func() Codec { return jsonCodec{} }
	c, _ := connPair(t, pipePair, nil, testRegistry(t), WithCodec(newJSON), WithLogger(logger))
	ctx := context.Background()
	var rep Reply
	require.NoError(t, c.Call(ctx, mAdd, &Args{20, 22}, &rep))
	assert.Equal(t, 42, rep.C)
	assert.ErrorIs(t, c.Call(ctx, mAdd, "x", nil), &Error{Code: CodeBadRequest})
	assert.ErrorIs(t, c.Call(ctx, mPanic, &Args{}, nil), &Error{Code: CodeInternal})
	mu.Lock()
	defer mu.Unlock()
	assert.Contains(t, logs.String(), "handler panicked")
}

type lockedWriter struct {
	w  io.Writer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
