package benchgrpc

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/arpc-go/arpc/benchmark_grpc/pb"
)

// notificationBuffer is how many notifications a Subscribe stream may hold before the worker's
// listener (and so CallOp) waits for the client to catch up. The cycle never has more than one.
const notificationBuffer = 16

// GRPCServer serves the workload over gRPC on an ephemeral loopback port, both as the Worker service
// (server-streaming Subscribe, unary GetValue and CallOp: gRPC as users write it) and as the
// WorkerStream service (one bidirectional stream: gRPC at its best). Each Subscribe or Session stream
// gets its own Worker, so one server holds any number of independent clients.
//
// All methods are safe for concurrent use. Close stops the server and returns once its Serve
// goroutine and every handler have returned.
type GRPCServer struct {
	srv   *grpc.Server
	ln    net.Listener
	calls CallCounter

	seeds    atomic.Uint64
	sessions atomic.Uint64

	mu      sync.RWMutex
	active  map[uint64]*Worker // Subscribe sessions by id
	workers []*Worker          // every Worker ever created, for the totals

	wg        sync.WaitGroup
	closeOnce sync.Once
}

// TunedServerOptions returns the server options of gRPC at its best: a static StaticWindow window.
func TunedServerOptions() []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.InitialWindowSize(StaticWindow),
		grpc.InitialConnWindowSize(StaticWindow),
	}
}

// NewGRPCServer listens on 127.0.0.1:0 and starts serving both services, with opts added to the
// server's own (a stream interceptor counting messages, and waiting for handlers on Close).
func NewGRPCServer(opts ...grpc.ServerOption) (*GRPCServer, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &GRPCServer{ln: ln, active: make(map[uint64]*Worker)}
	s.srv = grpc.NewServer(append([]grpc.ServerOption{
		grpc.StreamInterceptor(s.calls.StreamServerInterceptor()),
		grpc.WaitForHandlers(true),
	}, opts...)...)
	pb.RegisterWorkerServer(s.srv, &unaryService{s: s})
	pb.RegisterWorkerStreamServer(s.srv, &streamService{s: s})
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		_ = s.srv.Serve(ln) // returns when Close stops the server
	}()
	return s, nil
}

// Addr returns the address the server listens on, "127.0.0.1:port".
func (s *GRPCServer) Addr() string { return s.ln.Addr().String() }

// Calls returns the messages the server originated: each message it sent on a stream.
func (s *GRPCServer) Calls() uint64 { return s.calls.Load() }

// Completions returns the matching operations counted by all of the server's workers.
func (s *GRPCServer) Completions() uint64 {
	var n uint64
	for _, w := range s.allWorkers() {
		n += w.Completions()
	}
	return n
}

// Mismatches returns the mismatched operations counted by all of the server's workers.
func (s *GRPCServer) Mismatches() uint64 {
	var n uint64
	for _, w := range s.allWorkers() {
		n += w.Errors()
	}
	return n
}

// Close stops the server: it closes the listener and all connections, cancels every stream, and
// waits for all handlers and the Serve goroutine. It is idempotent and always returns nil.
func (s *GRPCServer) Close() error {
	s.closeOnce.Do(s.srv.Stop)
	s.wg.Wait()
	return nil
}

// newWorker creates and records a Worker with the next seed (1, 2, 3, ... in creation order).
func (s *GRPCServer) newWorker() *Worker {
	w := NewWorker(s.seeds.Add(1))
	s.mu.Lock()
	s.workers = append(s.workers, w)
	s.mu.Unlock()
	return w
}

func (s *GRPCServer) allWorkers() []*Worker {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.workers[:len(s.workers):len(s.workers)]
}

func (s *GRPCServer) session(id uint64) (*Worker, error) {
	s.mu.RLock()
	w := s.active[id]
	s.mu.RUnlock()
	if w == nil {
		return nil, status.Errorf(codes.NotFound, "no session %d", id)
	}
	return w, nil
}

// unaryService is the Worker service: the workload as gRPC users usually write it.
type unaryService struct {
	pb.UnimplementedWorkerServer
	s *GRPCServer
}

// Subscribe creates a session with its own Worker and streams one Notification per new value.
func (u *unaryService) Subscribe(_ *pb.SubscribeRequest, stream grpc.ServerStreamingServer[pb.Notification]) error {
	ctx := stream.Context()
	w := u.s.newWorker()
	id := u.s.sessions.Add(1)
	notes := make(chan struct{}, notificationBuffer)
	w.SetListener(func(int) {
		select {
		case notes <- struct{}{}:
		case <-ctx.Done():
		}
	})
	u.s.mu.Lock()
	u.s.active[id] = w
	u.s.mu.Unlock()
	defer func() {
		u.s.mu.Lock()
		delete(u.s.active, id)
		u.s.mu.Unlock()
		w.SetListener(nil)
	}()

	w.Start()
	for {
		select {
		case <-ctx.Done():
			return status.FromContextError(ctx.Err()).Err()
		case <-notes:
			if err := stream.Send(&pb.Notification{Session: id}); err != nil {
				return err
			}
		}
	}
}

// GetValue returns the session's current value.
func (u *unaryService) GetValue(_ context.Context, req *pb.GetValueRequest) (*pb.GetValueReply, error) {
	w, err := u.s.session(req.GetSession())
	if err != nil {
		return nil, err
	}
	return &pb.GetValueReply{Value: int32(w.Value())}, nil
}

// CallOp calls the operation on the session's Worker.
func (u *unaryService) CallOp(_ context.Context, req *pb.CallOpRequest) (*pb.CallOpReply, error) {
	w, err := u.s.session(req.GetSession())
	if err != nil {
		return nil, err
	}
	return &pb.CallOpReply{Ok: w.CallOp(int(req.GetOp()))}, nil
}

// streamService is the WorkerStream service: the workload over one bidirectional stream.
type streamService struct {
	pb.UnimplementedWorkerStreamServer
	s *GRPCServer
}

// errMismatchStatus ends a Session whose client sent an op that did not match the value.
var errMismatchStatus = status.Error(codes.FailedPrecondition, "op/value mismatch")

// Session creates a Worker for the stream, sends its first value and then answers every Op with the
// next value. Messages are reused, as a tuned gRPC service would: the listener runs on this handler's
// goroutine (Start and CallOp are called here), so nothing else touches them.
func (t *streamService) Session(stream grpc.BidiStreamingServer[pb.Op, pb.Value]) error {
	w := t.s.newWorker()
	var (
		out     pb.Value
		in      pb.Op
		sendErr error
	)
	w.SetListener(func(v int) {
		out.Value = int32(v)
		sendErr = stream.Send(&out)
	})
	defer w.SetListener(nil)

	w.Start()
	for sendErr == nil {
		if err := stream.RecvMsg(&in); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		if !w.CallOp(int(in.GetOp())) {
			return errMismatchStatus
		}
	}
	return sendErr
}
