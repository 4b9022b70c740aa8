package rpc

import (
	"context"
	"errors"
	"maps"
	"sync"
	"sync/atomic"

	am "github.com/arpc-go/arpc/pkg/machine"
	"github.com/arpc-go/arpc/pkg/rpc2"
)

// Traffic counts the work a server did for its clients since it was
// created. It is part of Stats.
type Traffic struct {
	// Handshakes counts the handshakes accepted (new and resumed
	// sessions).
	Handshakes uint64
	// MutationsExecuted, MutationsCanceled and MutationsQueued count the
	// mutations (requests included) that ran on the source, by result;
	// MutationsFailed those that ran and failed otherwise (a handler
	// timeout, a full queue, an invalid state index: see the outcome codes
	// of PROTOCOL.md). Refused mutations (not run) are in Errors.
	MutationsExecuted, MutationsCanceled, MutationsQueued, MutationsFailed uint64
	// Updates counts the updates of the clients' streams (clock diffs,
	// full clocks); Pushes how many of them were sent on their own rather
	// than with a reply.
	Updates, Pushes uint64
	// PushesDeferred counts the pushes put off because the client had a
	// whole flow-control window of updates unhandled (a slow or stalled
	// client): its changes were merged into a later push.
	PushesDeferred uint64
	// BytesIn and BytesOut count the bytes read from and written to
	// clients' connections (TLS records included), accepted by the server's
	// listener or given to ServeConn.
	BytesIn, BytesOut uint64
	// Errors counts the errors the server's handlers answered (or, for
	// notifications, dropped) by code: rpc2's codes below 100, Layer 2's
	// above (see PROTOCOL.md). Nil when there were none.
	Errors map[rpc2.Code]uint64
}

// traffic holds the counters behind Traffic.
type traffic struct {
	handshakes                         atomic.Uint64
	executed, canceled, queued, failed atomic.Uint64
	updates, pushes, bytesIn, bytesOut atomic.Uint64
	deferred                           atomic.Uint64
	errMu                              sync.Mutex
	errors                             map[rpc2.Code]uint64
}

func (t *traffic) snapshot() Traffic {
	t.errMu.Lock()
	errs := maps.Clone(t.errors)
	t.errMu.Unlock()
	return Traffic{
		Handshakes:        t.handshakes.Load(),
		MutationsExecuted: t.executed.Load(),
		MutationsCanceled: t.canceled.Load(),
		MutationsQueued:   t.queued.Load(),
		MutationsFailed:   t.failed.Load(),
		Updates:           t.updates.Load(),
		Pushes:            t.pushes.Load(),
		PushesDeferred:    t.deferred.Load(),
		BytesIn:           t.bytesIn.Load(),
		BytesOut:          t.bytesOut.Load(),
		Errors:            errs,
	}
}

// mutation counts a mutation that ran, by its result.
func (t *traffic) mutation(resp *respResult) {
	switch {
	case resp.code == outOK && resp.result == am.Queued:
		t.queued.Add(1)
	case resp.code == outOK && resp.result == am.Canceled, resp.code == outCanceled, resp.code == outPrecondition:
		t.canceled.Add(1)
	case resp.code == outOK:
		t.executed.Add(1)
	default:
		t.failed.Add(1)
	}
}

// fail counts an error a handler returned, by the code it crosses the
// wire with.
func (t *traffic) fail(err error) {
	code := rpc2.CodeApplication
	var re *rpc2.Error
	switch {
	case errors.As(err, &re):
		code = re.Code
	case errors.Is(err, context.Canceled):
		code = rpc2.CodeCanceled
	case errors.Is(err, context.DeadlineExceeded):
		code = rpc2.CodeDeadlineExceeded
	}
	t.errMu.Lock()
	if t.errors == nil {
		t.errors = map[rpc2.Code]uint64{}
	}
	t.errors[code]++
	t.errMu.Unlock()
}

// handle registers a server handler that counts the errors it returns.
func handle[A, R any](s *Server, r *rpc2.Registry, m rpc2.Method, name string,
	fn func(context.Context, *rpc2.Conn, *A, *R) error, opts ...rpc2.HandlerOption,
) error {
	t := &s.stats.traffic
	return rpc2.HandleFunc(r, m, name, func(ctx context.Context, c *rpc2.Conn, a *A, rep *R) error {
		err := fn(ctx, c, a, rep)
		if err != nil {
			t.fail(err)
		}
		return err
	}, opts...)
}

// Read counts the bytes read from a client.
func (c *countedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.traffic.bytesIn.Add(uint64(n))
	return n, err
}

// Write counts the bytes written to a client.
func (c *countedConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.traffic.bytesOut.Add(uint64(n))
	return n, err
}
