package rpc2

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Behaviour under bad input and faults: one test per case of the brief.

// newTypeArgs is a type no other message uses, so its gob type description
// travels in the body that the peer has to discard.
type newTypeArgs struct {
	Name  string
	Items []int
}

func TestFaultUnknownMethod(t *testing.T) {
	transports(t, func(t *testing.T, dial func(t *testing.T) (net.Conn, net.Conn)) {
		c, _ := connPair(t, dial, nil, testRegistry(t))
		ctx := context.Background()
		err := c.Call(ctx, 99, &newTypeArgs{"x", []int{1}}, nil)
		var e *Error
		require.ErrorAs(t, err, &e)
		assert.Equal(t, CodeUnknownMethod, e.Code)
		assert.Equal(t, "method 99", e.Message)
		// the connection stays up and the gob streams are still in sync
		err = c.Call(ctx, 98, &newTypeArgs{"y", []int{2}}, nil)
		assert.ErrorIs(t, err, &Error{Code: CodeUnknownMethod})
		var rep Reply
		require.NoError(t, c.Call(ctx, mAdd, &Args{1, 2}, &rep))
		assert.Equal(t, 3, rep.C)
		assert.NoError(t, c.Err())
	})
}

func TestFaultArgsDecode(t *testing.T) {
	c, _ := connPair(t, pipePair, nil, testRegistry(t))
	ctx := context.Background()
	err := c.Call(ctx, mAdd, "a string, not Args", nil)
	var e *Error
	require.ErrorAs(t, err, &e)
	assert.Equal(t, CodeBadRequest, e.Code)
	assert.Contains(t, e.Message, "add")

	// raw bytes to a handler whose argument is not a BinaryUnmarshaler
	err = c.Call(ctx, mAdd, binMsg{5}, nil)
	require.ErrorAs(t, err, &e)
	assert.Equal(t, CodeBadRequest, e.Code)

	var rep Reply
	require.NoError(t, c.Call(ctx, mAdd, &Args{2, 2}, &rep), "connection stays up")
	assert.Equal(t, 4, rep.C)
}

func TestFaultReplyDecode(t *testing.T) {
	c, _ := connPair(t, pipePair, nil, testRegistry(t))
	ctx := context.Background()
	var wrong string
	err := c.Call(ctx, mAdd, &Args{1, 2}, &wrong)
	assert.ErrorIs(t, err, ErrDecode)
	err = c.Call(ctx, mAdd, &Args{1, 2}, Reply{}) // not a pointer
	assert.ErrorIs(t, err, ErrDecode)
	err = c.Call(ctx, mBin, binMsg{1}, new(Reply)) // raw reply into a gob type
	assert.ErrorIs(t, err, ErrDecode)

	var rep Reply
	require.NoError(t, c.Call(ctx, mAdd, &Args{1, 2}, &rep), "connection stays up")
	assert.Equal(t, 3, rep.C)
	assert.NoError(t, c.Err())
}

// TestFaultStreamCorrupt: a reply body that breaks the gob stream closes the
// connection with ErrDecode and fails every pending call at once.
func TestFaultStreamCorrupt(t *testing.T) {
	a, b := net.Pipe()
	c := NewConn(a, nil)
	t.Cleanup(func() { closeWithin(t, c) })
	p := newRawPeer(t, b)
	p.write(buildFrames(t, testFrame{kind: kindSettings, seq: 10}))
	require.Equal(t, kindSettings, p.read(nil).kind)

	ctx := context.Background()
	calls := make(chan *Call, 2)
	go func() { // net.Pipe: writes wait for the reader
		calls <- c.Go(ctx, mAdd, &Args{1, 1}, new(Reply), nil)
		calls <- c.Go(ctx, mAdd, &Args{2, 2}, new(Reply), nil)
	}()
	f1, f2 := p.read(new(Args)), p.read(new(Args))
	c1, c2 := <-calls, <-calls
	// a gob message count larger than the body
	p.write([]byte{5, byte(kindReply), byte(f1.seq), 9, 1, 2})
	for i, call := range []*Call{c1, c2} {
		select {
		case <-call.Done:
			assert.ErrorIs(t, call.Error, ErrDecode, "call %d", i)
		case <-time.After(10 * time.Second):
			t.Fatalf("call %d pending", i)
		}
	}
	assert.ErrorIs(t, c2.Error, ErrConnLost)
	waitDone(t, c, 10*time.Second)
	assert.ErrorIs(t, c.Err(), ErrDecode)
	assert.ErrorIs(t, c.Err(), ErrConnLost)
	_ = f2
}

func TestFaultArgsEncode(t *testing.T) {
	var handled atomic.Int32
	r := testRegistry(t)
	type holder struct{ V any }
	require.NoError(t, HandleFunc(r, 40, "holder", func(_ context.Context, _ *Conn, a *holder, rep *string) error {
		handled.Add(1)
		*rep = fmt.Sprint(a.V)
		return nil
	}))
	c, _ := connPair(t, pipePair, nil, r)
	ctx := context.Background()

	err := c.Call(ctx, 40, &holder{V: func() {}}, nil)
	assert.ErrorIs(t, err, ErrEncode)
	err = c.Call(ctx, 40, &holder{V: struct{ X int }{1}}, nil) // unregistered in interface
	assert.ErrorIs(t, err, ErrEncode)
	assert.ErrorIs(t, c.Notify(ctx, 40, make(chan int)), ErrEncode)
	assert.Equal(t, int32(0), handled.Load(), "nothing was sent")

	var s string
	require.NoError(t, c.Call(ctx, 40, &holder{V: 7}, &s), "the stream is still in sync")
	assert.Equal(t, "7", s)
	require.NoError(t, c.Call(ctx, mAdd, &Args{1, 2}, nil))
}

// TestFaultArgsEncodeWire checks on the wire that a failed encode sends none
// of the call: only a reset frame, so both gob streams start afresh.
func TestFaultArgsEncodeWire(t *testing.T) {
	a, b := net.Pipe()
	c := NewConn(a, nil)
	t.Cleanup(func() { closeWithin(t, c) })
	p := newRawPeer(t, b)
	p.write(buildFrames(t, testFrame{kind: kindSettings, seq: 10}))
	require.Equal(t, kindSettings, p.read(nil).kind)
	type holder struct{ V any }
	errc := make(chan error, 1)
	go func() {
		errc <- c.Call(context.Background(), 1, &holder{V: struct{ X int }{1}}, nil)
		errc <- c.Notify(context.Background(), 2, &holder{V: 5})
	}()
	require.ErrorIs(t, <-errc, ErrEncode)
	assert.Equal(t, kindReset, p.read(nil).kind)
	var h holder
	f := p.read(&h)
	require.NoError(t, <-errc)
	assert.Equal(t, kindNotify, f.kind)
	assert.Equal(t, 5, h.V)
}

func TestFaultOversizedIncoming(t *testing.T) {
	a, b := net.Pipe()
	c := NewConn(a, testRegistry(t))
	t.Cleanup(func() { closeWithin(t, c) })
	p := newRawPeer(t, b)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	p.write([]byte{0x80, 0x80, 0x80, 0x40}) // claims 128 MiB
	waitDone(t, c, 10*time.Second)
	runtime.ReadMemStats(&after)
	assert.ErrorIs(t, c.Err(), ErrTooLarge)
	assert.ErrorIs(t, c.Err(), ErrConnLost)
	assert.Contains(t, c.Err().Error(), "limit of 4194304 bytes")
	assert.Less(t, after.TotalAlloc-before.TotalAlloc, uint64(8<<20), "the claimed size was not allocated")
}

func TestFaultOversizedOutgoing(t *testing.T) {
	r := testRegistry(t)
	require.NoError(t, HandleFunc(r, 41, "grow", func(_ context.Context, _ *Conn, n *int, rep *[]byte) error {
		*rep = make([]byte, *n)
		return nil
	}))
	c, _ := connPair(t, pipePair, nil, r, WithMaxMessageSize(1<<16))
	ctx := context.Background()
	big := make([]byte, 1<<16)
	err := c.Call(ctx, mBlob, &big, nil)
	assert.ErrorIs(t, err, ErrTooLarge)
	assert.ErrorContains(t, err, "limit of 65536 bytes")

	n := 1 << 16
	err = c.Call(ctx, 41, &n, nil)
	assert.ErrorIs(t, err, &Error{Code: CodeTooLarge}, "the reply is too large")
	n = 100
	var out []byte
	require.NoError(t, c.Call(ctx, 41, &n, &out), "connection stays up")
	assert.Len(t, out, 100)
}

func TestFaultGarbage(t *testing.T) {
	for seed := range uint64(20) {
		rng := rand.New(rand.NewPCG(seed, seed))
		garbage := make([]byte, 1+rng.IntN(4096))
		for i := range garbage {
			garbage[i] = byte(rng.Uint32())
		}
		a, b := net.Pipe()
		c := NewConn(a, testRegistry(t), WithMaxMessageSize(1<<16))
		p := newRawPeer(t, b)
		go func() { // the peer may stop reading; keep draining what c writes
			buf := make([]byte, 1024)
			for {
				if _, err := b.Read(buf); err != nil {
					return
				}
			}
		}()
		_, _ = b.Write(garbage)
		_ = b.Close()
		waitDone(t, c, 10*time.Second)
		assert.Error(t, c.Err(), "seed %d", seed)
		assert.ErrorIs(t, c.Err(), ErrConnLost, "seed %d", seed)
		_ = p
		closeWithin(t, c)
	}
}

func TestFaultProtocolViolations(t *testing.T) {
	for name, stream := range map[string][]byte{
		"unknown kind":   {1, 0x0e},
		"unknown flags":  {3, 0x43, 1, 0},
		"request seq 0":  {3, byte(kindRequest), 0, 1},
		"method 0":       {3, byte(kindRequest), 1, 0},
		"reply seq 0":    {2, byte(kindReply), 0},
		"long prefix":    {0x80, 0x80, 0x80, 0x80, 0x80, 1},
		"empty frame":    {0},
		"bad reset":      {2, byte(kindReset), 0},
		"raw error":      {3, byte(kindError) | flagRaw, 1, 1},
		"bad credit":     {2, byte(kindCredit), 0},
		"two settings":   {2, byte(kindSettings), 1, 2, byte(kindSettings), 1},
		"cancel seq 0":   {2, byte(kindCancel), 0},
		"cancel trailer": {3, byte(kindCancel), 1, 0},
		"ping trailer":   {3, byte(kindPing), 1, 0},
		"ping no value":  {1, byte(kindPing)},
		"raw pong":       {2, byte(kindPong) | flagRaw, 1},
		"window overrun": buildFrames(t, testFrame{kind: kindNotify, method: mSlow}, testFrame{kind: kindNotify, method: mSlow}),
	} {
		t.Run(name, func(t *testing.T) {
			a, b := net.Pipe()
			c := NewConn(a, testRegistry(t), WithRequestWindow(1))
			p := newRawPeer(t, b)
			go func() {
				buf := make([]byte, 1024)
				for {
					if _, err := b.Read(buf); err != nil {
						return
					}
				}
			}()
			p.write(stream)
			waitDone(t, c, 10*time.Second)
			assert.ErrorIs(t, c.Err(), ErrProtocol)
		})
	}
}

func TestFaultTruncatedStream(t *testing.T) {
	full := buildFrames(t, testFrame{kind: kindRequest, seq: 1, method: mAdd, body: &Args{1, 2}})
	a, b := tcpPair(t)
	c := NewConn(a, testRegistry(t))
	t.Cleanup(func() { closeWithin(t, c) })
	p := newRawPeer(t, b)
	go func() { // keep reading what c writes
		buf := make([]byte, 1024)
		for {
			if _, err := b.Read(buf); err != nil {
				return
			}
		}
	}()
	p.write(full[:len(full)-2])
	require.NoError(t, b.(*net.TCPConn).CloseWrite()) // the stream ends mid-frame
	waitDone(t, c, 10*time.Second)
	assert.True(t, errors.Is(c.Err(), ErrConnLost))
	assert.ErrorContains(t, c.Err(), "unexpected EOF")
}

// TestFaultPeerVanishes: the transport dies under a pending call.
func TestFaultPeerVanishes(t *testing.T) {
	transports(t, func(t *testing.T, dial func(t *testing.T) (net.Conn, net.Conn)) {
		a, b := dial(t)
		c := NewConn(a, nil)
		started := make(chan struct{})
		r := NewRegistry()
		require.NoError(t, HandleFunc(r, 1, "hang", func(ctx context.Context, _ *Conn, _ *Args, _ *Reply) error {
			close(started)
			<-ctx.Done()
			return nil
		}))
		s := NewConn(b, r)
		t.Cleanup(func() { closeWithin(t, c, s) })
		errc := make(chan error, 1)
		go func() { errc <- c.Call(context.Background(), 1, &Args{}, nil) }()
		<-started
		_ = b.Close() // the peer's transport vanishes (s itself is not closed)
		select {
		case err := <-errc:
			assert.ErrorIs(t, err, ErrConnLost)
		case <-time.After(10 * time.Second):
			t.Fatal("pending call did not fail")
		}
		waitDone(t, c, 10*time.Second)
		waitDone(t, s, 10*time.Second)
	})
}

// TestFaultSlowPeerBackpressure: a peer that stops reading makes senders
// wait (the write buffer is bounded), and ctx bounds every wait, even while
// a write is blocked.
func TestFaultSlowPeerBackpressure(t *testing.T) {
	a, b := net.Pipe()
	c := NewConn(a, nil)
	t.Cleanup(func() { closeWithin(t, c) })
	p := newRawPeer(t, b)
	p.write(buildFrames(t, testFrame{kind: kindSettings, seq: 1 << 20}))
	require.Equal(t, kindSettings, p.read(nil).kind)
	// nobody reads b any more: fill the write buffer to its limit (with a
	// ctx that can't end first however slow this machine is), then a sender
	// must wait and its ctx bounds the wait
	fill, cancelFill := context.WithTimeout(context.Background(), time.Minute)
	defer cancelFill()
	blob := make([]byte, 1<<10)
	full := func() bool {
		c.wmu.Lock()
		defer c.wmu.Unlock()
		return len(c.wbuf) >= writeBufLimit
	}
	for i := 0; !full(); i++ {
		require.Less(t, i, 10000, "the write buffer never filled")
		require.NoError(t, c.Go(fill, 1, &blob, nil, nil).Error)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	call := c.Go(ctx, 1, &blob, nil, nil)
	assert.ErrorIs(t, call.Error, context.DeadlineExceeded)
	c.wmu.Lock()
	queued := len(c.wbuf)
	c.wmu.Unlock()
	assert.LessOrEqual(t, queued, writeBufLimit+2<<10, "the write buffer is bounded")

	nctx, ncancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer ncancel()
	assert.ErrorIs(t, c.Notify(nctx, 1, &blob), context.DeadlineExceeded)
}

// TestFaultWindowWait: with the peer's window used up, calls wait for credit
// and ctx bounds the wait.
func TestFaultWindowWait(t *testing.T) {
	release := make(chan struct{})
	r := NewRegistry()
	require.NoError(t, HandleFunc(r, 1, "block", func(context.Context, *Conn, *Args, *Reply) error {
		<-release
		return nil
	}))
	c, _ := connPair(t, pipePair, nil, r, WithRequestWindow(2))
	done := make(chan *Call, 3)
	c.Go(context.Background(), 1, &Args{}, nil, done)
	c.Go(context.Background(), 1, &Args{}, nil, done)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	assert.ErrorIs(t, c.Call(ctx, 1, &Args{}, nil), context.DeadlineExceeded)
	close(release)
	for range 2 {
		require.NoError(t, (<-done).Error)
	}
	require.NoError(t, c.Call(context.Background(), 1, &Args{}, nil), "credit came back")
}

// TestFaultLargeFrames covers frames larger than the read buffer: gob bodies
// are decoded from the stream, and the same faults behave as for small ones.
func TestFaultLargeFrames(t *testing.T) {
	defer func(n int) { readBufSize = n }(readBufSize)
	readBufSize = 64
	c, _ := connPair(t, pipePair, nil, testRegistry(t))
	ctx := context.Background()
	long := string(make([]byte, 1000))
	var s string
	require.NoError(t, c.Call(ctx, mEcho, long, &s))
	assert.Equal(t, long, s)
	err := c.Call(ctx, mAdd, long, nil) // type mismatch in a streamed body
	assert.ErrorIs(t, err, &Error{Code: CodeBadRequest})
	err = c.Call(ctx, 99, &newTypeArgs{Name: long}, nil) // discarded streamed body
	assert.ErrorIs(t, err, &Error{Code: CodeUnknownMethod})
	err = c.Call(ctx, mFail, &Args{A: 1, B: 2}, nil)
	assert.ErrorIs(t, err, &Error{Code: 123})
	var wrong int
	assert.ErrorIs(t, c.Call(ctx, mEcho, long, &wrong), ErrDecode)
	require.NoError(t, c.Call(ctx, mEcho, long, &s), "still in sync")

	// a streamed body whose gob count runs past the frame
	a, b := net.Pipe()
	c2 := NewConn(a, testRegistry(t))
	t.Cleanup(func() { closeWithin(t, c2) })
	p := newRawPeer(t, b)
	go func() {
		buf := make([]byte, 1024)
		for {
			if _, err := b.Read(buf); err != nil {
				return
			}
		}
	}()
	frame := []byte{0, byte(kindRequest), 1, byte(mEcho), 0xfe, 0x10, 0x00} // count 4096
	frame = append(frame, make([]byte, 100)...)
	frame[0] = byte(len(frame) - 1)
	_ = p
	_, _ = b.Write(frame) // c2 may close before it has read it all
	waitDone(t, c2, 10*time.Second)
	assert.ErrorIs(t, c2.Err(), ErrDecode)
}
