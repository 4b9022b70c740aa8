package rpc

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
)

// WithServerTLS makes the server speak TLS on every connection it accepts,
// and on those given to ServeConn, with cfg (which must hold a certificate,
// or GetCertificate). For mutual TLS set cfg.ClientAuth to
// tls.RequireAndVerifyClientCert and cfg.ClientCAs to the pool that signs
// client certificates; CertAuthenticator then names each client by its
// certificate. The TLS handshake counts against the handshake deadline
// (WithHandshakeTimeout). cfg is cloned; it must not be changed afterwards.
func WithServerTLS(cfg *tls.Config) ServerOption {
	return func(o *serverOpts) {
		if cfg != nil {
			cfg = cfg.Clone()
		}
		o.sec.tls = cfg
	}
}

// WithClientTLS makes the client speak TLS with cfg over the connections its
// dialer opens (the default TCP dialer, or WithDialer's). An empty
// cfg.ServerName is taken from the host of the server address. For mutual
// TLS put the client's certificate in cfg.Certificates. The TLS handshake is
// bounded by the dial timeout. cfg is cloned; it must not be changed
// afterwards.
func WithClientTLS(cfg *tls.Config) ClientOption {
	return func(o *clientOpts) {
		if cfg != nil {
			cfg = cfg.Clone()
		}
		o.sec.tls = cfg
	}
}

// tlsDialer wraps the connections of dial in TLS with cfg.
func tlsDialer(dial Dialer, cfg *tls.Config) Dialer {
	return func(ctx context.Context, addr string) (net.Conn, error) {
		nc, err := dial(ctx, addr)
		if err != nil {
			return nil, err
		}
		c := cfg
		if c.ServerName == "" && !c.InsecureSkipVerify {
			host, _, err := net.SplitHostPort(addr)
			if err != nil {
				host = addr
			}
			c = c.Clone()
			c.ServerName = host
		}
		tc := tls.Client(nc, c)
		if err := tc.HandshakeContext(ctx); err != nil {
			_ = nc.Close()
			return nil, fmt.Errorf("tls: %w", err)
		}
		return tc, nil
	}
}
