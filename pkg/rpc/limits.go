package rpc

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/arpc-go/arpc/pkg/rpc2"
)

// Defaults of the limits that protect a server from its peers.
const (
	// DefaultHandshakeTimeout bounds the time from accepting a connection to
	// the end of its handshake (TLS included).
	DefaultHandshakeTimeout = 10 * time.Second
	// DefaultIdleTimeout is how long a connection may go without sending a
	// whole frame (with the keepalive on, a healthy client answers pings, so
	// it never idles out). See WithIdleTimeout.
	DefaultIdleTimeout = 60 * time.Second
	// DefaultWriteTimeout is how long a write to a client may stay blocked
	// before the client counts as not reading and is disconnected.
	DefaultWriteTimeout = 30 * time.Second
	// DefaultMaxConns caps the connections a server keeps open at once.
	DefaultMaxConns = 4096
	// DefaultMaxSessions caps the sessions (connected, or waiting for their
	// client to resume) a server keeps.
	DefaultMaxSessions = 4096
	// DefaultMaxSessionsPerIdentity caps the sessions of one identity.
	DefaultMaxSessionsPerIdentity = 64
	// DefaultMaxPayloads is how many payloads a client keeps (by name).
	DefaultMaxPayloads = 64
)

// serverSec holds the security options of a server.
type serverSec struct {
	auth                Authenticator
	policy              Policy
	tls                 *tls.Config
	handshakeTimeout    time.Duration
	idleTimeout         time.Duration // < 0: the default, see idle
	writeTimeout        time.Duration
	maxConns            int
	maxSessions         int
	maxSessionsPerIdent int
}

func defaultServerSec() serverSec {
	return serverSec{
		handshakeTimeout:    DefaultHandshakeTimeout,
		idleTimeout:         -1,
		writeTimeout:        DefaultWriteTimeout,
		maxConns:            DefaultMaxConns,
		maxSessions:         DefaultMaxSessions,
		maxSessionsPerIdent: DefaultMaxSessionsPerIdentity,
	}
}

func (o *serverSec) validate(keepalive time.Duration) error {
	if o.handshakeTimeout < 0 || o.writeTimeout < 0 || o.maxConns <= 0 || o.maxSessions <= 0 ||
		o.maxSessionsPerIdent <= 0 {
		return fmt.Errorf("%w: security limits must be positive", ErrInvalidParams)
	}
	if o.tls != nil && len(o.tls.Certificates) == 0 && o.tls.GetCertificate == nil && o.tls.GetConfigForClient == nil {
		return fmt.Errorf("%w: WithServerTLS: the config has no certificate", ErrInvalidParams)
	}
	if o.idleTimeout < 0 {
		// the default: idle peers answer pings every keepalive interval
		o.idleTimeout = 0
		if keepalive > 0 {
			o.idleTimeout = max(DefaultIdleTimeout, 3*keepalive)
		}
	}
	return nil
}

// rpc2 returns the rpc2 options that enforce the limits.
func (o *serverSec) rpc2(gate rpc2.GateFunc) []rpc2.Option {
	return []rpc2.Option{
		rpc2.WithGate(gate),
		rpc2.WithGateTimeout(o.handshakeTimeout),
		rpc2.WithIdleTimeout(o.idleTimeout),
		rpc2.WithWriteTimeout(o.writeTimeout),
	}
}

// WithHandshakeTimeout bounds the time a connection has, from being
// accepted, to complete its handshake (the TLS handshake, credentials, the
// aRPC handshake): a connection still without a session after d is closed,
// however slowly it sends (counted in Stats.HandshakeTimeouts). Until then
// the server decodes nothing the peer sends but the handshake (0: no limit;
// default DefaultHandshakeTimeout).
func WithHandshakeTimeout(d time.Duration) ServerOption {
	return func(o *serverOpts) { o.sec.handshakeTimeout = d }
}

// WithIdleTimeout closes a connection from which no whole frame has arrived
// for d (counted in Stats.IdleTimeouts): a client that trickles bytes
// without ever completing a message. Keepalive pings are answered with
// whole frames, so a healthy idle client is never closed while the server's
// keepalive interval (WithServerKeepalive) is below d. The default is the
// larger of DefaultIdleTimeout and three keepalive intervals, and off when
// the keepalive is off; 0 turns it off.
func WithIdleTimeout(d time.Duration) ServerOption {
	return func(o *serverOpts) { o.sec.idleTimeout = max(d, 0) }
}

// WithWriteTimeout disconnects a client that does not read: once a write to
// it (at most 64 KiB at a time) has been blocked for d, its connection is
// closed (counted in Stats.SlowPeers and logged with its identity). Until
// then what is sent to it waits in its connection's write buffer (at most 1
// MiB; updates are merged diffs, so they don't pile up) and no other client
// is slowed. 0 turns it off; the default is DefaultWriteTimeout.
func WithWriteTimeout(d time.Duration) ServerOption {
	return func(o *serverOpts) { o.sec.writeTimeout = d }
}

// WithMaxConns caps the connections the server keeps open at once; one
// accepted beyond it is closed at once (counted in Stats.RefusedConns), and
// a client that met it retries with its backoff. The default is
// DefaultMaxConns.
func WithMaxConns(n int) ServerOption {
	return func(o *serverOpts) { o.sec.maxConns = n }
}

// WithMaxSessions caps the sessions the server keeps (connected, or waiting
// for their client to resume); a handshake that would create one more is
// refused with ErrTooManySessions and its connection closed (counted in
// Stats.RefusedSessions). The default is DefaultMaxSessions.
func WithMaxSessions(n int) ServerOption {
	return func(o *serverOpts) { o.sec.maxSessions = n }
}

// WithMaxSessionsPerIdentity caps the sessions of one identity, as
// WithMaxSessions caps them all; 1 makes a second client with an identity
// already connected (or resumable) be refused. A client that resumes its
// own session does not count twice. The default is
// DefaultMaxSessionsPerIdentity.
func WithMaxSessionsPerIdentity(n int) ServerOption {
	return func(o *serverOpts) { o.sec.maxSessionsPerIdent = n }
}

// Stats are a server's counters of refused and dropped peers, for
// monitoring. Counts are since the server was created.
type Stats struct {
	// Conns is the number of connections open now.
	Conns int
	// Sessions is the number of sessions now, connected or not.
	Sessions int
	// RefusedConns counts connections closed at once because of WithMaxConns.
	RefusedConns uint64
	// RefusedAuth counts handshakes the Authenticator refused.
	RefusedAuth uint64
	// RefusedSessions counts handshakes refused by WithMaxSessions or
	// WithMaxSessionsPerIdentity.
	RefusedSessions uint64
	// Forbidden counts requests (and identities) the Policy refused.
	Forbidden uint64
	// HandshakeTimeouts counts connections closed by WithHandshakeTimeout.
	HandshakeTimeouts uint64
	// IdleTimeouts counts connections closed by WithIdleTimeout.
	IdleTimeouts uint64
	// SlowPeers counts clients disconnected for not reading
	// (WithWriteTimeout).
	SlowPeers uint64
	// Traffic counts mutations, updates, bytes and errors.
	Traffic
}

// serverStats are the counters behind Stats.
type serverStats struct {
	conns                      atomic.Int64
	refusedConns, refusedAuth  atomic.Uint64
	refusedSessions, forbidden atomic.Uint64
	handshakeTimeouts, idle    atomic.Uint64
	slowPeers                  atomic.Uint64
	traffic                    traffic
}

// Stats returns the server's counters. Safe for concurrent use.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	sessions := len(s.sessions)
	s.mu.Unlock()
	st := &s.stats
	return Stats{
		Conns:             int(st.conns.Load()),
		Sessions:          sessions,
		RefusedConns:      st.refusedConns.Load(),
		RefusedAuth:       st.refusedAuth.Load(),
		RefusedSessions:   st.refusedSessions.Load(),
		Forbidden:         st.forbidden.Load(),
		HandshakeTimeouts: st.handshakeTimeouts.Load(),
		IdleTimeouts:      st.idle.Load(),
		SlowPeers:         st.slowPeers.Load(),
		Traffic:           st.traffic.snapshot(),
	}
}

// gate admits only the handshake (and Describe, which authenticates as the
// handshake does) on a connection without a session: nothing else the peer
// sends is decoded before it (see rpc2.WithGate).
func (s *Server) gate(_ *rpc2.Conn, m rpc2.Method) error {
	if m == mHandshake || m == mDescribe {
		return nil
	}
	return errNoSession
}

var errNoSession = codeErr(CodeNoSession, "no session: handshake first")

// admitConn counts a new connection against WithMaxConns and wraps it: in
// TLS if configured, and so that closing it releases its slot. It closes a
// connection over the cap and returns false.
func (s *Server) admitConn(nc net.Conn) (net.Conn, bool) {
	if s.stats.conns.Add(1) > int64(s.opts.sec.maxConns) {
		s.stats.conns.Add(-1)
		s.stats.refusedConns.Add(1)
		s.opts.logger.Warn("arpc: connection refused: too many connections", "addr", nc.RemoteAddr(),
			"max", s.opts.sec.maxConns)
		_ = nc.Close()
		return nil, false
	}
	nc = &countedConn{Conn: nc, release: func() { s.stats.conns.Add(-1) }, traffic: &s.stats.traffic}
	if cfg := s.opts.sec.tls; cfg != nil {
		nc = tls.Server(nc, cfg)
	}
	return nc, true
}

// countedConn releases its connection slot once, when closed.
type countedConn struct {
	net.Conn
	once    sync.Once
	release func()
	traffic *traffic
}

func (c *countedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}

// CloseWrite half-closes the transport if it can (rpc2's graceful end).
func (c *countedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errors.ErrUnsupported
}

// guardedListener applies admitConn to every accepted connection.
type guardedListener struct {
	net.Listener
	s *Server
}

func (l guardedListener) Accept() (net.Conn, error) {
	for {
		nc, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if c, ok := l.s.admitConn(nc); ok {
			return c, nil
		}
	}
}

// connEnded counts and logs why a connection ended, then detaches its
// session (the rpc2 server's OnDisconnect hook).
func (s *Server) connEnded(conn *rpc2.Conn, err error) {
	reason := ""
	switch {
	case errors.Is(err, rpc2.ErrGateTimeout):
		s.stats.handshakeTimeouts.Add(1)
		reason = "no handshake in time"
	case errors.Is(err, rpc2.ErrIdle):
		s.stats.idle.Add(1)
		reason = "idle"
	case errors.Is(err, rpc2.ErrSlowPeer):
		s.stats.slowPeers.Add(1)
		reason = "not reading"
	}
	if reason != "" {
		s.opts.logger.Warn("arpc: client disconnected: "+reason, "addr", conn.RemoteAddr(),
			"identity", connIdentity(conn), "err", err)
	}
	s.onDisconnect(conn, err)
}

// sessionRoomLocked checks, under s.mu, that a new session of identity fits
// the caps.
// addSessionLocked registers a new session.
func (s *Server) addSessionLocked(se *session) {
	s.sessions[se.id] = se
	s.perIdentity[se.identity]++
}

// removeSessionLocked unregisters a session.
func (s *Server) removeSessionLocked(se *session) {
	if s.sessions[se.id] != se {
		return
	}
	delete(s.sessions, se.id)
	if s.perIdentity[se.identity]--; s.perIdentity[se.identity] <= 0 {
		delete(s.perIdentity, se.identity)
	}
}

func (s *Server) sessionRoomLocked(identity string) error {
	if len(s.sessions) >= s.opts.sec.maxSessions {
		s.stats.refusedSessions.Add(1)
		return codeErr(CodeTooManySessions, "the server holds %d sessions", len(s.sessions))
	}
	if n := s.perIdentity[identity]; n >= s.opts.sec.maxSessionsPerIdent {
		s.stats.refusedSessions.Add(1)
		return codeErr(CodeTooManySessions, "%s holds %d sessions", identity, n)
	}
	return nil
}

// clientSec holds the security options of a client.
type clientSec struct {
	tls         *tls.Config
	tokenFn     func(ctx context.Context) (string, error)
	maxPayloads int
}

func (o *clientOpts) validateSec() error {
	if o.sec.maxPayloads == 0 {
		o.sec.maxPayloads = DefaultMaxPayloads
	}
	if o.sec.maxPayloads < 0 {
		return fmt.Errorf("%w: WithMaxPayloads: negative", ErrInvalidParams)
	}
	if o.sec.tls != nil {
		o.dialer = tlsDialer(o.dialer, o.sec.tls)
	}
	return nil
}

// WithMaxPayloads caps the payloads a client keeps (Client.Payloads), the
// last one per name: when a new name arrives at the cap, the payload that
// arrived longest ago is dropped (counted by Client.DroppedPayloads). The
// default is DefaultMaxPayloads.
func WithMaxPayloads(n int) ClientOption {
	return func(o *clientOpts) { o.sec.maxPayloads = n }
}

// abortAttach undoes the attach of a session to a connection that failed
// during its handshake: no disconnect hook will find the session on the
// connection, so it is detached here. A session made by this handshake ends
// at once (the client never learnt its ID); a resumed one waits for its
// client as after any drop.
func (s *Server) abortAttach(se *session, c *rpc2.Conn, created bool) {
	detached, expireNow := se.detach(c)
	if created || expireNow {
		s.expire(se)
	}
	if detached {
		s.syncConnected()
	}
}
