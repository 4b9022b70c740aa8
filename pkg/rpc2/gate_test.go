package rpc2

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// countingCodec counts the bodies passed to Decode.
type countingCodec struct {
	Codec
	decodes *atomic.Int64
}

func (c countingCodec) Decode(body []byte, v any) error {
	c.decodes.Add(1)
	return c.Codec.Decode(body, v)
}

// mLogin is the one method a gated test connection admits; its handler
// ungates the connection when the password (the raw body) is right.
const mLogin Method = 40

var errNotIn = Errorf(Code(150), "log in first")

func gatedRegistry(t *testing.T) *Registry {
	r := testRegistry(t)
	require.NoError(t, HandleFunc(r, mLogin, "login", func(_ context.Context, c *Conn, a *binMsg, rep *binMsg) error {
		if a.V != 7 {
			return Errorf(Code(151), "wrong password")
		}
		c.Ungate()
		rep.V = 1
		return nil
	}))
	return r
}

func loginGate(_ *Conn, m Method) error {
	if m == mLogin {
		return nil
	}
	return errNotIn
}

// TestGate: before the gate opens, only the admitted method runs; every other
// request is refused with the gate's code, unread. After the login handler
// ungates, everything works, codec bodies included.
func TestGate(t *testing.T) {
	var decodes, unmarshals atomic.Int64
	codec := WithCodec(func() Codec { return countingCodec{NewGobCodec(), &decodes} })
	a, b := net.Pipe()
	r := gatedRegistry(t)
	require.NoError(t, HandleFunc(r, 41, "counted", func(context.Context, *Conn, *countedMsg, *struct{}) error {
		return nil
	}))
	s := NewConn(a, r, WithGate(loginGate), codec)
	c := NewConn(b, nil)
	defer closeWithin(t, c, s)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	assert.True(t, s.Gated())
	var bm binMsg
	err := c.Call(ctx, mBin, binMsg{1}, &bm)
	assert.ErrorIs(t, err, errNotIn)
	err = c.Call(ctx, 41, countedMsg{&unmarshals}, nil)
	assert.ErrorIs(t, err, errNotIn)
	err = c.Call(ctx, Method(999), binMsg{1}, &bm)
	assert.ErrorIs(t, err, errNotIn, "an unknown method")
	require.NoError(t, c.Notify(ctx, mBin, binMsg{1}))
	err = c.Call(ctx, mLogin, binMsg{6}, &bm)
	assert.ErrorIs(t, err, &Error{Code: 151})
	assert.True(t, s.Gated())
	assert.Zero(t, unmarshals.Load(), "a refused body was unmarshaled")

	require.NoError(t, c.Call(ctx, mLogin, binMsg{7}, &bm))
	assert.False(t, s.Gated())
	var rep Reply
	require.NoError(t, c.Call(ctx, mAdd, &Args{1, 2}, &rep))
	assert.Equal(t, 3, rep.C)
	assert.Positive(t, decodes.Load())
	require.NoError(t, c.Call(ctx, 41, countedMsg{&unmarshals}, nil))
	assert.Equal(t, int64(1), unmarshals.Load())
	require.NoError(t, s.Err())
}

// countedMsg counts its UnmarshalBinary calls (in the counter its sender
// shares through the test; the receiver's copy counts into the same one).
type countedMsg struct{ n *atomic.Int64 }

var countedN atomic.Pointer[atomic.Int64]

func (m countedMsg) AppendBinary(b []byte) ([]byte, error) {
	countedN.Store(m.n)
	return append(b, 1), nil
}

func (m *countedMsg) UnmarshalBinary([]byte) error {
	countedN.Load().Add(1)
	return nil
}

// TestGateCodecBody: a codec body sent before the gate opens is refused
// unread, even for the admitted method; the codec's stream state is then
// unknown, so the peer's next codec body, after the gate opened, ends the
// connection with ErrDesync. Raw bodies still work in between.
func TestGateCodecBody(t *testing.T) {
	var decodes atomic.Int64
	codec := WithCodec(func() Codec { return countingCodec{NewGobCodec(), &decodes} })
	a, b := net.Pipe()
	s := NewConn(a, gatedRegistry(t), WithGate(loginGate), codec)
	c := NewConn(b, nil)
	defer closeWithin(t, c, s)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	var bm binMsg
	err := c.Call(ctx, mLogin, &Args{7, 7}, &bm) // gob, not raw
	assert.ErrorIs(t, err, &Error{Code: CodeRefused})
	require.NoError(t, c.Call(ctx, mLogin, binMsg{7}, &bm))
	require.NoError(t, c.Call(ctx, mBin, binMsg{2}, &bm))
	assert.Equal(t, uint64(4), bm.V)
	assert.Zero(t, decodes.Load())
	var rep Reply
	err = c.Call(ctx, mAdd, &Args{1, 2}, &rep)
	assert.Error(t, err)
	waitDone(t, s, 10*time.Second)
	assert.ErrorIs(t, s.Err(), ErrDesync)
	assert.Zero(t, decodes.Load())
}

// TestGateLargeBody: a large codec body (read from the stream, not from the
// read buffer) to a refused method is skipped without being buffered.
func TestGateLargeBody(t *testing.T) {
	a, b := net.Pipe()
	s := NewConn(a, gatedRegistry(t), WithGate(loginGate))
	c := NewConn(b, nil)
	defer closeWithin(t, c, s)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	blob := make([]byte, 1<<20)
	var out []byte
	var err error
	grew := allocated(func() { err = c.Call(ctx, mBlob, &blob, &out) })
	assert.ErrorIs(t, err, errNotIn)
	var bm binMsg
	require.NoError(t, c.Call(ctx, mLogin, binMsg{7}, &bm), "the connection still works")
	t.Logf("a refused 1 MiB body: %d KiB allocated on both ends", grew>>10)
}

// TestGateTimeout: a connection not let in within the gate timeout ends with
// ErrGateTimeout, however it trickles bytes; one let in in time stays.
// Fake time.
func TestGateTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := net.Pipe()
		start := time.Now()
		s := NewConn(a, gatedRegistry(t), WithGate(loginGate), WithGateTimeout(5*time.Second))
		go func(b net.Conn) { // a slow peer: one byte of the settings frame a second
			for _, x := range buildFrames(t, testFrame{kind: kindSettings, seq: 8}) {
				if _, err := b.Write([]byte{x}); err != nil {
					return
				}
				time.Sleep(time.Second)
			}
			buf := make([]byte, 64)
			for {
				if _, err := b.Read(buf); err != nil {
					return
				}
			}
		}(b)
		<-s.Done()
		assert.Equal(t, 5*time.Second, time.Since(start))
		assert.ErrorIs(t, s.Err(), ErrConnLost)
		assert.ErrorIs(t, s.Err(), ErrGateTimeout)
		_ = b.Close()

		a, b = net.Pipe()
		s = NewConn(a, gatedRegistry(t), WithGate(loginGate), WithGateTimeout(5*time.Second))
		c := NewConn(b, nil)
		// Go, not Call: Call's pooled channels must not leave the bubble
		call := <-c.Go(context.Background(), mLogin, binMsg{7}, new(binMsg), nil).Done
		require.NoError(t, call.Error)
		time.Sleep(time.Minute)
		require.NoError(t, s.Err())
		closeWithin(t, c, s)
	})
}

// TestIdleTimeout: a peer that sends bytes but never a whole frame is closed
// with ErrIdle after the idle timeout, although the keepalive sees it alive;
// an idle peer that answers pings stays. Fake time.
func TestIdleTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := net.Pipe()
		start := time.Now()
		s := NewConn(a, nil, WithKeepalive(time.Second), WithIdleTimeout(8*time.Second))
		go func(b net.Conn) {
			_, _ = b.Write(buildFrames(t, testFrame{kind: kindSettings, seq: 8}))
			go func() {
				buf := make([]byte, 64)
				for {
					if _, err := b.Read(buf); err != nil {
						return
					}
				}
			}()
			// a frame of 100 bytes, one byte every 500 ms
			frame := append([]byte{100, byte(kindNotify) | flagRaw, 1}, make([]byte, 98)...)
			for _, x := range frame {
				if _, err := b.Write([]byte{x}); err != nil {
					return
				}
				time.Sleep(500 * time.Millisecond)
			}
		}(b)
		<-s.Done()
		elapsed := time.Since(start)
		assert.GreaterOrEqual(t, elapsed, 8*time.Second)
		assert.LessOrEqual(t, elapsed, 10*time.Second, "detected within one check period (d/4)")
		assert.ErrorIs(t, s.Err(), ErrIdle)
		assert.NotErrorIs(t, s.Err(), ErrKeepalive)
		_ = b.Close()

		a, b = net.Pipe()
		s = NewConn(a, nil, WithKeepalive(time.Second), WithIdleTimeout(8*time.Second))
		c := NewConn(b, nil, WithKeepalive(0))
		time.Sleep(100 * time.Second)
		require.NoError(t, s.Err(), "a healthy idle peer answers pings with whole frames")
		closeWithin(t, c, s)
	})
}

// TestWriteTimeout: a peer that stops reading is disconnected with
// ErrSlowPeer once a write has been blocked for the write timeout; senders
// waiting for room get the end error. Fake time.
func TestWriteTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := net.Pipe()
		s := NewConn(a, nil, WithWriteTimeout(3*time.Second))
		// the peer reads nothing at all: the settings frame's write blocks
		var err error
		go func() {
			blob := make([]byte, 64<<10)
			for err == nil {
				err = s.Notify(context.Background(), mBlob, &blob)
			}
		}()
		start := time.Now()
		<-s.Done()
		assert.Equal(t, 3*time.Second, time.Since(start).Truncate(time.Second))
		assert.ErrorIs(t, s.Err(), ErrConnLost)
		assert.ErrorIs(t, s.Err(), ErrSlowPeer)
		_ = b.Close()
		synctest.Wait()
		assert.True(t, errors.Is(err, ErrSlowPeer) || errors.Is(err, ErrConnLost), "%v", err)
	})
}

// TestWriteTimeoutCredit: a peer that reads everything but finishes nothing
// (it never returns flow-control credit) is disconnected with ErrSlowPeer
// once a sender has waited the write timeout for credit. Fake time.
func TestWriteTimeoutCredit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := net.Pipe()
		s := NewConn(a, nil, WithWriteTimeout(3*time.Second))
		go func() { _, _ = io.Copy(io.Discard, b) }()
		_, _ = b.Write(buildFrames(t, testFrame{kind: kindSettings, seq: 2})) // window 2
		start := time.Now()
		var errs []error
		for range 3 {
			errs = append(errs, s.Notify(context.Background(), mBin, binMsg{1}))
		}
		assert.Equal(t, 3*time.Second, time.Since(start).Truncate(time.Second))
		assert.NoError(t, errs[0])
		assert.NoError(t, errs[1])
		assert.ErrorIs(t, errs[2], ErrSlowPeer)
		<-s.Done()
		assert.ErrorIs(t, s.Err(), ErrSlowPeer)
		assert.Contains(t, s.Err().Error(), "credit")
		_ = b.Close()
	})
}

// TestConnShutdown: Conn.Shutdown lets the request in flight answer, then
// ends the connection; the peer reads the reply, then end of stream.
func TestConnShutdown(t *testing.T) {
	transports(t, func(t *testing.T, dial func(t *testing.T) (net.Conn, net.Conn)) {
		release := make(chan struct{})
		r := NewRegistry()
		require.NoError(t, HandleFunc(r, 1, "wait", func(_ context.Context, _ *Conn, a *binMsg, rep *binMsg) error {
			<-release
			rep.V = a.V
			return nil
		}))
		c, s := connPair(t, dial, nil, r)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		call := c.Go(ctx, 1, binMsg{5}, new(binMsg), nil)
		require.Eventually(t, func() bool { return s.inflight.Load() == 1 }, 10*time.Second, time.Millisecond)
		done := make(chan error, 1)
		go func() { done <- s.Shutdown(ctx) }()
		close(release)
		<-call.Done
		require.NoError(t, call.Error)
		assert.Equal(t, uint64(5), call.Reply.(*binMsg).V)
		waitDone(t, c, 10*time.Second)
		require.NoError(t, <-done)
		assert.ErrorIs(t, s.Err(), ErrClosed)
	})
}

// TestDrainAfterFinishBeforeReply: a drain that starts after a request has
// finished (its credit returned) but before its reply is queued still lets
// the reply out before the write side ends.
func TestDrainAfterFinishBeforeReply(t *testing.T) {
	defer func() { testHookFinished = nil }()
	testHookFinished = func(c *Conn) { c.drain(fmt.Errorf("%w: test drain", ErrClosed)) }
	for range 50 {
		a, b := net.Pipe()
		s := NewConn(a, testRegistry(t))
		c := NewConn(b, nil)
		var bm binMsg
		err := c.Call(context.Background(), mBin, binMsg{4}, &bm)
		require.NoError(t, err, "the reply was lost to the drain")
		assert.Equal(t, uint64(8), bm.V)
		closeWithin(t, c, s)
	}
}
