package rpc2

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"
)

// Server serves the handlers of one Registry on any number of connections,
// accepted from listeners (Serve) or handed over (ServeConn). Every
// connection is a full Conn: its handlers may call the peer back.
//
// All methods are safe for concurrent use. A Server is stopped by Shutdown
// (graceful) or Close; it cannot be restarted.
type Server struct {
	reg    *Registry
	cfg    *config
	cfgErr error

	mu        sync.Mutex
	closed    bool
	listeners map[net.Listener]struct{}
	conns     map[*Conn]struct{}
	wg        sync.WaitGroup // one per served connection, until OnDisconnect returned
}

// errShutdown is the end error of connections closed by Shutdown or Close.
var errShutdown = fmt.Errorf("%w: %w", ErrClosed, ErrServerClosed)

// NewServer returns a Server for the handlers in r (nil: no handlers). The
// options apply to every connection; WithOnConnect and WithOnDisconnect set
// the connection hooks. An invalid option is reported by Serve and ServeConn.
func NewServer(r *Registry, opts ...Option) *Server {
	cfg, err := newConfig(opts)
	return &Server{
		reg:       r,
		cfg:       cfg,
		cfgErr:    err,
		listeners: make(map[net.Listener]struct{}),
		conns:     make(map[*Conn]struct{}),
	}
}

// Serve accepts connections on lis and serves each on its own goroutine until
// Shutdown or Close (then it returns ErrServerClosed), until ctx ends (then it
// closes lis, ends the connections it accepted, waits for them and returns
// ctx's error), or until Accept fails for good (then it returns that error;
// the connections already accepted keep running until Shutdown or Close).
// Connection contexts derive from ctx. Serve closes lis before returning.
func (s *Server) Serve(ctx context.Context, lis net.Listener) error {
	if s.cfgErr != nil {
		_ = lis.Close()
		return s.cfgErr
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		_ = lis.Close()
		return ErrServerClosed
	}
	s.listeners[lis] = struct{}{}
	s.mu.Unlock()

	var mine sync.WaitGroup // this Serve's connections
	stopped, watched := make(chan struct{}), make(chan struct{})
	go func() { // close lis when ctx ends
		defer close(watched)
		select {
		case <-ctx.Done():
			_ = lis.Close()
		case <-stopped:
		}
	}()
	defer func() {
		close(stopped)
		<-watched
		_ = lis.Close()
		s.mu.Lock()
		delete(s.listeners, lis)
		s.mu.Unlock()
	}()

	var delay time.Duration
	for {
		nc, err := lis.Accept()
		if err != nil {
			switch {
			case s.isClosed():
				return ErrServerClosed
			case ctx.Err() != nil:
				mine.Wait()
				return ctx.Err()
			case retryable(err):
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				s.cfg.log.Warn("rpc2: accept failed; retrying", "err", err, "delay", delay)
				t := time.NewTimer(delay)
				select {
				case <-t.C:
				case <-ctx.Done():
					t.Stop()
				}
				continue
			}
			return err
		}
		delay = 0
		// The connection's own read loop runs its end (OnDisconnect): a
		// connection costs no goroutine of the server's.
		mine.Add(1)
		c, err := s.track(ctx, nc, func(*Conn) { mine.Done() })
		if err != nil {
			mine.Done()
			return err
		}
		s.begin(c)
	}
}

func retryable(err error) bool {
	if errors.Is(err, net.ErrClosed) {
		return false
	}
	var te interface{ Temporary() bool }
	var ne net.Error
	return (errors.As(err, &ne) && ne.Timeout()) || (errors.As(err, &te) && te.Temporary())
}

// ServeConn serves one connection and returns when it has ended (after the
// OnDisconnect hook), with the connection's end error. Its context derives
// from ctx: canceling ctx ends the connection. After Shutdown or Close it
// closes nc and returns ErrServerClosed.
func (s *Server) ServeConn(ctx context.Context, nc net.Conn) error {
	if s.cfgErr != nil {
		_ = nc.Close()
		return s.cfgErr
	}
	ended := make(chan struct{})
	c, err := s.track(ctx, nc, func(*Conn) { close(ended) })
	if err != nil {
		return err
	}
	s.begin(c)
	<-ended
	return c.Err()
}

// track creates and registers the Conn for nc, unless the server is closed.
// When the connection has ended, its read loop runs the OnDisconnect hook,
// unregisters it, then calls ended.
func (s *Server) track(ctx context.Context, nc net.Conn, ended func(*Conn)) (*Conn, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		_ = nc.Close()
		return nil, ErrServerClosed
	}
	s.wg.Add(1)
	c := newConn(ctx, nc, s.reg, s.cfg, nil, true, func(c *Conn) {
		s.end(c)
		ended(c)
	})
	s.conns[c] = struct{}{}
	return c, nil
}

// begin runs the OnConnect hook, on a goroutine of the connection's, then
// lets handlers run.
func (s *Server) begin(c *Conn) {
	fn := s.cfg.onConnect
	if fn == nil {
		c.open()
		return
	}
	if !c.spawn(func() {
		s.hook("OnConnect", c, func() { fn(c) })
		c.open()
	}) {
		c.open() // the connection has ended already
	}
}

// end runs the OnDisconnect hook of an ended connection and unregisters it.
func (s *Server) end(c *Conn) {
	defer s.wg.Done()
	if fn := s.cfg.onDisconnect; fn != nil {
		err := c.Err()
		s.hook("OnDisconnect", c, func() { fn(c, err) })
	}
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

// hook runs a user hook; a panic is logged and ends the connection.
func (s *Server) hook(name string, c *Conn, fn func()) {
	defer func() {
		if p := recover(); p != nil {
			s.cfg.log.Error("rpc2: "+name+" hook panicked", "panic", p)
			c.fail(fmt.Errorf("%w: %s hook panicked: %v", ErrClosed, name, p))
		}
	}()
	fn()
}

func (s *Server) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// stop marks the server closed, closes its listeners and returns its
// connections.
func (s *Server) stop() []*Conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	for lis := range s.listeners {
		_ = lis.Close()
	}
	conns := make([]*Conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	return conns
}

// Shutdown stops the server gracefully. It stops accepting; then each
// connection
//
//  1. lets the requests and notifications it has already read finish and
//     send their replies (new requests get a CodeUnavailable error, new
//     notifications are dropped);
//  2. calls the OnDrained hook (WithOnDrained), which may send last frames,
//     then writes everything queued for the peer (replies, and
//     notifications sent with Notify or Queue), after which sends on it fail
//     with an error matching ErrServerClosed;
//  3. half-closes the transport if it has a CloseWrite method (*net.TCPConn,
//     *net.UnixConn, *tls.Conn) and keeps reading until the peer closes in
//     turn: replies to this end's calls are still delivered, anything else
//     is dropped. The peer reads every frame, then end of stream, and no
//     side sees a reset. A transport without CloseWrite (net.Pipe) is
//     closed after step 2.
//
// If ctx ends first, the remaining connections are closed at once (as by
// Close). Shutdown returns after every connection has ended and its
// OnDisconnect hook has returned: nil, or ctx's error if it had to force.
// Connections end with an error matching both ErrClosed and ErrServerClosed
// (one whose peer went away before step 3 ends with ErrConnLost).
func (s *Server) Shutdown(ctx context.Context) error {
	// in parallel: a connection's OnDrained hook may wait for a slow peer
	var drains sync.WaitGroup
	for _, c := range s.stop() {
		drains.Add(1)
		go func() {
			defer drains.Done()
			c.drain(errShutdown)
		}()
	}
	done := make(chan struct{})
	go func() {
		drains.Wait()
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
	}
	for _, c := range s.stop() {
		c.abort(errShutdown)
	}
	<-done
	return ctx.Err()
}

// Close stops the server at once: it closes the listeners and every
// connection (pending calls fail, handler contexts are canceled) and returns
// after they have ended and their OnDisconnect hooks have returned.
func (s *Server) Close() error {
	for _, c := range s.stop() {
		c.abort(errShutdown)
	}
	s.wg.Wait()
	return nil
}
