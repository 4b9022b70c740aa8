package arpcnats

import (
	"fmt"
	"log/slog"
	"time"

	am "github.com/arpc-go/arpc/pkg/machine"
)

// Option configures Serve. Options are validated once, by Serve: a bad
// value fails it with an error wrapping am.ErrInvalidArgs (ErrInvalidID
// for a bucket name).
type Option func(*serverOpts)

type serverOpts struct {
	bucket       string
	replicas     int
	ackPersisted bool
	lease        time.Duration
	heartbeat    time.Duration
	dedup        int
	maxRequest   int
	persistEvery time.Duration
	maxWaits     int
	instance     string
	log          *slog.Logger
}

func defaultServerOpts() serverOpts {
	return serverOpts{
		bucket:       "arpc",
		replicas:     1,
		lease:        2 * time.Second,
		heartbeat:    time.Second,
		dedup:        1024,
		maxRequest:   64 << 10,
		persistEvery: 5 * time.Millisecond,
		maxWaits:     10000,
	}
}

func (o *serverOpts) validate() error {
	switch {
	case !validID(o.bucket):
		return fmt.Errorf("%w: bucket %q", ErrInvalidID, o.bucket)
	case o.replicas < 1 || o.replicas > 5:
		return fmt.Errorf("%w: replicas %d not in 1..5", am.ErrInvalidArgs, o.replicas)
	case o.lease < 50*time.Millisecond:
		return fmt.Errorf("%w: lease %v under 50ms", am.ErrInvalidArgs, o.lease)
	case o.heartbeat <= 0:
		return fmt.Errorf("%w: heartbeat %v", am.ErrInvalidArgs, o.heartbeat)
	case o.persistEvery < 0:
		return fmt.Errorf("%w: persist interval %v", am.ErrInvalidArgs, o.persistEvery)
	case o.dedup < 1 || o.maxWaits < 1:
		return fmt.Errorf("%w: dedup size %d", am.ErrInvalidArgs, o.dedup)
	}
	return nil
}

// WithBucket names the JetStream KV bucket holding states, leases and
// durable waits (default "arpc"). Servers and mirrors of a machine must use
// the same one.
func WithBucket(name string) Option { return func(o *serverOpts) { o.bucket = name } }

// WithReplicas sets the bucket's replica count when Serve creates it
// (default 1; 3 on a 3-node cluster survives the loss of one node).
func WithReplicas(n int) Option { return func(o *serverOpts) { o.replicas = n } }

// WithAckPersisted makes a mutation's reply mean "persisted": the reply,
// and the update that shows the change to mirrors, are sent only after
// JetStream acknowledged the state write that contains the mutation and
// its dedup entry. Without it a reply means "applied by the leader"; the
// state is written right after, and a leader that dies in between loses
// the last acknowledged changes (mirrors then go back to the stored state).
func WithAckPersisted(on bool) Option { return func(o *serverOpts) { o.ackPersisted = on } }

// WithPersistInterval sets the least time between two state writes
// without WithAckPersisted (default 5ms): writes coalesce, so an
// acknowledged mutation is persisted within about this interval plus one
// JetStream write, and a leader that dies loses at most that window. With
// WithAckPersisted writes don't wait: each starts as soon as the previous
// one is acknowledged (group commit), and replies wait for them.
func WithPersistInterval(d time.Duration) Option { return func(o *serverOpts) { o.persistEvery = d } }

// WithLease sets how long a leader's lease lasts without renewal (default
// 2s). It renews every quarter of it; a standby takes over after a lease
// has not moved for this long, so it bounds the failover time.
func WithLease(d time.Duration) Option { return func(o *serverOpts) { o.lease = d } }

// WithHeartbeat sets how often an idle leader publishes its state again
// (default 1s), so mirrors that missed an update (a reconnect) catch up.
func WithHeartbeat(d time.Duration) Option { return func(o *serverOpts) { o.heartbeat = d } }

// WithDedupSize sets how many recent mutation outcomes are kept, and
// persisted, to answer retries (default 1024). The stored state must also
// fit in one NATS message: past that the oldest outcomes are forgotten
// (Server.Err wraps ErrTooLarge), as they are past this size.
func WithDedupSize(n int) Option { return func(o *serverOpts) { o.dedup = n } }

// WithInstance names this server process in the lease and in logs
// (default: random).
func WithInstance(name string) Option { return func(o *serverOpts) { o.instance = name } }

// WithLogger sets a logger for leadership changes and write failures
// (default: none).
func WithLogger(l *slog.Logger) Option { return func(o *serverOpts) { o.log = l } }

// MirrorOption configures NewMirror.
type MirrorOption func(*mirrorOpts)

type mirrorOpts struct {
	bucket      string
	retry       bool
	attempt     time.Duration
	callTimeout time.Duration
}

func defaultMirrorOpts() mirrorOpts {
	return mirrorOpts{bucket: "arpc", attempt: 5 * time.Second, callTimeout: 30 * time.Second}
}

func (o *mirrorOpts) validate() error {
	switch {
	case !validID(o.bucket):
		return fmt.Errorf("%w: bucket %q", ErrInvalidID, o.bucket)
	case o.attempt <= 0 || o.callTimeout <= 0:
		return fmt.Errorf("%w: timeouts must be positive", am.ErrInvalidArgs)
	}
	return nil
}

// WithMirrorBucket is WithBucket for a mirror.
func WithMirrorBucket(name string) MirrorOption { return func(o *mirrorOpts) { o.bucket = name } }

// WithRetry makes mutations survive a failover: a call that found no
// server, reached a server that is not the leader, or timed out is sent
// again, with the same request id, until it gets an answer or its ctx
// ends. The leader runs a request id at most once (its dedup table is
// persisted with the state), so a retry never applies a mutation twice.
// Without it such calls fail at once (ErrNoServer, ErrNotLeader,
// ErrTransport).
func WithRetry(on bool) MirrorOption { return func(o *mirrorOpts) { o.retry = on } }

// WithAttemptTimeout bounds one request attempt (default 5s).
func WithAttemptTimeout(d time.Duration) MirrorOption { return func(o *mirrorOpts) { o.attempt = d } }

// WithCallTimeout bounds the asyncmachine-compatible methods (Add, Remove,
// Set...), which take no ctx (default 30s).
func WithCallTimeout(d time.Duration) MirrorOption {
	return func(o *mirrorOpts) { o.callTimeout = d }
}
