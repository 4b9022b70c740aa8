package benchgrpc

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	am "github.com/arpc-go/arpc/pkg/machine"
)

func init() {
	transports = slices.Insert(transports, 1, transport{"arpc", setupArpc})
}

// setupArpc gives each client its own worker machine and aRPC Server (an aRPC Server exposes one
// machine), all in this process; with metered set, each client dials through its own Proxy.
func setupArpc(ctx context.Context, n int, metered bool) (_ *env, err error) {
	e := &env{}
	defer func() {
		if err != nil {
			_ = e.close()
		}
	}()
	servers := make([]*ArpcServer, n)
	proxies := make([]*Proxy, n)
	clients := make([]*ArpcClient, n)
	err = parallel(n, func(i int) error {
		srv, err := NewArpcServer(ctx, uint64(i+1))
		if err != nil {
			return err
		}
		servers[i] = srv
		addr := srv.Addr()
		if metered {
			p, err := NewProxy(addr)
			if err != nil {
				return err
			}
			proxies[i] = p
			addr = p.Addr()
		}
		c, err := NewArpcClient(ctx, addr, fmt.Sprintf("client-%d", i+1))
		if err != nil {
			return err
		}
		clients[i] = c
		return nil
	})
	// Closed in reverse: clients, then proxies, then servers.
	for _, s := range servers {
		if s != nil {
			e.onClose(s.Close)
		}
	}
	for _, p := range proxies {
		if p != nil {
			e.onClose(p.Close)
		}
	}
	for _, c := range clients {
		if c != nil {
			e.clients = append(e.clients, c)
			e.onClose(c.Close)
		}
	}
	if err != nil {
		return nil, err
	}
	if metered {
		e.wire = func() (s uint64) {
			for _, p := range proxies {
				s += p.Bytes()
			}
			return s
		}
	}
	e.calls = func() (s uint64) {
		for i := range n {
			s += clients[i].Calls() + servers[i].Calls()
		}
		return s
	}
	e.completions = func() (s uint64) {
		for _, srv := range servers {
			s += srv.Worker.Completions()
		}
		return s
	}
	e.mismatches = func() (s uint64) {
		for _, srv := range servers {
			s += srv.Worker.Errors()
		}
		return s
	}
	return e, nil
}

// TestArpcOneCallPerCycle checks the claim the aRPC figures rest on: a cycle is one remote call, whose
// reply carries the Event ticks and the new value, with no push afterwards.
func TestArpcOneCallPerCycle(t *testing.T) {
	e := newEnv(t, transport{"arpc", setupArpc}, 1, true)
	defer closeEnv(t, e)
	require.NoError(t, runClients(t.Context(), e.clients, 5))
	calls0 := e.calls()
	require.NoError(t, runClients(t.Context(), e.clients, testCycles))
	assert.Equal(t, uint64(testCycles), e.calls()-calls0, "calls for %d cycles", testCycles)
	assert.Equal(t, uint64(5+testCycles), e.completions())
	assert.Zero(t, e.mismatches())
}

// TestArpcMismatch checks that a wrong op is counted by the worker and shows on the mirror as
// Exception, and that an invalid op argument is refused by CallOpEnter.
func TestArpcMismatch(t *testing.T) {
	ctx := t.Context()
	srv, err := NewArpcServer(ctx, 1)
	require.NoError(t, err)
	defer srv.Close()
	c, err := NewArpcClient(ctx, srv.Addr(), "client-1")
	require.NoError(t, err)
	defer c.Close()
	w := c.cli.Worker

	assert.Equal(t, am.Canceled, w.Add1(StateCallOp, am.A{"Op": "1"}), "a string op")
	assert.Equal(t, am.Canceled, w.Add1(StateCallOp, am.A{"Op": 4}), "an op out of range")
	assert.Zero(t, srv.Worker.Errors())

	wrong := srv.Worker.Value()%3 + 1
	assert.Equal(t, am.Executed, w.Add1(StateCallOp, am.A{"Op": wrong}))
	assert.True(t, w.Is1(am.Exception), "the reply carries Exception")
	assert.Equal(t, uint64(1), srv.Worker.Errors())
	assert.ErrorIs(t, c.Cycle(ctx), ErrMismatch, "the cycle reports the raised Exception")
}

// TestArpcSetupOutlivesContext checks that the set-up context bounds only the set-up: the server and
// client keep working after it ends (the benchmarks' set-up context is canceled before timing).
func TestArpcSetupOutlivesContext(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	srv, err := NewArpcServer(ctx, 1)
	require.NoError(t, err)
	defer srv.Close()
	c, err := NewArpcClient(ctx, srv.Addr(), "client-1")
	require.NoError(t, err)
	defer c.Close()
	cancel()
	for i := range 5 {
		require.NoError(t, c.Cycle(t.Context()), "cycle %d", i)
	}
	assert.Equal(t, uint64(5), srv.Worker.Completions())

	done, stop := context.WithCancel(t.Context())
	stop()
	_, err = NewArpcClient(done, srv.Addr(), "client-2")
	assert.Error(t, err, "a set-up whose context has ended fails")
}
