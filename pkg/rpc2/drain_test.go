package rpc2

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"math/big"
	"net"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// noteLog records the notifications a client's handler saw.
type noteLog struct {
	mu  sync.Mutex
	got []int
}

func (l *noteLog) registry(t *testing.T, opts ...HandlerOption) *Registry {
	r := NewRegistry()
	require.NoError(t, HandleFunc(r, 1, "note", func(_ context.Context, _ *Conn, v *int, _ *struct{}) error {
		l.mu.Lock()
		l.got = append(l.got, *v)
		l.mu.Unlock()
		return nil
	}, opts...))
	return r
}

func (l *noteLog) list() []int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]int(nil), l.got...)
}

// assertCleanEnd checks that a connection ended with the peer's end of
// stream, not with a reset or a broken pipe.
func assertCleanEnd(t *testing.T, err error) {
	t.Helper()
	assert.ErrorIs(t, err, ErrConnLost)
	assert.ErrorIs(t, err, io.EOF)
	assert.NotErrorIs(t, err, syscall.ECONNRESET)
	assert.NotErrorIs(t, err, syscall.EPIPE)
}

var dispatchModes = []struct {
	name    string
	opts    []HandlerOption
	ordered bool
}{
	{"concurrent", nil, false},
	{"ordered", []HandlerOption{Ordered()}, true},
	{"inline", []HandlerOption{Inline()}, true},
}

// TestShutdownDeliversQueued: the server queues and sends notifications,
// then shuts down. The client's handlers see every one of them (in order
// where the method is ordered), the client's connection ends with a clean end
// of stream (no reset, no broken pipe), and the server's with ErrServerClosed
// after a Shutdown that did not have to force. Over TCP the server
// half-closes and waits for the client to close; over net.Pipe it closes
// after writing; over TLS it sends close_notify and waits.
func TestShutdownDeliversQueued(t *testing.T) {
	const n = 300
	pairs := []struct {
		name string
		dial func(t *testing.T) (net.Conn, net.Conn)
	}{{"pipe", pipePair}, {"tcp", tcpPair}, {"tls", tlsPair}}
	for _, mode := range dispatchModes {
		for _, pair := range pairs {
			t.Run(mode.name+"/"+pair.name, func(t *testing.T) {
				shutdownDeliversQueued(t, pair.dial, mode.opts, mode.ordered, n)
			})
		}
	}
}

func shutdownDeliversQueued(t *testing.T, dial func(t *testing.T) (net.Conn, net.Conn), opts []HandlerOption, ordered bool, n int) {
	var log noteLog
	conns := make(chan *Conn, 1)
	ends := make(chan error, 1)
	srv := NewServer(nil,
		WithOnConnect(func(c *Conn) { conns <- c }),
		WithOnDisconnect(func(_ *Conn, err error) { ends <- err }))
	a, b := dial(t)
	served := make(chan error, 1)
	go func() { served <- srv.ServeConn(context.Background(), b) }()
	c := NewConn(a, log.registry(t, opts...))
	t.Cleanup(func() { closeWithin(t, c); _ = srv.Close() })

	sc := <-conns
	ctx := context.Background()
	for i := range n {
		if i%3 == 2 {
			require.NoError(t, sc.Notify(ctx, 1, &i))
		} else {
			require.NoError(t, sc.Queue(ctx, 1, &i))
		}
	}
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	require.NoError(t, srv.Shutdown(sctx), "the drain ended without force")
	waitDone(t, c, 10*time.Second)

	assertCleanEnd(t, c.Err())
	end := recvErr(t, ends)
	assert.ErrorIs(t, end, ErrServerClosed)
	assert.ErrorIs(t, end, ErrClosed)
	assert.ErrorIs(t, recvErr(t, served), ErrServerClosed)
	got := log.list()
	require.Len(t, got, n, "every notification reached a handler")
	if ordered {
		for i, v := range got {
			require.Equal(t, i, v, "in order")
		}
	}
	assert.ErrorIs(t, sc.Notify(ctx, 1, new(int)), ErrServerClosed)
	_, halfCloses := b.(interface{ CloseWrite() error })
	assert.Equal(t, halfCloses, sc.wshut.Load(), "half-closed where the transport can")
}

// tlsPair returns the two ends of a TLS connection over TCP loopback, with a
// certificate made for the test.
func tlsPair(t *testing.T) (net.Conn, net.Conn) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "rpc2 test"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	roots := x509.NewCertPool()
	roots.AddCert(cert)
	a, b := tcpPair(t)
	ca := tls.Client(a, &tls.Config{RootCAs: roots, ServerName: "127.0.0.1"})
	sb := tls.Server(b, &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}})
	return ca, sb
}

// TestShutdownClientBusy: a client that keeps calling while the server
// shuts down gets replies, then CodeUnavailable errors, then the end of the
// connection; never a reset, and the server does not have to force.
func TestShutdownClientBusy(t *testing.T) {
	srv := NewServer(testRegistry(t))
	addr, errc := startServer(t, context.Background(), srv)
	c := dialConn(t, addr, nil)
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				var rep Reply
				err := c.Call(context.Background(), mAdd, &Args{1, 2}, &rep)
				switch {
				case err == nil && rep.C == 3:
				case errors.Is(err, &Error{Code: CodeUnavailable}):
				default:
					errs <- err
					return
				}
			}
		}()
	}
	require.NoError(t, c.Call(context.Background(), mAdd, &Args{}, nil))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, srv.Shutdown(ctx))
	waitGroupWithin(t, &wg, 10*time.Second)
	close(errs)
	for err := range errs {
		assert.ErrorIs(t, err, ErrConnLost, "calls end with the connection")
		assertCleanEnd(t, err)
	}
	waitDone(t, c, 10*time.Second)
	assertCleanEnd(t, c.Err())
	assert.ErrorIs(t, recvErr(t, errc), ErrServerClosed)
}

// eof reads the next frame and expects the end of the stream instead.
func (p *rawPeer) eof() {
	p.t.Helper()
	_ = p.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	b, err := p.fr.next()
	if err != io.EOF {
		p.t.Fatalf("rawPeer: got %v (frame %x), want io.EOF", err, b)
	}
}

// TestShutdownHalfClosed: after the server has half-closed, it still reads:
// the reply to its own call is delivered, and a request that arrives then is
// dropped (it can no longer be answered). The server's connection ends when
// the peer closes.
func TestShutdownHalfClosed(t *testing.T) {
	conns := make(chan *Conn, 1)
	srv := NewServer(nil, WithOnConnect(func(c *Conn) { conns <- c }))
	a, b := tcpPair(t)
	served := make(chan error, 1)
	go func() { served <- srv.ServeConn(context.Background(), b) }()
	t.Cleanup(func() { _ = srv.Close() })
	p := newRawPeer(t, a)
	p.write(buildFrames(t, testFrame{kind: kindSettings, seq: 10}))
	require.Equal(t, kindSettings, p.read(nil).kind)
	sc := <-conns

	var rep Reply
	call := sc.Go(context.Background(), 7, &Args{}, &rep, nil)
	f := p.read(nil)
	require.Equal(t, kindRequest, f.kind)
	shut := make(chan error, 1)
	go func() { shut <- srv.Shutdown(context.Background()) }()
	p.eof() // everything written, then the write side is closed

	p.write(buildFrames(t,
		testFrame{kind: kindRequest, seq: 1, method: 3},
		testFrame{kind: kindReply, seq: f.seq, body: Reply{C: 42}}))
	select {
	case <-call.Done:
	case <-time.After(10 * time.Second):
		t.Fatal("the reply read after the half-close was not delivered")
	}
	require.NoError(t, call.Error)
	assert.Equal(t, 42, rep.C)
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned %v before the peer closed", err)
	default:
	}
	require.NoError(t, a.(*net.TCPConn).CloseWrite())
	require.NoError(t, recvErr(t, shut))
	assert.ErrorIs(t, recvErr(t, served), ErrServerClosed)
	assert.ErrorIs(t, sc.Err(), ErrServerClosed)
}

// TestShutdownForcedWhileHalfClosed: a peer that never closes holds the
// drain only until Shutdown's ctx ends.
func TestShutdownForcedWhileHalfClosed(t *testing.T) {
	srv := NewServer(nil)
	a, b := tcpPair(t)
	served := make(chan error, 1)
	go func() { served <- srv.ServeConn(context.Background(), b) }()
	p := newRawPeer(t, a)
	p.write(buildFrames(t, testFrame{kind: kindSettings, seq: 10}))
	require.Equal(t, kindSettings, p.read(nil).kind)
	ctx, cancel := context.WithCancel(context.Background())
	shut := make(chan error, 1)
	go func() { shut <- srv.Shutdown(ctx) }()
	p.eof()
	cancel()
	assert.ErrorIs(t, recvErr(t, shut), context.Canceled)
	assert.ErrorIs(t, recvErr(t, served), ErrServerClosed)
}

// TestEOFDeliversNotifications: a connection whose peer ends its stream
// still handles the notifications it has read (also those waiting for a
// worker), but runs no request: nobody could read its reply. Close, by
// contrast, drops what is left.
func TestEOFDeliversNotifications(t *testing.T) {
	const n = 20
	for _, closeEarly := range []bool{false, true} {
		name := "delivered"
		if closeEarly {
			name = "closed"
		}
		t.Run(name, func(t *testing.T) {
			gate, started := make(chan struct{}), make(chan struct{})
			var (
				mu   sync.Mutex
				got  []int
				reqs int
			)
			r := NewRegistry()
			require.NoError(t, HandleFunc(r, 1, "note", func(ctx context.Context, _ *Conn, v *int, _ *struct{}) error {
				if *v == 0 {
					close(started)
					<-gate // hold the only worker: the others wait in the queue
				}
				mu.Lock()
				got = append(got, *v)
				mu.Unlock()
				return nil
			}))
			require.NoError(t, HandleFunc(r, 2, "req", func(context.Context, *Conn, *Args, *Reply) error {
				mu.Lock()
				reqs++
				mu.Unlock()
				return nil
			}))
			a, b := net.Pipe()
			c := NewConn(a, r, WithMaxConcurrency(1))
			t.Cleanup(func() { closeWithin(t, c) })
			p := newRawPeer(t, b)
			p.write(buildFrames(t, testFrame{kind: kindSettings, seq: 10}))
			require.Equal(t, kindSettings, p.read(nil).kind)
			var frames []testFrame
			for i := range n {
				frames = append(frames, testFrame{kind: kindNotify, method: 1, body: i})
				if i == n/2 {
					frames = append(frames, testFrame{kind: kindRequest, seq: 1, method: 2, body: Args{}})
				}
			}
			p.write(buildFrames(t, frames...))
			<-started
			require.NoError(t, b.Close())
			require.Eventually(t, func() bool { return c.Err() != nil }, 10*time.Second, time.Millisecond)
			assertCleanEnd(t, c.Err())
			closed := make(chan struct{})
			if closeEarly {
				go func() {
					_ = c.Close()
					close(closed)
				}()
				require.Eventually(t, func() bool { return c.endMode.Load() == endAbort }, 10*time.Second, time.Millisecond)
			}
			close(gate)
			waitDone(t, c, 10*time.Second)
			if closeEarly {
				<-closed
			}
			mu.Lock()
			defer mu.Unlock()
			assert.Zero(t, reqs, "no request runs after the end")
			if closeEarly {
				assert.Equal(t, []int{0}, got, "Close drops what is left")
				return
			}
			require.Len(t, got, n)
			seen := make(map[int]bool)
			for _, v := range got {
				seen[v] = true
			}
			assert.Len(t, seen, n, "each notification once")
		})
	}
}

// TestShutdownOnDrained: the OnDrained hook runs once per connection, after
// the requests in flight have replied, and what it sends reaches the peer
// after those replies and before the end of stream.
func TestShutdownOnDrained(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{})
	sreg := NewRegistry()
	require.NoError(t, HandleFunc(sreg, 2, "slow", func(context.Context, *Conn, *int, *int) error {
		close(entered)
		<-release
		return nil
	}))
	var hooks sync.WaitGroup
	hooks.Add(1)
	conns := make(chan *Conn, 1)
	srv := NewServer(sreg,
		WithOnConnect(func(c *Conn) { conns <- c }),
		WithOnDrained(func(c *Conn) {
			defer hooks.Done()
			bye := -1
			assert.NoError(t, c.Notify(context.Background(), 1, &bye))
		}))
	a, b := tcpPair(t)
	served := make(chan error, 1)
	go func() { served <- srv.ServeConn(context.Background(), b) }()

	var log noteLog
	c := NewConn(a, log.registry(t, Ordered()))
	t.Cleanup(func() { closeWithin(t, c); _ = srv.Close() })
	<-conns
	replied := make(chan error, 1)
	go func() { replied <- c.Call(context.Background(), 2, new(int), new(int)) }()
	<-entered

	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	shut := make(chan error, 1)
	go func() { shut <- srv.Shutdown(sctx) }()
	close(release)
	require.NoError(t, recvErr(t, replied), "the request in flight got its reply")
	require.NoError(t, recvErr(t, shut))
	hooks.Wait()
	waitDone(t, c, 10*time.Second)
	assertCleanEnd(t, c.Err())
	assert.Equal(t, []int{-1}, log.list(), "the hook's goodbye arrived")
	assert.ErrorIs(t, recvErr(t, served), ErrServerClosed)
}
