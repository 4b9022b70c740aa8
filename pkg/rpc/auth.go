package rpc

import (
	"context"
	"crypto/subtle"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/arpc-go/arpc/pkg/rpc2"
)

// Error codes of Layer 2's security refusals, carried by rpc2.Error. They are
// numbered apart from the codes in server_handlers.go so that both lists can
// grow.
const (
	// CodeUnauthenticated is a handshake the server's Authenticator
	// refused. The server closes the connection after the reply.
	CodeUnauthenticated rpc2.Code = 120 + iota
	// CodeForbidden is a request the server's Policy refuses for the
	// client's identity (a mutation of a state it may not mutate, a watch
	// of a state it may not observe); it did not run. In a handshake, the
	// Policy refused the identity altogether.
	CodeForbidden
	// CodeTooManySessions is a handshake refused because the server holds
	// as many sessions as it may (WithMaxSessions), or the identity does
	// (WithMaxSessionsPerIdentity). The server closes the connection after
	// the reply; the client retries later.
	CodeTooManySessions
)

// Errors of authentication, authorization and limits.
var (
	// ErrUnauthenticated is a connection the server refused because its
	// credentials did not satisfy the server's Authenticator. A client
	// stops reconnecting on it, as on ErrSchemaMismatch.
	ErrUnauthenticated = errors.New("rpc: unauthenticated")
	// ErrForbidden is a call the server's Policy refused for this client's
	// identity: a mutation naming a state it may not mutate, or a remote
	// WhenArgs on a state it may not observe. The call did not run.
	ErrForbidden = errors.New("rpc: forbidden")
	// ErrTooManySessions is a handshake refused because the server, or the
	// client's identity, holds as many sessions as allowed.
	ErrTooManySessions = errors.New("rpc: too many sessions")
)

// Peer describes the remote end of a connection being authenticated.
type Peer struct {
	// ClientID is the ID the client declared in its handshake. Nothing
	// verifies it: name sessions by the identity the Authenticator returns.
	ClientID string
	// Token is the credential the client sent (WithToken, WithTokenFunc),
	// empty if none.
	Token []byte
	// Addr is the transport's remote address (nil if it has none).
	Addr net.Addr
	// TLS is the state of the TLS connection the handshake arrived on (the
	// TLS handshake is complete), or nil for a connection without TLS. With
	// mutual TLS, TLS.VerifiedChains holds the client's verified
	// certificate chains.
	TLS *tls.ConnectionState
}

// Authenticator decides who the peer of a new connection is. It runs on the
// handshake, before the server decodes anything else the peer sends or
// creates a session, and before anything of the peer reaches the source
// machine; ctx ends with the handshake deadline (WithHandshakeTimeout) or the
// connection. It returns the peer's identity, which names its sessions (a
// resumed session must have the same identity), addresses its payloads
// (ArgsPayload.Destination) and is what the Policy is asked about; or an
// error, which refuses the peer: it gets CodeUnauthenticated with the
// error's text and its connection is closed. It must be safe for concurrent
// use.
type Authenticator func(ctx context.Context, p *Peer) (identity string, err error)

// WithAuthenticator makes the server authenticate every connection with a
// (see Authenticator). Without one, the server accepts everyone and a
// client's identity is the client ID it declares, so anyone who can connect
// may claim any ID.
func WithAuthenticator(a Authenticator) ServerOption {
	return func(o *serverOpts) { o.sec.auth = a }
}

// TokenAuthenticator returns an Authenticator that accepts the bearer tokens
// in tokens, each naming the identity it maps to. Tokens are compared in
// constant time. The map is copied.
func TokenAuthenticator(tokens map[string]string) Authenticator {
	type entry struct{ token, identity []byte }
	list := make([]entry, 0, len(tokens))
	for tok, id := range tokens {
		list = append(list, entry{[]byte(tok), []byte(id)})
	}
	return func(_ context.Context, p *Peer) (string, error) {
		var found []byte
		for _, e := range list {
			if subtle.ConstantTimeCompare(e.token, p.Token) == 1 && len(e.token) > 0 {
				found = e.identity
			}
		}
		if found == nil {
			return "", errors.New("invalid token")
		}
		return string(found), nil
	}
}

// CertAuthenticator is an Authenticator for mutual TLS: a peer's identity is
// the Subject Common Name of its verified client certificate. The server's
// tls.Config (WithServerTLS) must verify client certificates
// (ClientAuth: tls.RequireAndVerifyClientCert, with ClientCAs); a peer
// without a verified certificate, or on a connection without TLS, is
// refused.
func CertAuthenticator(_ context.Context, p *Peer) (string, error) {
	if p.TLS == nil {
		return "", errors.New("not a TLS connection")
	}
	if len(p.TLS.VerifiedChains) == 0 || len(p.TLS.VerifiedChains[0]) == 0 {
		return "", errors.New("no verified client certificate")
	}
	cn := p.TLS.VerifiedChains[0][0].Subject.CommonName
	if cn == "" {
		return "", errors.New("client certificate without a common name")
	}
	return cn, nil
}

// WithToken makes the client send token as its credential in every
// handshake (see TokenAuthenticator on the server).
func WithToken(token string) ClientOption {
	return func(o *clientOpts) { o.token = []byte(token) }
}

// WithTokenFunc makes the client ask fn for its credential before every
// handshake, so that a token can be refreshed between reconnections; ctx is
// bounded by the dial timeout. An error fails that connection attempt with
// ErrUnauthenticated (Dial returns it; a reconnecting client tries again
// after its backoff, while a server's refusal stops it).
func WithTokenFunc(fn func(ctx context.Context) (string, error)) ClientOption {
	return func(o *clientOpts) { o.sec.tokenFn = fn }
}

// credentials returns the token to send in a handshake.
func (c *Client) credentials(ctx context.Context) ([]byte, error) {
	return c.opts.credentials(ctx)
}

// credentials returns the token the options say to send.
func (o *clientOpts) credentials(ctx context.Context) ([]byte, error) {
	if fn := o.sec.tokenFn; fn != nil {
		tok, err := fn(ctx)
		if err != nil {
			return nil, fmt.Errorf("%w: credentials: %w", ErrUnauthenticated, err)
		}
		return []byte(tok), nil
	}
	return o.token, nil
}

// identityKey stores a connection's authenticated identity among its values.
var identityKey = new(byte)

// connIdentity returns the identity of a connection that completed its
// handshake ("" before).
func connIdentity(c *rpc2.Conn) string {
	id, _ := c.Value(identityKey).(string)
	return id
}

// admit authenticates a handshake and looks up the identity's permissions.
// A refused peer gets a coded error and its connection is closed after the
// reply.
func (s *Server) admit(ctx context.Context, c *rpc2.Conn, m *msgHandshake) (string, *grant, error) {
	identity := m.ClientID
	if auth := s.opts.sec.auth; auth != nil {
		p := &Peer{ClientID: m.ClientID, Token: m.Token, Addr: c.RemoteAddr()}
		if tc, ok := c.NetConn().(interface{ ConnectionState() tls.ConnectionState }); ok {
			st := tc.ConnectionState()
			p.TLS = &st
		}
		id, err := callAuth(ctx, auth, p)
		if err != nil {
			s.stats.refusedAuth.Add(1)
			s.opts.logger.Warn("arpc: peer refused", "addr", c.RemoteAddr(), "client", m.ClientID, "err", err)
			s.refuse(c)
			return "", nil, codeErr(CodeUnauthenticated, "%s", truncate(err.Error(), 256))
		}
		identity = id
	}
	g, err := s.permissions(ctx, identity)
	if err != nil {
		s.stats.forbidden.Add(1)
		s.opts.logger.Warn("arpc: identity refused by the policy", "addr", c.RemoteAddr(), "identity", identity, "err", err)
		s.refuse(c)
		return "", nil, codeErr(CodeForbidden, "%s", truncate(err.Error(), 256))
	}
	return identity, g, nil
}

// callAuth runs the authenticator, turning a panic into a refusal.
func callAuth(ctx context.Context, auth Authenticator, p *Peer) (id string, err error) {
	defer func() {
		if r := recover(); r != nil {
			id, err = "", fmt.Errorf("authenticator panicked: %v", r)
		}
	}()
	return auth(ctx, p)
}

// refuse closes a connection whose handshake was refused, once the refusal
// is written (the peer reads it, then end of stream), and at the latest
// after refuseGrace.
func (s *Server) refuse(c *rpc2.Conn) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		ctx, cancel := context.WithTimeout(context.Background(), refuseGrace)
		defer cancel()
		_ = c.Shutdown(ctx)
	}()
}

// refuseGrace bounds how long a refused peer may take to close its end.
const refuseGrace = time.Second

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// refusedForGood reports a connection failure that trying again won't fix: a
// schema mismatch, or credentials the server refused.
func refusedForGood(err error) bool {
	return errors.Is(err, ErrSchemaMismatch) || (errors.Is(err, ErrUnauthenticated) && errors.Is(err, ErrRpc))
}

// securityErr maps the security refusals to this package's errors (nil for
// other codes). Handshake refusals also wrap ErrRpc: they are not network
// failures.
func securityErr(re *rpc2.Error) error {
	switch re.Code {
	case CodeUnauthenticated:
		return fmt.Errorf("%w: %w: %s", ErrUnauthenticated, ErrRpc, re.Message)
	case CodeForbidden:
		return fmt.Errorf("%w: %s", ErrForbidden, re.Message)
	case CodeTooManySessions:
		return fmt.Errorf("%w: %w: %s", ErrTooManySessions, ErrRpc, re.Message)
	}
	return nil
}
