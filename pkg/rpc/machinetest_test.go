package rpc_test

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	am "github.com/arpc-go/arpc/pkg/machine"
	"github.com/arpc-go/arpc/pkg/machine/machinetest"
	"github.com/arpc-go/arpc/pkg/rpc"
	"github.com/arpc-go/arpc/pkg/rpc/rpctest"
)

// TestWorkerBehaviour runs the engine's read-and-wait suite against a Worker,
// over TCP, mutual TLS (with CertAuthenticator) and a pipe: every read and
// wait of am.Api behaves on the mirror as on the machine.
func TestWorkerBehaviour(t *testing.T) {
	// A mirror keeps a client's bad input to that client: a mutation naming
	// an unknown state fails locally (Err names it) and the source, shared
	// by every client, gets no Exception, unlike a local machine.
	skipUnknown := machinetest.Skip("a mirror's unknown state doesn't add Exception to the shared source",
		"Unknown/MutationsAreCanceled")
	withHandlers := machinetest.WithHandlers(func(t *testing.T, s am.Struct, names am.S, h any,
		timeout time.Duration,
	) am.Api {
		source := newSource(t, s, names)
		source.HandlerTimeout = timeout
		if err := source.BindHandlers(h); err != nil {
			t.Fatal(err)
		}
		srv := rpctest.NewServer(t, source)
		return rpctest.NewClient(t, srv, "suite", s, names).Worker
	})
	t.Run("tcp", func(t *testing.T) {
		machinetest.Run(t, func(t *testing.T, s am.Struct, names am.S) am.Api {
			source := newSource(t, s, names)
			srv := rpctest.NewServer(t, source)
			return rpctest.NewClient(t, srv, "suite", s, names).Worker
		}, skipUnknown, withHandlers)
	})
	t.Run("tls", func(t *testing.T) {
		pki := rpc.MustTestPKI()
		machinetest.Run(t, func(t *testing.T, s am.Struct, names am.S) am.Api {
			source := newSource(t, s, names)
			srv := rpctest.NewServer(t, source, rpc.WithServerTLS(pki.ServerConfig(true)),
				rpc.WithAuthenticator(rpc.CertAuthenticator))
			return rpctest.NewClient(t, srv, "suite", s, names, rpc.WithClientTLS(pki.ClientConfig("suite"))).Worker
		}, skipUnknown)
	})
	t.Run("pipe", func(t *testing.T) {
		machinetest.Run(t, func(t *testing.T, s am.Struct, names am.S) am.Api {
			source := newSource(t, s, names)
			srv := rpctest.NewServer(t, source)
			var wg sync.WaitGroup
			t.Cleanup(wg.Wait)
			dial := func(ctx context.Context, _ string) (net.Conn, error) {
				a, b := net.Pipe()
				wg.Add(1)
				go func() {
					defer wg.Done()
					_ = srv.ServeConn(context.Background(), b)
				}()
				return a, nil
			}
			return rpctest.NewClient(t, srv, "suite", s, names, rpc.WithDialer(dial)).Worker
		}, skipUnknown)
	})
}

// newSource builds a verified machine without handlers, disposed at cleanup.
func newSource(t testing.TB, s am.Struct, names am.S) *am.Machine {
	t.Helper()
	m := am.New(context.Background(), s, nil)
	if err := m.VerifyStates(names); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		m.Dispose()
		<-m.WhenDisposed()
	})
	return m
}
