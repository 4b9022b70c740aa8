package rpc

import (
	"context"
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
// Each client gets its own session: its own clock baseline, versions and
// remote watches. Methods are safe for concurrent use.
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
	reg    *rpc2.Registry

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	calls  atomic.Uint64

	mu       sync.Mutex
	rpc      *rpc2.Server
	sessions map[*session]struct{}
	stopped  bool
}

// NewServer creates a server for the source machine worker, whose state names
// must have been verified (VerifyStates), listening on addr once started. The
// server's control machine gets the ID "s-"+id. getter may be nil.
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
	o := serverOpts{
		pushInterval:   DefaultPushInterval,
		maxMessageSize: DefaultMaxMessageSize,
		maxWatches:     DefaultMaxWatches,
	}
	for _, opt := range opts {
		opt(&o)
	}
	if o.logger == nil {
		o.logger = discardLogger()
	}
	if o.maxMessageSize <= 0 || o.maxWatches <= 0 {
		return nil, fmt.Errorf("%w: limits must be positive", ErrInvalidParams)
	}

	mach, err := am.NewCommon(ctx, "s-"+id, ss.States, ss.Names, nil, nil, nil)
	if err != nil {
		return nil, err
	}
	s := &Server{
		Mach:     mach,
		Addr:     addr,
		id:       id,
		source:   worker,
		getter:   getter,
		opts:     o,
		names:    worker.StateNames(),
		sessions: map[*session]struct{}{},
	}
	s.ctx, s.cancel = context.WithCancel(ctx)
	s.index = make(map[string]int, len(s.names))
	for i, n := range s.names {
		s.index[n] = i
	}
	s.hash = SchemaHash(worker.GetStruct(), s.names)
	s.tracer = newSourceTracer(s)
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

// Start starts listening and serving; the server reaches RpcReady, then
// Ready. A listen failure adds ErrNetwork to Mach.
func (s *Server) Start() am.Result {
	return s.Mach.Add1(ss.Start, nil)
}

// Stop stops accepting, closes every session, and returns once every
// goroutine of the server is gone. With dispose it also disposes Mach. The
// source machine is left as it is (its tracer is detached).
func (s *Server) Stop(dispose bool) am.Result {
	res := s.Mach.Remove1(ss.Start, nil)
	s.shutdown()
	s.wg.Wait()
	if dispose {
		s.mu.Lock()
		s.stopped = true
		s.mu.Unlock()
		s.cancel()
		s.tracer.detach()
		s.Mach.Dispose()
		<-s.Mach.WhenDisposed()
	}
	return res
}

// CallCount returns how many calls and notifications the server has sent.
func (s *Server) CallCount() uint64 { return s.calls.Load() }

// ClientCount returns the number of handshaken client sessions.
func (s *Server) ClientCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for se := range s.sessions {
		if se.ready.Load() {
			n++
		}
	}
	return n
}

// ServeConn serves one already established connection (for example one end
// of net.Pipe) until it ends. The server must be started.
func (s *Server) ServeConn(ctx context.Context, conn net.Conn) error {
	s.mu.Lock()
	srv := s.rpc
	s.mu.Unlock()
	if srv == nil {
		_ = conn.Close()
		return ErrStopped
	}
	return srv.ServeConn(ctx, conn)
}

// serverHandlers are the control machine's handlers.
type serverHandlers struct {
	s *Server
}

// StartState begins listening.
func (h *serverHandlers) StartState(e *am.Event) {
	h.s.start()
}

// StartEnd stops the server when Start goes away, also when a user removes
// it directly.
func (h *serverHandlers) StartEnd(e *am.Event) {
	// Handlers must be quick: closing connections happens off the queue.
	h.s.wg.Add(1)
	go func() {
		defer h.s.wg.Done()
		h.s.shutdown()
	}()
}

func (s *Server) start() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.rpc != nil || s.stopped {
		return
	}
	lis := s.opts.listener
	s.opts.listener = nil
	if lis == nil {
		var err error
		lis, err = (&net.ListenConfig{}).Listen(s.ctx, "tcp", s.Addr)
		if err != nil {
			s.Mach.AddErrState(ss.ErrNetwork, fmt.Errorf("%w: listen %s: %w", ErrNetwork, s.Addr, err), nil)
			s.Mach.Remove1(ss.RpcStarting, nil)
			return
		}
	}
	s.Addr = lis.Addr().String()
	srv := rpc2.NewServer(s.reg,
		rpc2.WithMaxMessageSize(s.opts.maxMessageSize),
		rpc2.WithLogger(s.opts.logger),
		rpc2.WithOnDisconnect(s.onDisconnect),
	)
	s.rpc = srv
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		err := srv.Serve(s.ctx, lis)
		if err != nil && !errors.Is(err, rpc2.ErrServerClosed) && s.ctx.Err() == nil {
			s.Mach.AddErrState(ss.ErrNetwork, fmt.Errorf("%w: serve: %w", ErrNetwork, err), nil)
		}
	}()
	s.Mach.Add1(ss.RpcReady, nil)
}

// shutdown closes the listener and every connection. Safe to call many times.
func (s *Server) shutdown() {
	s.mu.Lock()
	srv := s.rpc
	s.rpc = nil
	s.mu.Unlock()
	if srv == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	// Bye to every client first, so they see an orderly end.
	for _, se := range s.sessionList() {
		_ = se.conn.Notify(ctx, mBye, &Empty{})
	}
	_ = srv.Shutdown(ctx)
	_ = srv.Close()
}

func (s *Server) sessionList() []*session {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := make([]*session, 0, len(s.sessions))
	for se := range s.sessions {
		l = append(l, se)
	}
	return l
}

// stateNames converts wire indexes to the source's state names.
func (s *Server) stateNames(idxs []int) (am.S, error) {
	names := make(am.S, len(idxs))
	for i, idx := range idxs {
		if idx < 0 || idx >= len(s.names) {
			return nil, fmt.Errorf("%w: state index %d out of range [0, %d)", ErrInvalidParams, idx, len(s.names))
		}
		names[i] = s.names[idx]
	}
	return names, nil
}

// SendPayload sends a payload to the client whose ID is p.Destination, or to
// every handshaken client when it is empty. It returns once every addressed
// client has received it, or with the joined errors of those that did not.
func (s *Server) SendPayload(ctx context.Context, p *ArgsPayload) error {
	if p == nil {
		return fmt.Errorf("%w: nil payload", ErrInvalidParams)
	}
	var errs []error
	sent := 0
	for _, se := range s.sessionList() {
		if !se.ready.Load() || (p.Destination != "" && se.clientID != p.Destination) {
			continue
		}
		sent++
		s.calls.Add(1)
		if err := se.conn.Call(ctx, mPayload, p, &Empty{}); err != nil {
			errs = append(errs, fmt.Errorf("client %s: %w", se.clientID, err))
		}
	}
	if sent == 0 && p.Destination != "" {
		return fmt.Errorf("%w: %q", ErrUnknownClient, p.Destination)
	}
	return errors.Join(errs...)
}
