package rpc

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	am "github.com/arpc-go/arpc/pkg/machine"
	"github.com/arpc-go/arpc/pkg/rpc2"
	ss "github.com/arpc-go/arpc/states/server"
)

// GetterFunc answers Client.Get: it returns the value named name. The value's
// concrete type must be registered with gob on both ends.
type GetterFunc func(name string) any

// Server exposes a local state machine (the source) to any number of clients.
// Each client gets its own session: its own clock baseline, update stream,
// remembered mutation results and remote watches. A session outlives a
// dropped connection for the resume window (WithSessionTTL), so a client
// that reconnects to the same server process resumes where it was. Methods
// are safe for concurrent use.
type Server struct {
	// Mach is the server's control machine, with the states of states/server.
	Mach *am.Machine
	// Addr is the address the server listens on. Once RpcReady is active it is
	// the bound host:port, also when the address asked for port 0.
	Addr string

	id     string
	source *am.Machine
	getter GetterFunc
	opts   serverOpts
	names  am.S
	index  map[string]int
	hash   uint64
	tracer *sourceTracer
	fan    *fanout
	reg    *rpc2.Registry
	// epoch identifies this server process to clients: a session can only
	// resume with the epoch that made it.
	epoch uint64

	ctx    context.Context
	cancel context.CancelFunc
	// wg owns the goroutines of serving (accept loop, fan-out, watches);
	// bg owns a shutdown started by removing Start.
	wg       sync.WaitGroup
	bg       sync.WaitGroup
	calls    atomic.Uint64
	stopping atomic.Bool
	stats    serverStats

	mu       sync.Mutex
	rpc      *rpc2.Server
	lis      net.Listener
	sessions map[string]*session
	// perIdentity counts the sessions of each identity (WithMaxSessionsPerIdentity)
	perIdentity map[string]int
	stopped     bool
	startErr    error
	// active counts mutations running on the source; idle is closed when it
	// drops to zero during a shutdown.
	active int
	idle   chan struct{}

	// hmu orders the changes of Handshaking and HandshakeDone with their
	// counts, so that the states end as the counts say.
	hmu        sync.Mutex
	handshakes int // in progress
	// attached counts the sessions with a connection (under their se.mu)
	attached atomic.Int64
	// req watches the source for the answers to requests
	req serverRequests
}

// NewServer creates a server for the source machine worker, whose state names
// must have been verified (VerifyStates), listening on addr once started. The
// server's control machine gets the ID "s-"+id. getter may be nil. Listen
// does the same and starts the server in one call.
func NewServer(
	ctx context.Context, addr string, id string, worker *am.Machine,
	getter GetterFunc, opts ...ServerOption,
) (*Server, error) {
	if worker == nil {
		return nil, fmt.Errorf("%w: nil worker machine", ErrInvalidParams)
	}
	if !worker.StatesVerified {
		return nil, fmt.Errorf("%w: the worker's states are not verified (call VerifyStates)", ErrInvalidParams)
	}
	if ctx == nil {
		ctx = context.Background()
	}
	o := defaultServerOpts()
	for _, opt := range opts {
		opt(&o)
	}
	if getter == nil {
		getter = o.getter
	}
	if err := o.validate(); err != nil {
		return nil, err
	}

	mach, err := am.NewCommon(ctx, "s-"+id, ss.States, ss.Names, nil, nil, nil)
	if err != nil {
		return nil, err
	}
	var eb [8]byte
	_, _ = rand.Read(eb[:])
	s := &Server{
		Mach:        mach,
		Addr:        addr,
		id:          id,
		source:      worker,
		getter:      getter,
		opts:        o,
		names:       worker.StateNames(),
		sessions:    map[string]*session{},
		perIdentity: map[string]int{},
		epoch:       binary.LittleEndian.Uint64(eb[:]) | 1,
	}
	s.ctx, s.cancel = context.WithCancel(ctx)
	s.index = make(map[string]int, len(s.names))
	for i, n := range s.names {
		s.index[n] = i
	}
	s.hash = SchemaHash(worker.GetStruct(), s.names)
	s.tracer = newSourceTracer(s)
	s.fan = newFanout(s)
	if err := s.tracer.attach(); err != nil {
		mach.Dispose()
		return nil, err
	}
	if s.reg, err = s.registry(); err == nil {
		err = mach.BindHandlers(&serverHandlers{s: s})
	}
	if err != nil {
		s.tracer.detach()
		mach.Dispose()
		return nil, err
	}
	return s, nil
}

// Listen creates a server for the source machine (its states verified) and
// starts it on addr ("host:0" picks a free port; Addr then tells which). It
// returns the listen error (for example, the address is in use) instead of a
// server. ctx bounds the server's life, like Shutdown. The server's ID is
// the source's ID.
func Listen(ctx context.Context, addr string, source *am.Machine, opts ...ServerOption) (*Server, error) {
	if source == nil {
		return nil, fmt.Errorf("%w: nil source machine", ErrInvalidParams)
	}
	s, err := NewServer(ctx, addr, source.ID, source, nil, opts...)
	if err != nil {
		return nil, err
	}
	if err := s.start(); err != nil {
		_ = s.Close()
		return nil, err
	}
	s.Mach.Add1(ss.Start, nil)
	return s, nil
}

// Start starts listening and serving; the server reaches RpcReady, then
// Ready. A listen failure returns Canceled and adds ErrNetwork to Mach (Listen
// returns it as an error).
func (s *Server) Start() am.Result {
	if err := s.start(); err != nil {
		return am.Canceled
	}
	return s.Mach.Add1(ss.Start, nil)
}

// Stop shuts the server down like Shutdown with DefaultShutdownGrace, and
// returns once every goroutine of the server is gone. With dispose it also
// disposes Mach. The source machine is left as it is (its tracer is
// detached on dispose).
func (s *Server) Stop(dispose bool) am.Result {
	ctx, cancel := context.WithTimeout(context.Background(), DefaultShutdownGrace)
	defer cancel()
	_ = s.Shutdown(ctx)
	if dispose {
		s.dispose()
	}
	return am.Executed
}

// Close closes the listener and every connection at once, without waiting
// for mutations in flight (their callers get a network error), then returns
// once every goroutine of the server is gone. It disposes Mach and detaches
// from the source machine. Safe to call more than once.
func (s *Server) Close() error {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_ = s.Shutdown(ctx)
	s.dispose()
	return nil
}

func (s *Server) dispose() {
	s.mu.Lock()
	done := s.stopped
	s.stopped = true
	s.mu.Unlock()
	if done {
		return
	}
	s.cancel()
	s.bg.Wait()
	s.wg.Wait()
	s.tracer.detach()
	s.Mach.Dispose()
	<-s.Mach.WhenDisposed()
}

// CallCount returns how many calls and notifications the server has sent.
func (s *Server) CallCount() uint64 { return s.calls.Load() }

// ClientCount returns the number of clients connected now.
func (s *Server) ClientCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, se := range s.sessions {
		se.mu.Lock()
		if se.conn != nil {
			n++
		}
		se.mu.Unlock()
	}
	return n
}

// ServeConn serves one already established connection (for example one end
// of net.Pipe) until it ends. The server must be started.
func (s *Server) ServeConn(ctx context.Context, conn net.Conn) error {
	s.mu.Lock()
	srv := s.rpc
	s.mu.Unlock()
	if srv == nil || s.stopping.Load() {
		_ = conn.Close()
		return ErrStopped
	}
	conn, ok := s.admitConn(conn)
	if !ok {
		return fmt.Errorf("%w: too many connections", ErrStopped)
	}
	return srv.ServeConn(ctx, conn)
}

// serverHandlers are the control machine's handlers.
type serverHandlers struct {
	s *Server
}

// StartState makes sure the server listens (Start is also added directly by
// code ported from asyncmachine-go).
func (h *serverHandlers) StartState(e *am.Event) {
	if h.s.start() == nil {
		// queued: it runs right after this transition
		e.Machine.Add1(ss.RpcReady, nil)
	}
}

// StartEnd shuts the server down when Start goes away, also when a user
// removes it directly.
func (h *serverHandlers) StartEnd(e *am.Event) {
	s := h.s
	if s.stopping.Load() {
		return
	}
	// Handlers must be quick: the shutdown happens off the queue.
	s.bg.Add(1)
	go func() {
		defer s.bg.Done()
		ctx, cancel := context.WithTimeout(s.ctx, DefaultShutdownGrace)
		defer cancel()
		_ = s.Shutdown(ctx)
	}()
}

// start listens and serves, once.
func (s *Server) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.rpc != nil {
		return nil
	}
	if s.stopped || s.stopping.Load() {
		return ErrStopped
	}
	if s.startErr != nil {
		return s.startErr
	}
	lis := s.opts.listener
	s.opts.listener = nil
	if lis == nil {
		var err error
		lis, err = (&net.ListenConfig{}).Listen(s.ctx, "tcp", s.Addr)
		if err != nil {
			s.startErr = fmt.Errorf("%w: listen %s: %w", ErrNetwork, s.Addr, err)
			s.Mach.AddErrState(ss.ErrNetwork, s.startErr, nil)
			s.Mach.Remove1(ss.RpcStarting, nil)
			return s.startErr
		}
	}
	s.Addr = lis.Addr().String()
	s.lis = lis
	srv := rpc2.NewServer(s.reg, append(s.opts.sec.rpc2(s.gate),
		rpc2.WithMaxMessageSize(s.opts.maxMessageSize),
		rpc2.WithLogger(s.opts.logger),
		rpc2.WithOnDisconnect(s.connEnded),
		rpc2.WithOnDrained(s.goodbye),
		rpc2.WithKeepalive(s.opts.keepalive),
	)...)
	lis = guardedListener{lis, s}
	s.rpc = srv
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		err := srv.Serve(s.ctx, lis)
		if err != nil && !errors.Is(err, rpc2.ErrServerClosed) && s.ctx.Err() == nil && !s.stopping.Load() {
			s.Mach.AddErrState(ss.ErrNetwork, fmt.Errorf("%w: serve: %w", ErrNetwork, err), nil)
		}
	}()
	return nil
}

// Shutdown stops the server gracefully: it stops accepting connections and
// mutations at once (a mutation that arrives now fails with an error
// wrapping ErrStopped and did not run), lets the mutations in flight finish
// and their replies and updates reach their clients, says goodbye to every
// client (they see a clean stop, not a network error), and closes the
// connections. When ctx ends first, what is left is closed at once and
// Shutdown returns ctx.Err(). It returns once every goroutine the server
// started for connections is gone. The control machine and the source stay
// usable; Close or Stop(true) dispose them. Safe to call more than once.
func (s *Server) Shutdown(ctx context.Context) error {
	first := s.stopping.CompareAndSwap(false, true)
	s.mu.Lock()
	srv, lis := s.rpc, s.lis
	s.lis = nil
	if s.active > 0 && s.idle == nil {
		s.idle = make(chan struct{})
	}
	idle := s.idle
	s.mu.Unlock()
	if first {
		s.Mach.Remove1(ss.Start, nil)
	}
	if lis != nil {
		_ = lis.Close()
	}
	var err error
	if idle != nil {
		select {
		case <-idle:
		case <-ctx.Done():
			err = ctx.Err()
		}
	}
	// the rpc2 server's drain says goodbye on each connection (goodbye)
	if srv != nil {
		if e := srv.Shutdown(ctx); e != nil && err == nil && ctx.Err() != nil {
			err = ctx.Err()
		}
		_ = srv.Close()
	}
	s.mu.Lock()
	sessions := s.sessions
	s.sessions = map[string]*session{}
	s.perIdentity = map[string]int{}
	s.mu.Unlock()
	for _, se := range sessions {
		se.close()
	}
	s.fan.stop()
	s.wg.Wait()
	return err
}

// goodbye sends a drained connection's client its last update and a Bye
// (the rpc2 server's OnDrained hook: Shutdown drains the connections in
// parallel, so a client that stopped reading can't delay the others). It
// comes after the replies of every request of that connection, so a call
// that has no reply by the Bye did not run.
func (s *Server) goodbye(conn *rpc2.Conn) {
	se, _ := conn.Value(sessionKey).(*session)
	if se == nil {
		return
	}
	ctx, cancel := context.WithTimeout(conn.Context(), s.opts.goodbyeTimeout)
	defer cancel()
	se.wmu.Lock()
	defer se.wmu.Unlock()
	se.mu.Lock()
	var u msgUpdate
	current := se.conn == conn && !se.closed
	if current {
		se.nextLocked(&u)
	}
	se.mu.Unlock()
	if !current {
		return
	}
	if u.version != 0 {
		_ = conn.Queue(ctx, mUpdate, &u)
	}
	s.calls.Add(1)
	_ = conn.Notify(ctx, mBye, &Empty{})
}

func (s *Server) sessionList() []*session {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := make([]*session, 0, len(s.sessions))
	for _, se := range s.sessions {
		l = append(l, se)
	}
	return l
}

// beginMutation counts a mutation about to run on the source, or refuses it
// when the server is shutting down.
func (s *Server) beginMutation() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopping.Load() {
		return codeErr(CodeStopped, "server %s is shutting down: mutation not run", s.id)
	}
	s.active++
	return nil
}

func (s *Server) endMutation() {
	s.mu.Lock()
	s.active--
	if s.active == 0 && s.idle != nil {
		close(s.idle)
		s.idle = nil
	}
	s.mu.Unlock()
}

// stateNames converts wire indexes to the source's state names.
func (s *Server) stateNames(idxs []int) (am.S, error) {
	names := make(am.S, len(idxs))
	for i, idx := range idxs {
		if idx < 0 || idx >= len(s.names) {
			return nil, fmt.Errorf("state index %d out of range [0, %d)", idx, len(s.names))
		}
		names[i] = s.names[idx]
	}
	return names, nil
}

// wireErr converts the source's error for the wire, its text cut to the
// configured length so that one huge error can't make every update too
// large to send.
func (s *Server) wireErr(err error) *wireErr {
	msg := err.Error()
	if max := s.opts.maxErrText; len(msg) > max {
		msg = msg[:max] + "…"
	}
	return &wireErr{Msg: msg}
}

// SendPayload sends a payload to the clients whose identity is
// p.Destination (see Authenticator; without one, the client ID), or to
// every connected client when it is empty, to all of them in parallel, each
// bounded by ctx and the call timeout (a client that doesn't read can't
// delay the others). It returns once every addressed client has received it,
// or with the joined errors of those that did not.
func (s *Server) SendPayload(ctx context.Context, p *ArgsPayload) error {
	if p == nil {
		return fmt.Errorf("%w: nil payload", ErrInvalidParams)
	}
	var (
		mu   sync.Mutex
		errs []error
		wg   sync.WaitGroup
		sent int
	)
	for _, se := range s.sessionList() {
		se.mu.Lock()
		conn := se.conn
		se.mu.Unlock()
		if conn == nil || (p.Destination != "" && se.identity != p.Destination) {
			continue
		}
		sent++
		wg.Add(1)
		go func() {
			defer wg.Done()
			cctx, cancel := context.WithTimeout(ctx, s.opts.goodbyeTimeout)
			defer cancel()
			s.calls.Add(1)
			if err := conn.Call(cctx, mPayload, p, &Empty{}); err != nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("client %s: %w", se.clientID, err))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if sent == 0 && p.Destination != "" {
		return fmt.Errorf("%w: %q", ErrUnknownClient, p.Destination)
	}
	return errors.Join(errs...)
}

// DefaultShutdownGrace is how long Stop, and a removal of the Start state,
// let mutations in flight finish before connections are closed.
const DefaultShutdownGrace = 5 * time.Second
