package rpc2

import (
	"fmt"
	"log/slog"
	"time"
)

// Defaults for the options.
const (
	// DefaultMaxMessageSize is the default limit on one frame, header included.
	DefaultMaxMessageSize = 4 << 20
	// DefaultMaxConcurrency is the default number of non-ordered handlers that
	// may run at once for one connection.
	DefaultMaxConcurrency = 64
	// DefaultRequestWindow is the default number of requests and
	// notifications a peer may have outstanding on one connection.
	DefaultRequestWindow = 256

	maxWindow = 1 << 20

	// maxMessageLimit caps WithMaxMessageSize; frame lengths then fit in a
	// 5-byte uvarint.
	maxMessageLimit = 1 << 30
	minMessageLimit = 64
)

// Option configures a Conn or a Server. Options are applied and validated
// once, in NewConn or NewServer; a running object never changes its
// configuration. An invalid option makes NewConn return an already-ended
// Conn whose Err wraps ErrInvalid, and makes Server.Serve and
// Server.ServeConn return such an error.
type Option struct {
	apply func(*config) error
}

// config is the validated configuration shared (read-only) by a Server and
// its connections.
type config struct {
	maxMessage     int
	maxConcurrency int
	window         int
	newCodec       func() Codec
	log            *slog.Logger
	onConnect      func(*Conn)
	onDisconnect   func(*Conn, error)
	onDrained      func(*Conn)
	callTimeout    time.Duration
	keepalive      time.Duration
	limits         limits
}

func newConfig(opts []Option) (*config, error) {
	cfg := &config{
		maxMessage:     DefaultMaxMessageSize,
		maxConcurrency: DefaultMaxConcurrency,
		window:         DefaultRequestWindow,
		newCodec:       NewGobCodec,
		log:            slog.New(slog.DiscardHandler),
		keepalive:      DefaultKeepalive,
	}
	for _, o := range opts {
		if o.apply == nil {
			continue
		}
		if err := o.apply(cfg); err != nil {
			return cfg, err
		}
	}
	return cfg, nil
}

// WithMaxMessageSize limits the size of one frame (header and body) in both
// directions: an outgoing message over it fails its call with ErrTooLarge, an
// incoming frame over it closes the connection (before anything of that size
// is allocated). n must be in [64, 1 GiB]; the default is 4 MiB. Both ends
// should use the same limit.
func WithMaxMessageSize(n int) Option {
	return Option{func(c *config) error {
		if n < minMessageLimit || n > maxMessageLimit {
			return fmt.Errorf("%w: WithMaxMessageSize(%d): want %d..%d", ErrInvalid, n, minMessageLimit, maxMessageLimit)
		}
		c.maxMessage = n
		return nil
	}}
}

// WithMaxConcurrency bounds how many non-ordered handlers run at once for one
// connection (default 64). Requests beyond it wait for a slot (their number
// is bounded by WithRequestWindow). n must be in [1, 65536].
func WithMaxConcurrency(n int) Option {
	return Option{func(c *config) error {
		if n < 1 || n > 1<<16 {
			return fmt.Errorf("%w: WithMaxConcurrency(%d): want 1..65536", ErrInvalid, n)
		}
		c.maxConcurrency = n
		return nil
	}}
}

// WithRequestWindow sets how many requests and notifications the peer may
// have outstanding on this connection: received and not yet finished
// (running, or waiting for a handler slot or for the ordered worker). The
// window is announced to the peer when the connection starts; the peer's
// Call, Go and Notify wait while it is used up, and a peer that exceeds it
// is disconnected with ErrProtocol. So the read loop never waits for
// handlers, replies are always read, and memory stays bounded. The default
// is 256; n must be in [1, 1<<20].
func WithRequestWindow(n int) Option {
	return Option{func(c *config) error {
		if n < 1 || n > maxWindow {
			return fmt.Errorf("%w: WithRequestWindow(%d): want 1..%d", ErrInvalid, n, maxWindow)
		}
		c.window = n
		return nil
	}}
}

// WithCallTimeout bounds every Call and Go of a connection: a call without a
// reply after d fails with an error wrapping ErrTimeout and
// context.DeadlineExceeded, and its late reply is discarded. It is the cheap
// way to bound calls: a per-call context with a deadline costs a timer and a
// hand-off to the writer goroutine, while this costs a clock read per call and
// one sweep of the pending calls every d/16 (at least 1 ms). 0 (the default)
// means no limit beyond each call's ctx.
func WithCallTimeout(d time.Duration) Option {
	return Option{func(c *config) error {
		if d < 0 {
			return fmt.Errorf("%w: WithCallTimeout(%s): negative", ErrInvalid, d)
		}
		c.callTimeout = d
		return nil
	}}
}

// WithKeepalive sets the keepalive interval d (default 10 s; 0 disables
// keepalive). An end that has read nothing from the peer for d sends a ping,
// which the peer answers at once from its read loop; an end that has read
// nothing at all (no frame, no byte) for 2×d ends the connection with an
// error wrapping ErrConnLost and ErrKeepalive. So a peer that vanished
// without closing the transport (a crashed host, a dropped route) is noticed
// within about 2×d, and an idle but healthy connection stays up. The check
// runs on the connection's timers, every d/4. It measures what
// the read loop reads, so an Inline handler that blocks the read loop for 2×d
// ends its connection too. Each end applies its own interval; d must be 0 or
// at least 1 ms.
func WithKeepalive(d time.Duration) Option {
	return Option{func(c *config) error {
		if d < 0 || (d > 0 && d < time.Millisecond) {
			return fmt.Errorf("%w: WithKeepalive(%s): want 0 (off) or at least 1ms", ErrInvalid, d)
		}
		c.keepalive = d
		return nil
	}}
}

// WithCodec sets the codec factory; it is called once per connection. The
// default is NewGobCodec.
func WithCodec(f func() Codec) Option {
	return Option{func(c *config) error {
		if f == nil {
			return fmt.Errorf("%w: WithCodec(nil)", ErrInvalid)
		}
		c.newCodec = f
		return nil
	}}
}

// WithLogger sets the logger for events that have no caller to report to:
// handler panics, failed notifications, connection ends. The default
// discards everything.
func WithLogger(l *slog.Logger) Option {
	return Option{func(c *config) error {
		if l == nil {
			return fmt.Errorf("%w: WithLogger(nil)", ErrInvalid)
		}
		c.log = l
		return nil
	}}
}

// WithOnConnect sets a Server hook called for each new connection after it is
// set up and before its first request is handled (replies are already read,
// so the hook may call the peer). It runs on the connection's serving
// goroutine. NewConn ignores it.
func WithOnConnect(fn func(*Conn)) Option {
	return Option{func(c *config) error {
		c.onConnect = fn
		return nil
	}}
}

// WithOnDrained sets a Server hook called once for each connection that
// Shutdown drains, when no request is in flight on it any more (their
// replies are queued) and before its write side ends: the last chance to
// send, for example a goodbye. Frames it sends with Notify or Queue reach
// the peer after every reply. It may run on the connection's read loop, so
// it must not wait for a reply (Call); Shutdown's ctx bounds its sends, as
// the connection closes when ctx ends. NewConn ignores it.
func WithOnDrained(fn func(*Conn)) Option {
	return Option{func(c *config) error {
		c.onDrained = fn
		return nil
	}}
}

// WithOnDisconnect sets a Server hook called once per connection after it
// has ended (all its goroutines have exited), with the end error (Conn.Err).
// It runs after OnConnect returned, on the same goroutine. NewConn ignores it.
func WithOnDisconnect(fn func(*Conn, error)) Option {
	return Option{func(c *config) error {
		c.onDisconnect = fn
		return nil
	}}
}
