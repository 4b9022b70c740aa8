package rpc2

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// Test types shared by the tests.
type Args struct{ A, B int }
type Reply struct{ C int }

// binMsg travels raw (BinaryAppender/BinaryUnmarshaler).
type binMsg struct{ V uint64 }

func (m binMsg) AppendBinary(b []byte) ([]byte, error) { return binary.AppendUvarint(b, m.V), nil }
func (m *binMsg) UnmarshalBinary(b []byte) error {
	v, n := binary.Uvarint(b)
	if n <= 0 || n != len(b) {
		return errors.New("bad binMsg")
	}
	m.V = v
	return nil
}

const (
	mAdd Method = iota + 1
	mEcho
	mBin
	mOrdered
	mSlow
	mPanic
	mFail
	mCallback
	mBlob
	mRefl
)

// testRegistry returns a registry with the handlers the tests use.
func testRegistry(t testing.TB) *Registry {
	r := NewRegistry()
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	must(HandleFunc(r, mAdd, "add", func(_ context.Context, _ *Conn, a *Args, rep *Reply) error {
		rep.C = a.A + a.B
		return nil
	}))
	must(HandleFunc(r, mEcho, "echo", func(_ context.Context, _ *Conn, a *string, rep *string) error {
		*rep = *a
		return nil
	}))
	must(HandleFunc(r, mBin, "bin", func(_ context.Context, _ *Conn, a *binMsg, rep *binMsg) error {
		rep.V = a.V * 2
		return nil
	}))
	must(HandleFunc(r, mSlow, "slow", func(ctx context.Context, _ *Conn, a *Args, rep *Reply) error {
		<-ctx.Done() // runs until the connection ends
		return ctx.Err()
	}))
	must(HandleFunc(r, mPanic, "panic", func(context.Context, *Conn, *Args, *Reply) error {
		panic("boom")
	}))
	must(HandleFunc(r, mFail, "fail", func(_ context.Context, _ *Conn, a *Args, _ *Reply) error {
		if a.A == 1 {
			return Errorf(Code(123), "custom %d", a.B)
		}
		return errors.New("plain failure")
	}))
	must(HandleFunc(r, mCallback, "callback", func(ctx context.Context, c *Conn, a *Args, rep *Reply) error {
		var r Reply
		if err := c.Call(ctx, mAdd, a, &r); err != nil {
			return err
		}
		rep.C = r.C * 10
		return nil
	}))
	must(HandleFunc(r, mBlob, "blob", func(_ context.Context, _ *Conn, a *[]byte, rep *[]byte) error {
		*rep = *a
		return nil
	}))
	must(r.Handle(mRefl, "refl", func(_ context.Context, _ *Conn, a *Args, rep *Reply) error {
		rep.C = a.A * a.B
		return nil
	}))
	return r
}

// transports runs f over net.Pipe and over TCP loopback.
func transports(t *testing.T, f func(t *testing.T, dial func(t *testing.T) (net.Conn, net.Conn))) {
	t.Run("pipe", func(t *testing.T) { f(t, pipePair) })
	t.Run("tcp", func(t *testing.T) { f(t, tcpPair) })
}

func pipePair(t *testing.T) (net.Conn, net.Conn) {
	a, b := net.Pipe()
	return a, b
}

func tcpPair(t *testing.T) (net.Conn, net.Conn) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer lis.Close()
	type res struct {
		c   net.Conn
		err error
	}
	ch := make(chan res, 1)
	go func() {
		c, err := lis.Accept()
		ch <- res{c, err}
	}()
	a, err := net.Dial("tcp", lis.Addr().String())
	require.NoError(t, err)
	r := <-ch
	require.NoError(t, r.err)
	return a, r.c
}

// connPair returns two connected Conns (client, server) closed at cleanup,
// failing the test if Close hangs.
func connPair(t *testing.T, dial func(t *testing.T) (net.Conn, net.Conn), cr, sr *Registry, opts ...Option) (*Conn, *Conn) {
	t.Helper()
	a, b := dial(t)
	c, s := NewConn(a, cr, opts...), NewConn(b, sr, opts...)
	t.Cleanup(func() { closeWithin(t, c, s) })
	return c, s
}

func closeWithin(t testing.TB, cs ...*Conn) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		for _, c := range cs {
			_ = c.Close()
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Close hangs")
	}
}

// waitDone fails the test unless c ends within d.
func waitDone(t testing.TB, c *Conn, d time.Duration) {
	t.Helper()
	select {
	case <-c.Done():
	case <-time.After(d):
		t.Fatal("connection did not end")
	}
}

// testFrame describes a frame for buildFrames; body is a value for the gob
// codec, rawBody bytes for a raw body, or an errBody.
type testFrame struct {
	kind   kind
	seq    uint64
	method Method
	body   any
}

type rawBody []byte

// buildFrames encodes frames as a peer with a fresh gob codec would.
func buildFrames(t testing.TB, frames ...testFrame) []byte {
	cd := NewGobCodec()
	var b []byte
	for _, f := range frames {
		switch f.kind {
		case kindReset:
			cd.ResetEncoder()
			b = append(b, 1, byte(kindReset))
			continue
		case kindSettings, kindCredit, kindCancel, kindPing, kindPong:
			b = append(b, byte(1+uvarintLen(f.seq)), byte(f.kind))
			b = binary.AppendUvarint(b, f.seq)
			continue
		}
		start := len(b)
		b = append(b, 0, 0, 0, 0, 0)
		hdr := len(b)
		b = appendHeader(b, f.kind, f.seq, f.method)
		switch v := f.body.(type) {
		case nil:
		case rawBody:
			b = append(b, v...)
			b[hdr] |= flagRaw
		case errBody:
			b = binary.AppendUvarint(b, uint64(v.code))
			b = append(b, v.msg...)
		default:
			var err error
			if b, err = cd.Encode(b, v); err != nil {
				t.Fatal(err)
			}
		}
		b = sealFrame(b, start)
	}
	return b
}

// rawPeer drives one end of a pipe by hand: it writes crafted bytes and reads
// the frames the Conn under test sends.
type rawPeer struct {
	t  testing.TB
	nc net.Conn
	fr *frameReader
	cd Codec
}

func newRawPeer(t testing.TB, nc net.Conn) *rawPeer {
	t.Cleanup(func() { nc.Close() })
	return &rawPeer{t: t, nc: nc, fr: newFrameReader(nc, DefaultMaxMessageSize), cd: NewGobCodec()}
}

// write writes b, failing the test after 10 s.
func (p *rawPeer) write(b []byte) {
	p.t.Helper()
	_ = p.nc.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if _, err := p.nc.Write(b); err != nil {
		p.t.Fatalf("rawPeer write: %v", err)
	}
}

// read reads the next frame (with a 10 s deadline); gob bodies are decoded
// into v when it is non-nil.
func (p *rawPeer) read(v any) frame {
	p.t.Helper()
	_ = p.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	b, err := p.fr.next()
	if err != nil {
		p.t.Fatalf("rawPeer read: %v", err)
	}
	f, err := parseFrame(b)
	if err != nil {
		p.t.Fatalf("rawPeer parse: %v", err)
	}
	if f.kind == kindReset {
		p.cd.ResetDecoder()
	} else if !f.raw && len(f.body) > 0 && (f.kind == kindRequest || f.kind == kindNotify || f.kind == kindReply) {
		if err := p.cd.Decode(f.body, v); err != nil {
			p.t.Fatalf("rawPeer decode: %v", err)
		}
	}
	f.body = bytes.Clone(f.body)
	return f
}

// fakeConn is a net.Conn that reads a fixed stream and discards writes: it
// delivers pre at once, then data after start is closed. Used by the fuzz
// target.
type fakeConn struct {
	mu     sync.Mutex
	pre, r io.Reader
	start  chan struct{}
	closed chan struct{}
	once   sync.Once
}

func newFakeConn(pre, data []byte) *fakeConn {
	return &fakeConn{pre: bytes.NewReader(pre), r: bytes.NewReader(data),
		start: make(chan struct{}), closed: make(chan struct{})}
}

func (f *fakeConn) Read(p []byte) (int, error) {
	f.mu.Lock()
	n, _ := f.pre.Read(p)
	f.mu.Unlock()
	if n > 0 {
		return n, nil
	}
	select {
	case <-f.start:
	case <-f.closed:
		return 0, net.ErrClosed
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.r.Read(p)
}

func (f *fakeConn) Write(p []byte) (int, error) {
	select {
	case <-f.closed:
		return 0, net.ErrClosed
	default:
		return len(p), nil
	}
}

func (f *fakeConn) Close() error {
	f.once.Do(func() { close(f.closed) })
	return nil
}

type fakeAddr struct{}

func (fakeAddr) Network() string { return "fake" }
func (fakeAddr) String() string  { return "fake" }

func (f *fakeConn) LocalAddr() net.Addr                { return fakeAddr{} }
func (f *fakeConn) RemoteAddr() net.Addr               { return fakeAddr{} }
func (f *fakeConn) SetDeadline(t time.Time) error      { return nil }
func (f *fakeConn) SetReadDeadline(t time.Time) error  { return nil }
func (f *fakeConn) SetWriteDeadline(t time.Time) error { return nil }
