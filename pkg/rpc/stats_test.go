package rpc_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	am "github.com/arpc-go/arpc/pkg/machine"
	"github.com/arpc-go/arpc/pkg/rpc"
	"github.com/arpc-go/arpc/pkg/rpc/rpctest"
	"github.com/arpc-go/arpc/pkg/rpc2"
)

// vetoB cancels every activation of B.
type vetoB struct{}

func (*vetoB) BEnter(*am.Event) bool { return false }

// TestStatsTraffic: the server counts handshakes, mutations by result,
// updates and pushes, bytes and errors by code, and a client reads the same
// counters remotely.
func TestStatsTraffic(t *testing.T) {
	src := newTestSource(t, &vetoB{})
	srv := rpctest.NewServer(t, src)
	c := newTestClient(t, srv, "c1")
	ctx := dialCtx(t)

	require.Equal(t, am.Executed, c.Worker.Add1(sA, nil))
	require.Equal(t, am.Canceled, c.Worker.Add1(sB, nil))
	_, err := c.Get(ctx, "nothing")
	require.ErrorIs(t, err, rpc.ErrNoGetter)
	// a change made on the source reaches the client as a push
	require.Equal(t, am.Executed, src.Add1(sM, nil))
	waitSynced(t, c.Worker, src)

	st := srv.Stats()
	assert.Equal(t, 1, st.Conns)
	assert.Equal(t, 1, st.Sessions)
	assert.Equal(t, uint64(1), st.Handshakes)
	assert.Equal(t, uint64(1), st.MutationsExecuted)
	assert.Equal(t, uint64(1), st.MutationsCanceled)
	assert.Zero(t, st.MutationsFailed)
	assert.GreaterOrEqual(t, st.Updates, uint64(3), "the full update, A's diff, M's push")
	assert.GreaterOrEqual(t, st.Pushes, uint64(1))
	assert.Positive(t, st.BytesIn)
	assert.Positive(t, st.BytesOut)
	assert.Equal(t, map[rpc2.Code]uint64{rpc.CodeNoGetter: 1}, st.Errors)

	remote, err := c.Stats(ctx)
	require.NoError(t, err)
	assert.Equal(t, st.Conns, remote.Conns)
	assert.Equal(t, st.Sessions, remote.Sessions)
	assert.Equal(t, st.Handshakes, remote.Handshakes)
	assert.Equal(t, st.MutationsExecuted, remote.MutationsExecuted)
	assert.Equal(t, st.MutationsCanceled, remote.MutationsCanceled)
	assert.Equal(t, st.Errors, remote.Errors)
	assert.GreaterOrEqual(t, remote.BytesIn, st.BytesIn, "counters only grow")
}

// TestStatsForbiddenCounted: a refusal by the policy is an error of its
// code, and the mutation is not counted as run.
func TestStatsForbiddenCounted(t *testing.T) {
	src := newTestSource(t, nil)
	policy := func(context.Context, string) (rpc.Permissions, error) {
		return rpc.Permissions{Mutate: am.S{sA}}, nil
	}
	srv := rpctest.NewServer(t, src, rpc.WithPolicy(policy))
	c := newTestClient(t, srv, "c1")
	_, err := c.Worker.Mutate(dialCtx(t), am.MutationAdd, am.S{sB}, nil)
	require.ErrorIs(t, err, rpc.ErrForbidden)
	st := srv.Stats()
	assert.Equal(t, uint64(1), st.Forbidden)
	assert.Equal(t, map[rpc2.Code]uint64{rpc.CodeForbidden: 1}, st.Errors)
	assert.Zero(t, st.MutationsExecuted+st.MutationsCanceled+st.MutationsFailed)
}

// TestIntrospectionOff: neither Describe nor Stats is answered.
func TestIntrospectionOff(t *testing.T) {
	src := newTestSource(t, nil)
	srv := rpctest.NewServer(t, src, rpc.WithIntrospection(false))
	c := newTestClient(t, srv, "c1")
	_, err := c.Stats(dialCtx(t))
	require.ErrorIs(t, err, rpc.ErrIntrospectionOff)
	_, _, err = rpc.Describe(dialCtx(t), srv.Addr)
	require.ErrorIs(t, err, rpc.ErrIntrospectionOff)
}

// TestDescribeAuthenticated: Describe is admitted as a handshake is: the
// authenticator first, then the policy; a refused peer learns nothing.
func TestDescribeAuthenticated(t *testing.T) {
	src := newTestSource(t, nil)
	policy := func(_ context.Context, id string) (rpc.Permissions, error) {
		if id == "viewer" {
			return rpc.Permissions{}, errors.New("viewers are not welcome here")
		}
		return rpc.Permissions{}, nil
	}
	srv := rpctest.NewServer(t, src, rpc.WithAuthenticator(rpc.TokenAuthenticator(tokens)), rpc.WithPolicy(policy))
	ctx := dialCtx(t)

	s, n, err := rpc.Describe(ctx, srv.Addr)
	require.ErrorIs(t, err, rpc.ErrUnauthenticated)
	require.Nil(t, s)
	require.Nil(t, n)
	_, _, err = rpc.Describe(ctx, srv.Addr, rpc.WithToken("viewer-token"))
	require.ErrorIs(t, err, rpc.ErrForbidden)
	st := srv.Stats()
	require.Equal(t, uint64(1), st.RefusedAuth)
	require.Equal(t, uint64(1), st.Forbidden)

	_, n, err = rpc.Describe(ctx, srv.Addr, rpc.WithToken("alice-token"))
	require.NoError(t, err)
	require.Equal(t, testNames, n)
	c, err := rpc.DialAny(ctx, srv.Addr, rpc.WithTokenFunc(func(context.Context) (string, error) {
		return "bob-token", nil
	}))
	require.NoError(t, err)
	require.NoError(t, c.Close())
}

// TestDescribeMutualTLS: Describe speaks TLS when the client does, and the
// server names the peer by its certificate.
func TestDescribeMutualTLS(t *testing.T) {
	pki := rpc.MustTestPKI()
	src := newTestSource(t, nil)
	srv := rpctest.NewServer(t, src, rpc.WithServerTLS(pki.ServerConfig(true)),
		rpc.WithAuthenticator(rpc.CertAuthenticator))
	ctx := dialCtx(t)
	_, n, err := rpc.Describe(ctx, srv.Addr, rpc.WithClientTLS(pki.ClientConfig("carol")))
	require.NoError(t, err)
	require.Equal(t, testNames, n)
	c, err := rpc.DialAny(ctx, srv.Addr, rpc.WithClientTLS(pki.ClientConfig("carol")))
	require.NoError(t, err)
	require.NoError(t, c.Close())
	_, _, err = rpc.Describe(ctx, srv.Addr, rpc.WithClientTLS(pki.ClientConfig("")))
	require.Error(t, err, "no client certificate")
}

// TestActiveArgs: the arguments of each active state's last activation,
// as text, for the states the identity may observe.
func TestActiveArgs(t *testing.T) {
	src := newTestSource(t, nil)
	policy := func(_ context.Context, id string) (rpc.Permissions, error) {
		if id == "partial" {
			return rpc.Permissions{Observe: am.S{sA}}, nil
		}
		return rpc.Permissions{}, nil
	}
	srv := rpctest.NewServer(t, src, rpc.WithPolicy(policy))
	c := newTestClient(t, srv, "c1")
	ctx := dialCtx(t)

	require.Equal(t, am.Executed, c.Worker.Add1(sA, am.A{"n": 42, "who": "ann", "long": strings.Repeat("x", 300)}))
	require.Equal(t, am.Executed, c.Worker.Add1(sM, am.A{"first": true}))
	require.Equal(t, am.Executed, src.Add1(sM, am.A{"second": 2.5}))
	require.Equal(t, am.Executed, src.Add1(sB, nil))
	args, err := c.ActiveArgs(ctx)
	require.NoError(t, err)
	require.Equal(t, map[string]map[string]string{
		sA: {"n": "42", "who": `"ann"`, "long": `"` + strings.Repeat("x", 255) + "…"},
		sM: {"second": "2.5"},
	}, args, "B has no arguments; M shows its last activation")

	require.Equal(t, am.Executed, src.Remove1(sA, nil))
	args, err = c.ActiveArgs(ctx)
	require.NoError(t, err)
	require.NotContains(t, args, sA, "inactive")

	require.Equal(t, am.Executed, src.Add1(sA, am.A{"again": 1}))
	p := newTestClient(t, srv, "partial")
	args, err = p.ActiveArgs(ctx)
	require.NoError(t, err)
	require.Equal(t, map[string]map[string]string{sA: {"again": "1"}}, args, "only what it may observe")
}
