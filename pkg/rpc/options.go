package rpc

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"time"

	am "github.com/arpc-go/arpc/pkg/machine"
)

// Default settings of servers and clients.
const (
	// DefaultPushInterval is how long a server gathers source changes before it
	// pushes them to a client. A pending change is always pushed.
	DefaultPushInterval = 5 * time.Millisecond
	// DefaultCallTimeout bounds every remote call of a Client and its Worker.
	DefaultCallTimeout = 10 * time.Second
	// DefaultDialTimeout bounds connecting and the handshake.
	DefaultDialTimeout = 5 * time.Second
	// DefaultMaxMessageSize caps each frame on the wire, both ways.
	DefaultMaxMessageSize = 4 << 20
	// DefaultMaxWatches caps the remote WhenArgs watches of one session.
	DefaultMaxWatches = 1024
	// DefaultMaxPending caps the unacknowledged mutation results of one
	// session (WithMaxPending).
	DefaultMaxPending = 1 << 14
	// DefaultResumeBuffer is how many updates a session keeps for a client
	// that resumes (WithResumeBuffer).
	DefaultResumeBuffer = 64
	// DefaultSessionTTL is how long a session waits for its client to come
	// back (WithSessionTTL).
	DefaultSessionTTL = 30 * time.Second
	// DefaultKeepalive is how long a connection may be silent before it is
	// pinged; silence for twice as long ends it.
	DefaultKeepalive = 10 * time.Second
	// DefaultMaxErrorText caps the length of the source's error text sent
	// to clients.
	DefaultMaxErrorText = 4 << 10
	// DefaultMinBackoff and DefaultMaxBackoff bound the jittered
	// exponential delay between a client's reconnection attempts.
	DefaultMinBackoff = 50 * time.Millisecond
	DefaultMaxBackoff = 5 * time.Second
)

// ServerOption configures a Server. Options are applied once, in NewServer.
type ServerOption func(*serverOpts)

type serverOpts struct {
	pushInterval   time.Duration
	listener       net.Listener
	logger         *slog.Logger
	maxMessageSize int
	maxWatches     int
	maxPending     int
	resumeBuffer   int
	sessionTTL     time.Duration
	keepalive      time.Duration
	goodbyeTimeout time.Duration
	maxErrText     int
	getter         GetterFunc
	sec            serverSec
	maxRequests    int
	abandonedTTL   time.Duration
	lateAnswer     func(id string, args am.A)
	// introspectionOff refuses Describe and Stats (WithIntrospection)
	introspectionOff bool
}

func defaultServerOpts() serverOpts {
	return serverOpts{
		pushInterval:   DefaultPushInterval,
		maxMessageSize: DefaultMaxMessageSize,
		maxWatches:     DefaultMaxWatches,
		maxPending:     DefaultMaxPending,
		resumeBuffer:   DefaultResumeBuffer,
		sessionTTL:     DefaultSessionTTL,
		keepalive:      DefaultKeepalive,
		goodbyeTimeout: DefaultCallTimeout,
		maxErrText:     DefaultMaxErrorText,
		sec:            defaultServerSec(),
		maxRequests:    DefaultMaxRequests,
		abandonedTTL:   DefaultAbandonedTTL,
	}
}

func (o *serverOpts) validate() error {
	if o.logger == nil {
		o.logger = discardLogger()
	}
	if o.maxMessageSize <= 0 || o.maxWatches <= 0 || o.maxPending <= 0 || o.resumeBuffer < 0 ||
		o.sessionTTL < 0 || o.keepalive < 0 || o.maxErrText <= 0 || o.maxRequests <= 0 || o.abandonedTTL < 0 {
		return fmt.Errorf("%w: limits must be positive", ErrInvalidParams)
	}
	return o.sec.validate(o.keepalive)
}

// WithPushInterval sets how long the server gathers changes of the source
// machine before pushing them to a client (0 pushes at once). Changes caused by
// a client's own mutation travel right before its reply instead.
func WithPushInterval(d time.Duration) ServerOption {
	return func(o *serverOpts) { o.pushInterval = max(d, 0) }
}

// WithListener makes the server accept on l instead of listening on addr.
// The server closes l when it stops.
func WithListener(l net.Listener) ServerOption {
	return func(o *serverOpts) { o.listener = l }
}

// WithServerLogger sets a logger for connection-level events. The default
// discards everything.
func WithServerLogger(l *slog.Logger) ServerOption {
	return func(o *serverOpts) { o.logger = l }
}

// WithServerMaxMessageSize caps each frame the server reads.
func WithServerMaxMessageSize(n int) ServerOption {
	return func(o *serverOpts) { o.maxMessageSize = n }
}

// WithMaxWatches caps the remote WhenArgs watches one client may hold.
func WithMaxWatches(n int) ServerOption {
	return func(o *serverOpts) { o.maxWatches = n }
}

// WithMaxPending caps the mutation results one session keeps for clients
// that have not acknowledged them yet (they may still retry). At the cap,
// new mutations of that client are refused (ErrTooManyPending), and nothing
// remembered is forgotten.
func WithMaxPending(n int) ServerOption {
	return func(o *serverOpts) { o.maxPending = n }
}

// WithSessionTTL sets how long a session waits for its client to reconnect
// and resume after its connection dropped (0: sessions end with their
// connection, so reconnecting clients always resync fully).
func WithSessionTTL(d time.Duration) ServerOption {
	return func(o *serverOpts) { o.sessionTTL = d }
}

// WithResumeBuffer sets how many of its latest updates a session keeps so
// that a resuming client gets just what it missed; a client further behind
// gets the whole clock.
func WithResumeBuffer(n int) ServerOption {
	return func(o *serverOpts) { o.resumeBuffer = n }
}

// WithServerKeepalive sets how long a connection may be silent before the
// server pings it; a client silent for twice that is disconnected (0
// disables keepalive).
func WithServerKeepalive(d time.Duration) ServerOption {
	return func(o *serverOpts) { o.keepalive = d }
}

// WithGetter sets the function that answers Client.Get (for Listen; NewServer
// takes it as a parameter).
func WithGetter(g GetterFunc) ServerOption {
	return func(o *serverOpts) { o.getter = g }
}

// ClientOption configures a Client. Options are applied once, in NewClient.
type ClientOption func(*clientOpts)

// Dialer opens the client's connection, e.g. over TLS or an in-memory pipe.
type Dialer func(ctx context.Context, addr string) (net.Conn, error)

type clientOpts struct {
	callTimeout    time.Duration
	dialTimeout    time.Duration
	dialer         Dialer
	logger         *slog.Logger
	maxMessageSize int
	retries        int
	keepalive      time.Duration
	reconnect      bool
	minBackoff     time.Duration
	maxBackoff     time.Duration
	token          []byte
	sec            clientSec
	maxRequests    int
	follow         followOpts
}

func defaultClientOpts() clientOpts {
	return clientOpts{
		callTimeout:    DefaultCallTimeout,
		dialTimeout:    DefaultDialTimeout,
		maxMessageSize: DefaultMaxMessageSize,
		keepalive:      DefaultKeepalive,
		reconnect:      true,
		minBackoff:     DefaultMinBackoff,
		maxBackoff:     DefaultMaxBackoff,
		maxRequests:    DefaultMaxRequests,
	}
}

func (o *clientOpts) validate() error {
	if o.logger == nil {
		o.logger = discardLogger()
	}
	if o.callTimeout <= 0 || o.dialTimeout <= 0 || o.maxMessageSize <= 0 || o.keepalive < 0 ||
		o.minBackoff <= 0 || o.maxBackoff < o.minBackoff || o.maxRequests <= 0 {
		return fmt.Errorf("%w: timeouts and limits must be positive (and max backoff ≥ min)", ErrInvalidParams)
	}
	if o.dialer == nil {
		d := &net.Dialer{}
		o.dialer = func(ctx context.Context, addr string) (net.Conn, error) {
			return d.DialContext(ctx, "tcp", addr)
		}
	}
	return o.validateSec()
}

// WithCallTimeout bounds every remote call of the client and its Worker
// (for Mutate, also the caller's ctx does).
func WithCallTimeout(d time.Duration) ClientOption {
	return func(o *clientOpts) { o.callTimeout = d }
}

// WithDialTimeout bounds connecting and the handshake.
func WithDialTimeout(d time.Duration) ClientOption {
	return func(o *clientOpts) { o.dialTimeout = d }
}

// WithDialer replaces the default TCP dialer.
func WithDialer(d Dialer) ClientOption {
	return func(o *clientOpts) { o.dialer = d }
}

// WithClientLogger sets a logger for connection-level events. The default
// discards everything.
func WithClientLogger(l *slog.Logger) ClientOption {
	return func(o *clientOpts) { o.logger = l }
}

// WithClientMaxMessageSize caps each frame the client reads.
func WithClientMaxMessageSize(n int) ClientOption {
	return func(o *clientOpts) { o.maxMessageSize = n }
}

// WithRetries makes a mutation whose connection failed or timed out be sent
// again, up to n more times, with the same request ID: on the same
// connection, or on the next one once the client has reconnected and resumed
// its session. The server runs it at most once and answers every attempt
// with that one outcome. A server that restarted meanwhile can't know about
// the first attempt, so then the call fails instead (outcome unknown).
func WithRetries(n int) ClientOption {
	return func(o *clientOpts) { o.retries = max(n, 0) }
}

// WithClientKeepalive sets how long the connection may be silent before the
// client pings the server; a server silent for twice that is treated as
// gone, and the client reconnects (0 disables keepalive).
func WithClientKeepalive(d time.Duration) ClientOption {
	return func(o *clientOpts) { o.keepalive = d }
}

// WithReconnect turns reconnecting on (the default) or off. When on, a
// client whose connection drops reconnects with jittered exponential
// backoff between minBackoff and maxBackoff (0 keeps the defaults), until
// Close.
func WithReconnect(on bool, minBackoff, maxBackoff time.Duration) ClientOption {
	return func(o *clientOpts) {
		o.reconnect = on
		if minBackoff > 0 {
			o.minBackoff = minBackoff
		}
		if maxBackoff > 0 {
			o.maxBackoff = maxBackoff
		}
	}
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
