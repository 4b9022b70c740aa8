package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/arpc-go/arpc/pkg/rpc"
)

func TestStats(t *testing.T) {
	srv, _, _ := testServer(t)
	require.Equal(t, exitOK, arpc(t, "add", srv.Addr, "Busy").code)
	require.Equal(t, exitCanceled, arpc(t, "add", srv.Addr, "Vetoed").code)
	// the sessions of the commands before end once the server has read
	// their goodbyes
	quiet := func() {
		require.Eventually(t, func() bool { return srv.Stats().Sessions == 0 }, deadline, time.Millisecond)
	}
	quiet()

	r := arpc(t, "stats", srv.Addr)
	require.Equal(t, exitOK, r.code, r.stderr)
	require.Contains(t, r.stdout, "server at "+srv.Addr+"\n")
	// this arpc's Describe connection may still be open on the server's side
	require.Regexp(t, `  now         [12] connections, 1 sessions \(this one included\)\n`, r.stdout)
	require.Contains(t, r.stdout, "  mutations   1 executed, 1 canceled, 0 queued, 0 failed\n")
	require.Contains(t, r.stdout, "  errors      none\n")

	r = arpc(t, "stats", srv.Addr, "--json")
	require.Equal(t, exitOK, r.code, r.stderr)
	var st map[string]any
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &st), r.stdout)
	require.Equal(t, float64(1), st["mutationsExecuted"])
	require.Equal(t, float64(4), st["handshakes"], "add, add, stats, stats")
	require.Positive(t, st["bytesIn"])

	// inspect shows the clients too
	quiet()
	r = arpc(t, "inspect", srv.Addr)
	require.Regexp(t, `clients: [12] connections, 1 sessions \(this one included\)\n`, r.stdout)

	off, _, _ := testServer(t, rpc.WithIntrospection(false))
	r = arpc(t, "stats", off.Addr)
	require.Equal(t, exitError, r.code)
	require.Contains(t, r.stderr, "introspection off")
}

// TestToken: credentials from a flag, a file or the environment.
func TestToken(t *testing.T) {
	srv, _, _ := testServer(t, rpc.WithAuthenticator(rpc.TokenAuthenticator(map[string]string{"s3cret": "ops"})))
	r := arpc(t, "inspect", srv.Addr)
	require.Equal(t, exitError, r.code)
	require.Contains(t, r.stderr, "unauthenticated")
	r = arpc(t, "inspect", srv.Addr, "--token", "wrong")
	require.Equal(t, exitError, r.code)

	r = arpc(t, "add", srv.Addr, "Busy", "--token", "s3cret")
	require.Equal(t, exitOK, r.code, r.stderr)
	file := filepath.Join(t.TempDir(), "token")
	require.NoError(t, os.WriteFile(file, []byte("s3cret\n"), 0o600))
	r = arpc(t, "when", srv.Addr, "Busy", "--token-file", file)
	require.Equal(t, exitOK, r.code, r.stderr)
	t.Setenv(tokenEnv, "s3cret")
	r = arpc(t, "inspect", srv.Addr)
	require.Equal(t, exitOK, r.code, r.stderr)
	r = arpc(t, "inspect", srv.Addr, "--token", "a", "--token-file", file)
	require.Equal(t, exitError, r.code)
}

// TestMutualTLS: --tls-ca, --tls-cert and --tls-key against a server that
// names its clients by their certificates.
func TestMutualTLS(t *testing.T) {
	dir := t.TempDir()
	pki := newPKI(t, dir)
	srv, _, _ := testServer(t, rpc.WithServerTLS(pki.server), rpc.WithAuthenticator(rpc.CertAuthenticator))

	tlsArgs := []string{"--tls-ca", pki.caFile, "--tls-cert", pki.certFile, "--tls-key", pki.keyFile}
	r := arpc(t, append([]string{"inspect", srv.Addr}, tlsArgs...)...)
	require.Equal(t, exitOK, r.code, r.stderr)
	require.Contains(t, r.stdout, "machine desk")

	// without a client certificate, without trusting the CA, without TLS
	for _, args := range [][]string{
		{"--tls-ca", pki.caFile},
		{"--tls", "--tls-cert", pki.certFile, "--tls-key", pki.keyFile},
		{"--timeout", "300ms"},
	} {
		r = arpc(t, append([]string{"inspect", srv.Addr}, args...)...)
		require.NotEqual(t, exitOK, r.code, args)
	}
	r = arpc(t, "inspect", srv.Addr, "--tls-cert", pki.certFile)
	require.Equal(t, exitError, r.code)
	require.Contains(t, r.stderr, "go together")
}

// testPKI is a throwaway CA, a server certificate for 127.0.0.1 and a
// client certificate, the client's as PEM files.
type testPKI struct {
	server                    *tls.Config
	caFile, certFile, keyFile string
}

func newPKI(t *testing.T, dir string) *testPKI {
	t.Helper()
	key := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		require.NoError(t, err)
		return k
	}
	caKey := key()
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	require.NoError(t, err)
	ca, err := x509.ParseCertificate(caDER)
	require.NoError(t, err)
	issue := func(serial int64, cn string, usage x509.ExtKeyUsage, ips []net.IP) ([]byte, *ecdsa.PrivateKey) {
		k := key()
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage}, IPAddresses: ips,
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &k.PublicKey, caKey)
		require.NoError(t, err)
		return der, k
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	srvDER, srvKey := issue(2, "server", x509.ExtKeyUsageServerAuth, []net.IP{net.IPv4(127, 0, 0, 1)})
	cliDER, cliKey := issue(3, "carol", x509.ExtKeyUsageClientAuth, nil)
	write := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600))
		return p
	}
	cliKeyDER, err := x509.MarshalECPrivateKey(cliKey)
	require.NoError(t, err)
	return &testPKI{
		server: &tls.Config{
			MinVersion:   tls.VersionTLS12,
			Certificates: []tls.Certificate{{Certificate: [][]byte{srvDER}, PrivateKey: srvKey}},
			ClientAuth:   tls.RequireAndVerifyClientCert, ClientCAs: pool,
		},
		caFile:   write("ca.pem", "CERTIFICATE", caDER),
		certFile: write("client.pem", "CERTIFICATE", cliDER),
		keyFile:  write("client-key.pem", "EC PRIVATE KEY", cliKeyDER),
	}
}
