package rpc_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	am "github.com/arpc-go/arpc/pkg/machine"
	"github.com/arpc-go/arpc/pkg/rpc"
	"github.com/arpc-go/arpc/pkg/rpc/rpctest"
	ssS "github.com/arpc-go/arpc/states/server"
)

// tokens of the tests' TokenAuthenticator: token → identity.
var tokens = map[string]string{"alice-token": "alice", "bob-token": "bob", "viewer-token": "viewer"}

func dialCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	t.Cleanup(cancel)
	return ctx
}

// TestAuthToken: with an authenticator, a client with a valid token gets in
// under its identity; one with a wrong or no token is refused with
// ErrUnauthenticated, its connection closed, and nothing of it reaches the
// source or the server's sessions.
func TestAuthToken(t *testing.T) {
	src := newTestSource(t, nil)
	srv := rpctest.NewServer(t, src, rpc.WithAuthenticator(rpc.TokenAuthenticator(tokens)))
	ctx := dialCtx(t)

	for name, opts := range map[string][]rpc.ClientOption{
		"wrong token": {rpc.WithToken("mallory")},
		"no token":    nil,
		"token func error": {rpc.WithTokenFunc(func(context.Context) (string, error) {
			return "", errors.New("vault sealed")
		})},
	} {
		c, err := rpc.Dial(ctx, srv.Addr, testStruct(), testNames, opts...)
		assert.Nil(t, c, name)
		assert.ErrorIs(t, err, rpc.ErrUnauthenticated, name)
	}
	st := srv.Stats()
	assert.Equal(t, uint64(2), st.RefusedAuth, "the token func failed on the client: never sent")
	assert.Zero(t, st.Sessions)
	assert.False(t, srv.Mach.Is1(ssS.ClientConnected))
	assert.Equal(t, am.Time{0, 0, 0, 0, 0, 0}, src.Time(nil), "the source saw nothing")

	c := newTestClient(t, srv, "c1", rpc.WithToken("alice-token"))
	require.Equal(t, am.Executed, c.Worker.Add1(sA, nil))
	c2 := newTestClient(t, srv, "c2", rpc.WithTokenFunc(func(context.Context) (string, error) {
		return "bob-token", nil
	}))
	waitSynced(t, c2.Worker, src)
	assert.True(t, c2.Worker.Is1(sA))
	assert.Equal(t, 2, srv.Stats().Sessions)
}

// TestAuthClosesConnection: a refused peer reads the refusal, then end of
// stream: the server closed its connection.
func TestAuthClosesConnection(t *testing.T) {
	src := newTestSource(t, nil)
	srv := rpctest.NewServer(t, src, rpc.WithAuthenticator(rpc.TokenAuthenticator(tokens)))
	var conns []net.Conn
	var mu sync.Mutex
	dial := func(ctx context.Context, addr string) (net.Conn, error) {
		nc, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
		mu.Lock()
		conns = append(conns, nc)
		mu.Unlock()
		return nc, err
	}
	_, err := rpc.Dial(dialCtx(t), srv.Addr, testStruct(), testNames, rpc.WithToken("x"), rpc.WithDialer(dial))
	require.ErrorIs(t, err, rpc.ErrUnauthenticated)
	require.Eventually(t, func() bool { return srv.Stats().Conns == 0 }, deadline, poll,
		"the server still holds the refused connection")
}

// TestIdentityNamesSessions: identities, not declared client IDs, name
// sessions: a client that declares another's ID gets its own session and
// none of the other's payloads; with one session per identity, a second
// client of the same identity is refused.
func TestIdentityNamesSessions(t *testing.T) {
	src := newTestSource(t, nil)
	srv := rpctest.NewServer(t, src, rpc.WithAuthenticator(rpc.TokenAuthenticator(tokens)),
		rpc.WithMaxSessionsPerIdentity(1))
	alice := newTestClient(t, srv, "same-id", rpc.WithToken("alice-token"))
	bob := newTestClient(t, srv, "same-id", rpc.WithToken("bob-token"))
	ctx := dialCtx(t)

	require.NoError(t, srv.SendPayload(ctx, &rpc.ArgsPayload{Name: "secret", Destination: "alice", Data: []byte("a")}))
	require.NoError(t, srv.SendPayload(ctx, &rpc.ArgsPayload{Name: "all", Data: []byte("b")}))
	require.Eventually(t, func() bool { return len(alice.Payloads()) == 2 && len(bob.Payloads()) == 1 },
		deadline, poll)
	assert.Contains(t, alice.Payloads(), "secret")
	assert.NotContains(t, bob.Payloads(), "secret", "bob declared alice's client ID")
	err := srv.SendPayload(ctx, &rpc.ArgsPayload{Name: "x", Destination: "same-id"})
	assert.ErrorIs(t, err, rpc.ErrUnknownClient, "payloads address identities, not declared IDs")

	_, err = rpc.Dial(ctx, srv.Addr, testStruct(), testNames, rpc.WithToken("alice-token"))
	assert.ErrorIs(t, err, rpc.ErrTooManySessions)
	assert.Equal(t, uint64(1), srv.Stats().RefusedSessions)
	assert.Equal(t, 2, srv.Stats().Sessions)
}

// TestPolicy: an identity mutates only what it may (a refused mutation fails
// with ErrForbidden and does not run) and its mirror sees only what it may
// observe: the rest stays at tick 0, the source's error text is withheld
// without Exception, and a remote WhenArgs on a hidden state is refused.
func TestPolicy(t *testing.T) {
	src := newTestSource(t, nil)
	policy := func(_ context.Context, id string) (rpc.Permissions, error) {
		switch id {
		case "viewer":
			return rpc.Permissions{Mutate: am.S{sA}, Observe: am.S{sA, sB}}, nil
		case "bob":
			return rpc.Permissions{}, errors.New("bob is banned")
		}
		return rpc.Permissions{}, nil // alice: everything
	}
	srv := rpctest.NewServer(t, src, rpc.WithAuthenticator(rpc.TokenAuthenticator(tokens)), rpc.WithPolicy(policy))
	admin := newTestClient(t, srv, "admin", rpc.WithToken("alice-token"))
	viewer := newTestClient(t, srv, "viewer", rpc.WithToken("viewer-token"))
	ctx := dialCtx(t)

	_, err := rpc.Dial(ctx, srv.Addr, testStruct(), testNames, rpc.WithToken("bob-token"))
	assert.ErrorIs(t, err, rpc.ErrForbidden, "an identity the policy refuses")

	res, err := viewer.Worker.Mutate(ctx, am.MutationAdd, am.S{sB}, nil)
	assert.ErrorIs(t, err, rpc.ErrForbidden)
	assert.Equal(t, am.Canceled, res)
	res, err = viewer.Worker.Mutate(ctx, am.MutationAdd, am.S{sA, sM}, nil)
	assert.ErrorIs(t, err, rpc.ErrForbidden, "one forbidden state forbids the mutation")
	assert.Equal(t, am.Canceled, res)
	assert.True(t, src.Not1(sB), "a forbidden mutation ran")
	assert.True(t, src.Not1(sM))
	res, err = viewer.Worker.MutateIf(ctx, am.Clock{sM: 0}, am.MutationAdd, am.S{sA}, nil)
	assert.ErrorIs(t, err, rpc.ErrForbidden, "a precondition on a hidden state would reveal it")
	assert.Equal(t, am.Canceled, res)
	res, err = viewer.Worker.Mutate(ctx, am.MutationAdd, am.S{sA}, nil)
	require.NoError(t, err)
	assert.Equal(t, am.Executed, res)
	assert.Equal(t, am.Canceled, viewer.Worker.AddErr(errors.New("boom"), nil), "AddErr names Exception")
	assert.ErrorIs(t, viewer.Worker.Err(), rpc.ErrForbidden)

	require.Equal(t, am.Executed, admin.Worker.Add(am.S{sB, sM}, nil))
	require.Equal(t, am.Executed, admin.Worker.AddErr(errors.New("secret failure"), nil))
	waitSynced(t, admin.Worker, src)
	require.NoError(t, viewer.Worker.Resync(ctx))
	assert.True(t, viewer.Worker.Is(am.S{sA, sB}))
	assert.Zero(t, viewer.Worker.Tick(sM), "a hidden state moved in the mirror")
	assert.Zero(t, viewer.Worker.Tick(am.Exception))
	assert.NotContains(t, fmt.Sprint(viewer.Worker.Err()), "secret failure")
	assert.Equal(t, uint64(1), admin.Worker.Tick(sM))

	// a hidden state's watch is refused; its channel stays open until ctx ends
	wctx, cancel := context.WithCancel(ctx)
	ch := viewer.Worker.WhenArgs(sM, am.A{"x": 1}, wctx)
	require.Eventually(t, func() bool { return srv.Stats().Forbidden >= 5 }, deadline, poll)
	cancel()
	<-ch
	assert.GreaterOrEqual(t, srv.Stats().Forbidden, uint64(5))
}

// TestPayloadsBounded: a client keeps at most WithMaxPayloads payloads,
// dropping the oldest name and counting it; DeletePayload forgets one.
func TestPayloadsBounded(t *testing.T) {
	src := newTestSource(t, nil)
	srv := rpctest.NewServer(t, src)
	c := newTestClient(t, srv, "p", rpc.WithMaxPayloads(4))
	ctx := dialCtx(t)
	data := make([]byte, 64<<10)
	for i := range 10 {
		require.NoError(t, srv.SendPayload(ctx, &rpc.ArgsPayload{Name: fmt.Sprint("p", i), Data: data}))
	}
	// the same name again: it is kept, and becomes the newest
	require.NoError(t, srv.SendPayload(ctx, &rpc.ArgsPayload{Name: "p6", Data: data}))
	require.NoError(t, srv.SendPayload(ctx, &rpc.ArgsPayload{Name: "p10", Data: data}))
	p := c.Payloads()
	assert.Len(t, p, 4)
	for _, n := range []string{"p8", "p9", "p6", "p10"} {
		assert.Contains(t, p, n)
	}
	assert.Equal(t, uint64(7), c.DroppedPayloads())
	assert.True(t, c.DeletePayload("p9"))
	assert.False(t, c.DeletePayload("p9"))
	assert.Len(t, c.Payloads(), 3)
}

// TestMaxConns: connections beyond WithMaxConns are closed at once and
// counted; the clients already in keep working.
func TestMaxConns(t *testing.T) {
	src := newTestSource(t, nil)
	srv := rpctest.NewServer(t, src, rpc.WithMaxConns(2))
	a := newTestClient(t, srv, "a")
	_ = newTestClient(t, srv, "b")
	_, err := rpc.Dial(dialCtx(t), srv.Addr, testStruct(), testNames, rpc.WithReconnect(false, 0, 0))
	assert.ErrorIs(t, err, rpc.ErrNetwork)
	assert.Equal(t, uint64(1), srv.Stats().RefusedConns)
	assert.Equal(t, 2, srv.Stats().Conns)
	assert.Equal(t, am.Executed, a.Worker.Add1(sA, nil))
}
