package rpc

import (
	"context"
	"log/slog"
	"net"
	"time"
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
)

// ServerOption configures a Server. Options are applied once, in NewServer.
type ServerOption func(*serverOpts)

type serverOpts struct {
	pushInterval   time.Duration
	listener       net.Listener
	logger         *slog.Logger
	maxMessageSize int
	maxWatches     int
}

// WithPushInterval sets how long the server gathers changes of the source
// machine before pushing them to a client (0 pushes at once). Changes caused by
// a client's own mutation travel in the reply instead.
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
	resyncAfter    time.Duration
}

// WithCallTimeout bounds every remote call of the client and its Worker.
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

// WithRetries makes a mutation that timed out be sent again, up to n more
// times, with the same request ID: the server runs it once and answers every
// attempt with that one result.
func WithRetries(n int) ClientOption {
	return func(o *clientOpts) { o.retries = max(n, 0) }
}

// WithResyncAfter sets how long the mirror waits for a missing clock update
// before it resynchronises the whole clock.
func WithResyncAfter(d time.Duration) ClientOption {
	return func(o *clientOpts) { o.resyncAfter = d }
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
