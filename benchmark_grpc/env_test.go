package benchgrpc

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
)

// setupTimeout bounds the set-up of one environment (all its servers, proxies and clients).
const setupTimeout = 30 * time.Second

// env is one transport set up for a benchmark or test: its clients (one per concurrent client) and
// the counters the benchmarks report.
type env struct {
	clients []Client
	// wire returns the bytes relayed by the metering proxy so far; nil when not metered.
	wire func() uint64
	// calls returns the calls and messages originated by both ends so far; nil for local.
	calls func() uint64
	// completions and mismatches sum the workers' counters.
	completions func() uint64
	mismatches  func() uint64
	// closers run in reverse order on close.
	closers []func() error
}

func (e *env) onClose(fn func() error) { e.closers = append(e.closers, fn) }

// close tears everything down, last set up first, and returns the teardown errors joined.
func (e *env) close() error {
	var errs []error
	for i := len(e.closers) - 1; i >= 0; i-- {
		errs = append(errs, e.closers[i]())
	}
	e.closers = nil
	return errors.Join(errs...)
}

// transport names a way to reach the workload and how to set it up with n clients. With metered set,
// the clients reach the server through a metering Proxy.
type transport struct {
	name  string
	setup func(ctx context.Context, n int, metered bool) (*env, error)
}

// transports lists the transports in report order; arpc_test.go inserts aRPC after local.
var transports = []transport{
	{"local", setupLocal},
	{"grpc-unary", setupGRPC(false)},
	{"grpc-bidi", setupGRPC(true)},
}

// newEnv sets tr up with n clients. It registers nothing with tb: the caller closes the env (see
// closeEnv), so a benchmark can stop its timer first.
func newEnv(tb testing.TB, tr transport, n int, metered bool) *env {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	e, err := tr.setup(ctx, n, metered)
	if err != nil {
		tb.Fatalf("%s: set-up with %d clients: %v", tr.name, n, err)
	}
	return e
}

func setupLocal(_ context.Context, n int, _ bool) (*env, error) {
	workers := make([]*Worker, n)
	e := &env{}
	for i := range workers {
		workers[i] = NewWorker(uint64(i + 1))
		c := NewLocalClient(workers[i])
		e.clients = append(e.clients, c)
		e.onClose(c.Close)
	}
	e.completions = func() (s uint64) {
		for _, w := range workers {
			s += w.Completions()
		}
		return s
	}
	e.mismatches = func() (s uint64) {
		for _, w := range workers {
			s += w.Errors()
		}
		return s
	}
	return e, nil
}

// setupGRPC returns the set-up of gRPC with one server for all clients; each client has its own
// connection (as separate processes would) and stream(s), and its own Worker on the server. The unary
// variant uses gRPC's defaults (as users write it); the bidi one, gRPC at its best, also the tuned
// options (static flow-control windows).
func setupGRPC(bidi bool) func(ctx context.Context, n int, metered bool) (*env, error) {
	return func(ctx context.Context, n int, metered bool) (_ *env, err error) {
		e := &env{}
		defer func() {
			if err != nil {
				_ = e.close()
			}
		}()
		var (
			sopts []grpc.ServerOption
			dopts []grpc.DialOption
		)
		if bidi {
			sopts, dopts = TunedServerOptions(), TunedDialOptions()
		}
		srv, err := NewGRPCServer(sopts...)
		if err != nil {
			return nil, err
		}
		e.onClose(srv.Close)
		addr := srv.Addr()
		if metered {
			p, err := NewProxy(addr)
			if err != nil {
				return nil, err
			}
			e.onClose(p.Close)
			addr = p.Addr()
			e.wire = p.Bytes
		}
		var calls CallCounter
		e.calls = func() uint64 { return calls.Load() + srv.Calls() }
		e.completions = srv.Completions
		e.mismatches = srv.Mismatches

		clients := make([]Client, n)
		err = parallel(n, func(i int) error {
			cc, err := DialGRPC(addr, &calls, dopts...)
			if err != nil {
				return err
			}
			var c Client
			if bidi {
				c, err = NewBidiClient(ctx, cc)
			} else {
				c, err = NewUnaryClient(ctx, cc)
			}
			if err != nil {
				_ = cc.Close()
				return err
			}
			clients[i] = closerClient{Client: c, close: cc.Close}
			return nil
		})
		for _, c := range clients {
			if c != nil {
				e.clients = append(e.clients, c)
				e.onClose(c.Close)
			}
		}
		if err != nil {
			return nil, err
		}
		return e, nil
	}
}

// closerClient is a Client that also closes a resource it owns (its connection) on Close.
type closerClient struct {
	Client
	close func() error
}

func (c closerClient) Close() error {
	err := c.Client.Close()
	if cerr := c.close(); err == nil {
		err = cerr
	}
	return err
}

// parallel runs fn(0..n-1) on at most 8 goroutines and returns the first error. Set-up of 100 clients
// stays quick this way.
func parallel(n int, fn func(i int) error) error {
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
		sem   = make(chan struct{}, 8)
	)
	for i := range n {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := fn(i); err != nil {
				mu.Lock()
				if first == nil {
					first = fmt.Errorf("client %d: %w", i, err)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return first
}

// closeEnv tears e down and fails tb on a teardown error.
func closeEnv(tb testing.TB, e *env) {
	tb.Helper()
	if err := e.close(); err != nil {
		tb.Errorf("teardown: %v", err)
	}
}
