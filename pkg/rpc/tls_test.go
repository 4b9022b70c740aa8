package rpc_test

import (
	"context"
	"crypto/tls"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	am "github.com/arpc-go/arpc/pkg/machine"
	"github.com/arpc-go/arpc/pkg/rpc"
	"github.com/arpc-go/arpc/pkg/rpc/rpctest"
)

// TestTLS: a TLS server serves TLS clients; a plain client, or a client that
// does not trust the server, fails to connect.
func TestTLS(t *testing.T) {
	pki := rpc.MustTestPKI()
	src := newTestSource(t, nil)
	srv := rpctest.NewServer(t, src, rpc.WithServerTLS(pki.ServerConfig(false)))
	c := newTestClient(t, srv, "tls", rpc.WithClientTLS(pki.ClientConfig("")))
	require.Equal(t, am.Executed, c.Worker.Add1(sA, nil))
	tc, ok := c.TestNetConn().(*tls.Conn)
	require.True(t, ok, "not a TLS connection")
	assert.True(t, tc.ConnectionState().HandshakeComplete)

	ctx := dialCtx(t)
	opts := []rpc.ClientOption{rpc.WithReconnect(false, 0, 0)}
	// a plain client's first bytes are shorter than a TLS record header:
	// both ends wait, until the client's dial timeout (or the server's
	// handshake deadline)
	_, err := rpc.Dial(ctx, srv.Addr, testStruct(), testNames,
		append(opts, rpc.WithDialTimeout(200*time.Millisecond))...)
	assert.ErrorIs(t, err, rpc.ErrNetwork, "a plain client")
	_, err = rpc.Dial(ctx, srv.Addr, testStruct(), testNames,
		append(opts, rpc.WithClientTLS(&tls.Config{MinVersion: tls.VersionTLS13}))...)
	assert.ErrorIs(t, err, rpc.ErrNetwork, "a client without the CA")
	assert.Contains(t, err.Error(), "certificate")
}

// TestMutualTLS: with client certificates required and CertAuthenticator,
// each client's identity is its certificate's common name (the policy sees
// it); a client without a certificate does not get in.
func TestMutualTLS(t *testing.T) {
	pki := rpc.MustTestPKI()
	src := newTestSource(t, nil)
	var seen []string
	policy := func(_ context.Context, id string) (rpc.Permissions, error) {
		seen = append(seen, id) // handshakes of this test run one at a time
		return rpc.Permissions{Mutate: am.S{sA}}, nil
	}
	srv := rpctest.NewServer(t, src, rpc.WithServerTLS(pki.ServerConfig(true)),
		rpc.WithAuthenticator(rpc.CertAuthenticator), rpc.WithPolicy(policy))
	c := newTestClient(t, srv, "declared", rpc.WithClientTLS(pki.ClientConfig("carol")))
	assert.Equal(t, []string{"carol"}, seen)
	assert.Equal(t, am.Executed, c.Worker.Add1(sA, nil))
	assert.Equal(t, am.Canceled, c.Worker.Add1(sB, nil))
	assert.ErrorIs(t, c.Worker.Err(), rpc.ErrForbidden)

	_, err := rpc.Dial(dialCtx(t), srv.Addr, testStruct(), testNames, rpc.WithReconnect(false, 0, 0),
		rpc.WithClientTLS(pki.ClientConfig("")))
	assert.Error(t, err, "no client certificate")
}

// TestTLSOverPipe: ServeConn speaks TLS when the server has a TLS config,
// and WithClientTLS wraps a custom dialer's connections, here a net.Pipe.
func TestTLSOverPipe(t *testing.T) {
	pki := rpc.MustTestPKI()
	src := newTestSource(t, nil)
	srv := rpctest.NewServer(t, src, rpc.WithServerTLS(pki.ServerConfig(false)))
	c := newTestClient(t, srv, "pipe", rpc.WithDialer(pipeDialer(t, srv)),
		rpc.WithClientTLS(pki.ClientConfig("")))
	assert.Equal(t, am.Executed, c.Worker.Add1(sA, nil))
	_, ok := c.TestNetConn().(*tls.Conn)
	assert.True(t, ok)
}

// pipeDialer connects through net.Pipe to srv.ServeConn; the serving
// goroutines are waited for at cleanup.
func pipeDialer(t *testing.T, srv *rpc.Server) rpc.Dialer {
	done := make(chan struct{}, 64)
	n := 0
	t.Cleanup(func() {
		for range n {
			<-done
		}
	})
	return func(ctx context.Context, _ string) (net.Conn, error) {
		a, b := net.Pipe()
		n++
		go func() {
			defer func() { done <- struct{}{} }()
			_ = srv.ServeConn(context.Background(), b)
		}()
		return a, nil
	}
}
