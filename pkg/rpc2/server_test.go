package rpc2

import (
	"context"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// startServer serves srv on a loopback listener and returns its address and
// a channel with Serve's result.
func startServer(t *testing.T, ctx context.Context, srv *Server) (string, <-chan error) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ctx, lis) }()
	return lis.Addr().String(), errc
}

func dialConn(t *testing.T, addr string, r *Registry, opts ...Option) *Conn {
	t.Helper()
	c, err := Dial(context.Background(), "tcp", addr, r, opts...)
	require.NoError(t, err)
	t.Cleanup(func() { closeWithin(t, c) })
	return c
}

func TestDialErrors(t *testing.T) {
	lis := mustListen(t)
	addr := lis.Addr().String()
	require.NoError(t, lis.Close())
	_, err := Dial(context.Background(), "tcp", addr, nil)
	assert.Error(t, err, "nothing listens")
	lis = mustListen(t)
	defer lis.Close()
	_, err = Dial(context.Background(), "tcp", lis.Addr().String(), nil, WithMaxConcurrency(0))
	assert.ErrorIs(t, err, ErrInvalid)
}

func recvErr(t *testing.T, errc <-chan error) error {
	t.Helper()
	select {
	case err := <-errc:
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("no result")
		return nil
	}
}

func TestServerServe(t *testing.T) {
	var (
		mu     sync.Mutex
		events []string
	)
	record := func(s string) {
		mu.Lock()
		events = append(events, s)
		mu.Unlock()
	}
	disconnected := make(chan error, 4)
	sr := testRegistry(t)
	require.NoError(t, HandleFunc(sr, 50, "session", func(_ context.Context, c *Conn, _ *struct{}, rep *int) error {
		record("request")
		*rep = c.Value("session").(int)
		return nil
	}))
	srv := NewServer(sr,
		WithOnConnect(func(c *Conn) {
			c.SetValue("session", 42)
			// the hook may call the peer: replies are read already
			var rep Reply
			err := c.Call(c.Context(), mAdd, &Args{40, 2}, &rep)
			record("connect")
			if err != nil || rep.C != 42 {
				record("connect call failed")
			}
		}),
		WithOnDisconnect(func(c *Conn, err error) {
			record("disconnect")
			disconnected <- err
		}),
	)
	addr, errc := startServer(t, context.Background(), srv)

	var clients []*Conn
	for range 2 {
		c := dialConn(t, addr, testRegistry(t))
		clients = append(clients, c)
		var v int
		require.NoError(t, c.Call(context.Background(), 50, &struct{}{}, &v))
		assert.Equal(t, 42, v)
	}
	require.NoError(t, clients[0].Close())
	err := recvErr(t, disconnected)
	assert.ErrorIs(t, err, ErrConnLost, "the server saw the client go")

	require.NoError(t, srv.Shutdown(context.Background()))
	assert.ErrorIs(t, recvErr(t, errc), ErrServerClosed)
	assert.ErrorIs(t, recvErr(t, disconnected), ErrServerClosed)
	waitDone(t, clients[1], 10*time.Second)

	mu.Lock()
	defer mu.Unlock()
	// per connection: connect, then request, then disconnect
	assert.Equal(t, []string{"connect", "request", "connect", "request", "disconnect", "disconnect"}, events)
}

func TestServerShutdownGraceful(t *testing.T) {
	release := make(chan struct{})
	started := make(chan struct{}, 1)
	r := testRegistry(t)
	require.NoError(t, HandleFunc(r, 51, "work", func(_ context.Context, _ *Conn, a *Args, rep *Reply) error {
		started <- struct{}{}
		<-release
		rep.C = a.A
		return nil
	}))
	srv := NewServer(r)
	addr, errc := startServer(t, context.Background(), srv)
	c := dialConn(t, addr, nil)

	inflight := c.Go(context.Background(), 51, &Args{A: 7}, new(Reply), nil)
	<-started
	shut := make(chan error, 1)
	go func() { shut <- srv.Shutdown(context.Background()) }()
	// new requests are refused while the in-flight one finishes
	require.Eventually(t, func() bool {
		err := c.Call(context.Background(), mAdd, &Args{}, nil)
		return errors.Is(err, &Error{Code: CodeUnavailable})
	}, 10*time.Second, time.Millisecond)
	_, err := net.Dial("tcp", addr)
	assert.Error(t, err, "the listener is closed")
	close(release)
	assert.NoError(t, recvErr(t, shut))
	<-inflight.Done
	require.NoError(t, inflight.Error, "the in-flight call completed")
	assert.Equal(t, 7, inflight.Reply.(*Reply).C)
	assert.ErrorIs(t, recvErr(t, errc), ErrServerClosed)
	waitDone(t, c, 10*time.Second)
	assert.ErrorIs(t, srv.Serve(context.Background(), mustListen(t)), ErrServerClosed)
	a, _ := net.Pipe()
	assert.ErrorIs(t, srv.ServeConn(context.Background(), a), ErrServerClosed)
}

func mustListen(t *testing.T) net.Listener {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	return lis
}

func TestServerShutdownForced(t *testing.T) {
	srv := NewServer(testRegistry(t))
	addr, errc := startServer(t, context.Background(), srv)
	c := dialConn(t, addr, nil)
	call := c.Go(context.Background(), mSlow, &Args{}, nil, nil) // runs until its conn ends
	require.Eventually(t, func() bool {
		srv.mu.Lock()
		defer srv.mu.Unlock()
		for sc := range srv.conns {
			if sc.inflight.Load() == 1 {
				return true
			}
		}
		return false
	}, 10*time.Second, time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	assert.ErrorIs(t, srv.Shutdown(ctx), context.DeadlineExceeded)
	assert.ErrorIs(t, recvErr(t, errc), ErrServerClosed)
	<-call.Done
	assert.ErrorIs(t, call.Error, ErrConnLost)
	assert.NoError(t, srv.Close(), "Close after Shutdown")
}

func TestServerServeContextCancel(t *testing.T) {
	var disconnects atomic.Int32
	srv := NewServer(testRegistry(t), WithOnDisconnect(func(*Conn, error) { disconnects.Add(1) }))
	ctx, cancel := context.WithCancel(context.Background())
	addr, errc := startServer(t, ctx, srv)
	c := dialConn(t, addr, nil)
	require.NoError(t, c.Call(context.Background(), mAdd, &Args{}, nil))
	cancel()
	assert.ErrorIs(t, recvErr(t, errc), context.Canceled)
	assert.Equal(t, int32(1), disconnects.Load(), "Serve waited for its connections")
	waitDone(t, c, 10*time.Second)
	require.NoError(t, srv.Close())
}

func TestServerServeConn(t *testing.T) {
	srv := NewServer(testRegistry(t))
	a, b := net.Pipe()
	errc := make(chan error, 1)
	ctx, cancel := context.WithCancel(context.Background())
	go func() { errc <- srv.ServeConn(ctx, b) }()
	c := NewConn(a, nil)
	t.Cleanup(func() { closeWithin(t, c) })
	var rep Reply
	require.NoError(t, c.Call(context.Background(), mAdd, &Args{3, 4}, &rep))
	assert.Equal(t, 7, rep.C)
	cancel()
	err := recvErr(t, errc)
	assert.ErrorIs(t, err, ErrClosed)
	assert.ErrorIs(t, err, context.Canceled)
	require.NoError(t, srv.Close())
}

func TestServerClose(t *testing.T) {
	srv := NewServer(testRegistry(t))
	addr, errc := startServer(t, context.Background(), srv)
	c := dialConn(t, addr, nil)
	call := c.Go(context.Background(), mSlow, &Args{}, nil, nil)
	require.Eventually(t, func() bool {
		srv.mu.Lock()
		defer srv.mu.Unlock()
		return len(srv.conns) == 1
	}, 10*time.Second, time.Millisecond)
	require.NoError(t, srv.Close())
	assert.ErrorIs(t, recvErr(t, errc), ErrServerClosed)
	<-call.Done
	assert.ErrorIs(t, call.Error, ErrConnLost)
}

func TestServerHookPanics(t *testing.T) {
	srv := NewServer(testRegistry(t),
		WithOnConnect(func(*Conn) { panic("connect") }),
		WithOnDisconnect(func(*Conn, error) { panic("disconnect") }))
	a, b := net.Pipe()
	errc := make(chan error, 1)
	go func() { errc <- srv.ServeConn(context.Background(), b) }()
	c := NewConn(a, nil)
	t.Cleanup(func() { closeWithin(t, c) })
	err := recvErr(t, errc)
	assert.ErrorContains(t, err, "OnConnect hook panicked")
	require.NoError(t, srv.Close())
}

func TestServerInvalidOption(t *testing.T) {
	srv := NewServer(nil, WithMaxConcurrency(-1))
	assert.ErrorIs(t, srv.Serve(context.Background(), mustListen(t)), ErrInvalid)
	a, _ := net.Pipe()
	assert.ErrorIs(t, srv.ServeConn(context.Background(), a), ErrInvalid)
}

// errListener fails Accept with a temporary error once, then for good.
type errListener struct {
	net.Listener
	n atomic.Int32
}

type tempErr struct{}

func (tempErr) Error() string   { return "temporary" }
func (tempErr) Timeout() bool   { return true }
func (tempErr) Temporary() bool { return true }

func (l *errListener) Accept() (net.Conn, error) {
	if l.n.Add(1) == 1 {
		return nil, tempErr{}
	}
	return nil, errors.New("listener broken")
}

func TestServerAcceptErrors(t *testing.T) {
	srv := NewServer(nil)
	err := srv.Serve(context.Background(), &errListener{Listener: mustListen(t)})
	assert.ErrorContains(t, err, "listener broken")
	require.NoError(t, srv.Close())
}
