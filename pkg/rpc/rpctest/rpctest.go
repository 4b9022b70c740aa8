package rpctest

import (
	"context"
	"testing"
	"time"

	am "github.com/arpc-go/arpc/pkg/machine"
	"github.com/arpc-go/arpc/pkg/rpc"
	ssC "github.com/arpc-go/arpc/states/client"
	ssS "github.com/arpc-go/arpc/states/server"
)

// Timeout bounds every wait of this package: start, ready and stop.
const Timeout = 10 * time.Second

// NewServer starts a server for source on 127.0.0.1:0 and waits for RpcReady.
// Cleanup stops and disposes it.
func NewServer(t testing.TB, source *am.Machine, opts ...rpc.ServerOption) *rpc.Server {
	t.Helper()
	s, err := rpc.NewServer(context.Background(), "127.0.0.1:0", source.ID, source, nil, opts...)
	if err != nil {
		t.Fatalf("rpctest: NewServer: %v", err)
	}
	s.Start()
	waitState(t, s.Mach, ssS.RpcReady)
	t.Cleanup(func() { stopWithin(t, "server", func() { s.Stop(true) }) })
	return s
}

// NewClient starts a client of srv for the source's schema and waits for
// Ready. Cleanup stops and disposes it (before the server, as cleanups run in
// reverse order).
func NewClient(t testing.TB, srv *rpc.Server, id string, s am.Struct, names am.S,
	opts ...rpc.ClientOption,
) *rpc.Client {
	t.Helper()
	c, err := rpc.NewClient(context.Background(), srv.Addr, id, s, names, opts...)
	if err != nil {
		t.Fatalf("rpctest: NewClient: %v", err)
	}
	c.Start()
	t.Cleanup(func() {
		stopWithin(t, "client", func() {
			ctx, cancel := context.WithTimeout(context.Background(), Timeout)
			defer cancel()
			c.Stop(ctx, true)
		})
	})
	waitState(t, c.Mach, ssC.Ready)
	return c
}

// NewPair starts a server for source and one client of it, both ready.
func NewPair(t testing.TB, source *am.Machine, sopts []rpc.ServerOption,
	copts []rpc.ClientOption,
) (*rpc.Server, *rpc.Client) {
	t.Helper()
	srv := NewServer(t, source, sopts...)
	c := NewClient(t, srv, "client", source.GetStruct(), source.StateNames(), copts...)
	return srv, c
}

// waitState waits for state on mach, failing the test on Exception or after
// Timeout.
func waitState(t testing.TB, mach *am.Machine, state string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	select {
	case <-mach.When1(state, ctx):
		if ctx.Err() != nil {
			t.Fatalf("rpctest: %s not reached within %s: %s (err: %v)", state, Timeout, mach.String(), mach.Err())
		}
	case <-mach.WhenErr(ctx):
		t.Fatalf("rpctest: %s failed: %v", mach.ID, mach.Err())
	}
}

func stopWithin(t testing.TB, what string, stop func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		stop()
	}()
	select {
	case <-done:
	case <-time.After(Timeout):
		t.Errorf("rpctest: stopping the %s hung for %s", what, Timeout)
	}
}
