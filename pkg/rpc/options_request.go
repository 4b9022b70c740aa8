package rpc

import (
	"time"

	am "github.com/arpc-go/arpc/pkg/machine"
)

// Defaults of Request.
const (
	// DefaultMaxRequests caps the requests in flight (waiting for their
	// answers) per client and per session (WithClientMaxRequests,
	// WithMaxRequests).
	DefaultMaxRequests = 1 << 14
	// DefaultAbandonedTTL is how long a server recognises the correlation
	// ID of a request whose caller gave up (WithAbandonedTTL).
	DefaultAbandonedTTL = time.Minute
)

// WithMaxRequests caps the requests one session may have waiting for their
// answers on the server (default DefaultMaxRequests). A request beyond it
// fails at once with ErrTooManyRequests and does not run.
func WithMaxRequests(n int) ServerOption {
	return func(o *serverOpts) { o.maxRequests = n }
}

// WithAbandonedTTL sets how long the server keeps the correlation ID of a
// request whose caller gave up, so that a late answer is recognised
// (Server.Abandoned, WithLateAnswer); at most 65536 are kept, the oldest
// forgotten first. 0 keeps none.
func WithAbandonedTTL(d time.Duration) ServerOption {
	return func(o *serverOpts) { o.abandonedTTL = d }
}

// WithLateAnswer sets fn to be told about every answer that reached no
// one, so the application can compensate: an answer to a request whose
// caller had given up (within WithAbandonedTTL), and an answer given just
// before its caller gave up that the server had not sent yet. It is called
// once per request, with the answer's correlation ID and arguments, on the
// goroutine that saw it: the source's queue goroutine, inside the answering
// transition (like a tracer: mutations of the source made there are
// queued), or a connection's goroutine. It must not block.
//
// An answer the server had already sent when the caller gave up (it crossed
// the caller's cancellation on the wire) is dropped by the client and not
// reported; the window is the network's one-way latency.
func WithLateAnswer(fn func(id string, args am.A)) ServerOption {
	return func(o *serverOpts) { o.lateAnswer = fn }
}

// WithClientMaxRequests caps the requests the client may have waiting for
// their answers (default DefaultMaxRequests). A request beyond it fails at
// once with ErrTooManyRequests; nothing is sent.
func WithClientMaxRequests(n int) ClientOption {
	return func(o *clientOpts) { o.maxRequests = n }
}
