package rpc

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"sync"
	"time"
)

// TestPKI is a throwaway certificate authority for tests and examples: a CA,
// a server certificate for 127.0.0.1 and localhost, and client certificates
// on demand. Exported (in a test file) so the black-box tests and examples
// use it too.
type TestPKI struct {
	pool   *x509.CertPool
	caCert *x509.Certificate
	caKey  *ecdsa.PrivateKey
	server tls.Certificate
}

var (
	pkiOnce sync.Once
	pki     *TestPKI
)

// MustTestPKI returns the process's test PKI, made on first use. It panics
// if crypto fails.
func MustTestPKI() *TestPKI {
	pkiOnce.Do(func() {
		key := mustKey()
		tmpl := &x509.Certificate{
			SerialNumber:          big.NewInt(1),
			Subject:               pkix.Name{CommonName: "arpc test CA"},
			NotBefore:             time.Now().Add(-time.Hour),
			NotAfter:              time.Now().Add(24 * time.Hour),
			IsCA:                  true,
			KeyUsage:              x509.KeyUsageCertSign,
			BasicConstraintsValid: true,
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
		if err != nil {
			panic(err)
		}
		ca, err := x509.ParseCertificate(der)
		if err != nil {
			panic(err)
		}
		p := &TestPKI{pool: x509.NewCertPool(), caCert: ca, caKey: key}
		p.pool.AddCert(ca)
		p.server = p.issue("arpc test server", x509.ExtKeyUsageServerAuth)
		pki = p
	})
	return pki
}

func mustKey() *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	return k
}

var serial struct {
	sync.Mutex
	n int64
}

// issue signs a certificate for cn with the CA.
func (p *TestPKI) issue(cn string, usage x509.ExtKeyUsage) tls.Certificate {
	serial.Lock()
	serial.n++
	n := serial.n + 1
	serial.Unlock()
	key := mustKey()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(n),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{usage},
	}
	if usage == x509.ExtKeyUsageServerAuth {
		tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}
		tmpl.DNSNames = []string{"localhost"}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.caCert, &key.PublicKey, p.caKey)
	if err != nil {
		panic(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// ServerConfig returns a server TLS config; with mutual, it requires and
// verifies client certificates signed by the CA.
func (p *TestPKI) ServerConfig(mutual bool) *tls.Config {
	cfg := &tls.Config{Certificates: []tls.Certificate{p.server}, MinVersion: tls.VersionTLS13}
	if mutual {
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
		cfg.ClientCAs = p.pool
	}
	return cfg
}

// ClientConfig returns a client TLS config trusting the CA, with a client
// certificate for cn unless cn is empty.
func (p *TestPKI) ClientConfig(cn string) *tls.Config {
	cfg := &tls.Config{RootCAs: p.pool, MinVersion: tls.VersionTLS13}
	if cn != "" {
		cfg.Certificates = []tls.Certificate{p.issue(cn, x509.ExtKeyUsageClientAuth)}
	}
	return cfg
}
