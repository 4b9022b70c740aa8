package main

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"

	am "github.com/arpc-go/arpc/pkg/machine"
	"github.com/arpc-go/arpc/pkg/rpc"
)

// config sizes a system.
type config struct {
	workers int       // the backend's worker pool
	queue   int       // jobs the backend queues before it answers "busy"
	out     io.Writer // where each part logs what it does; nil: quiet
	events  bool      // report the backend's events on system.events
}

// system is the whole program in one process: the backend machine and its
// workers, the aRPC server serving it on loopback, and the aRPC client whose
// mirror the gateway sends its requests to. Close stops every part and
// returns once all their goroutines have exited.
type system struct {
	mach   *am.Machine
	back   *backend
	srv    *rpc.Server
	client *rpc.Client
	events <-chan event // the backend's events, with config.events

	mu  sync.Mutex // serialises out
	out io.Writer
}

// newSystem starts the backend, serves it on an ephemeral loopback port and
// connects a client to it; ctx bounds the start only.
func newSystem(ctx context.Context, cfg config) (s *system, err error) {
	s = &system{out: cfg.out}
	mach := am.New(context.Background(), states, &am.Opts{ID: "backend"})
	if err := mach.VerifyStates(names); err != nil {
		mach.Dispose()
		return nil, err
	}
	s.mach = mach
	s.back = &backend{
		mach: mach,
		jobs: make(chan job, cfg.queue),
		quit: make(chan struct{}),
		logf: s.logf,
	}
	if cfg.events {
		ch := make(chan event, 64)
		s.back.events, s.events = ch, ch
	}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	if err := mach.BindHandlers(s.back); err != nil {
		return nil, err
	}
	if s.srv, err = rpc.Listen(context.Background(), "127.0.0.1:0", mach,
		rpc.WithLateAnswer(s.back.lateAnswer)); err != nil {
		return nil, err
	}
	s.back.start(s.srv, cfg.workers)
	s.logf("server: backend served on %s, worker pool of %d", s.srv.Addr, cfg.workers)
	if s.client, err = rpc.Dial(ctx, s.srv.Addr, states, names); err != nil {
		return nil, err
	}
	s.logf("gateway: connected, mirror is %s", s.client.Worker.StringAll())
	return s, nil
}

// Close closes the client, shuts the server down, stops the workers and
// disposes the machine, and returns once every goroutine of the system has
// exited. Requests still waiting fail. Safe to call once.
func (s *system) Close() {
	if s.client != nil {
		_ = s.client.Close()
	}
	if s.srv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_ = s.srv.Shutdown(ctx)
		cancel()
		_ = s.srv.Close()
	}
	// The workers answer on the machine: stop them before disposing it.
	s.back.stop()
	s.mach.Dispose()
	<-s.mach.WhenDisposed()
}

// logf prints a line of the demo; a quiet system prints nothing.
func (s *system) logf(format string, args ...any) {
	if s.out == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	fmt.Fprintf(s.out, format+"\n", args...)
}
