package rpc

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"strconv"
	"sync/atomic"

	am "github.com/arpc-go/arpc/pkg/machine"
)

// CorrelationKey is the argument that carries a request's correlation ID:
// Request adds it to the request's arguments, and the answer must carry it
// too (Correlated adds it).
const CorrelationKey = "arpc.correlation"

// ErrTooManyRequests is a Request refused because its client (or its
// session on the server) already has as many requests in flight as allowed
// (WithMaxRequests, WithClientMaxRequests). Nothing ran.
var ErrTooManyRequests = errors.New("rpc: too many requests in flight")

// CorrelationID returns the correlation ID carried by args (a request's or
// an answer's), or "" when they carry none. A handler of the requested state
// reads it to answer later with Correlated.
func CorrelationID(args am.A) string {
	id, _ := args[CorrelationKey].(string)
	return id
}

// Correlated returns a copy of args carrying the correlation ID id: add the
// request's until state with it to answer the request, from a handler or
// from any goroutine later. args is not modified (nil is fine).
func Correlated(id string, args am.A) am.A {
	out := make(am.A, len(args)+1)
	maps.Copy(out, args)
	out[CorrelationKey] = id
	return out
}

// Requester is implemented by machines that run Request themselves (the
// Worker, a remote mirror). Request uses it.
type Requester interface {
	Request(ctx context.Context, state string, args am.A, until string) (am.A, error)
}

// Request adds state with args plus a fresh correlation ID on mach, and
// returns the args of the first activation of until that carries the same
// ID (an answer added with Correlated), so code and tests can target a local
// machine or a remote one alike:
//
//   - a Requester (a *Worker) runs its own Request: one round trip when the
//     source answers from the handler, see (*Worker).Request;
//   - a local *am.Machine: the answer is watched for before the Add is made
//     (so an answer given inside the handler is never missed), then the Add
//     runs with Mutate, and Request waits for the answer.
//
// It returns ctx.Err() when ctx ends first, and the mutation's own error when
// the Add failed (am.ErrCanceled when a handler vetoed it, am.ErrDisposed...).
// An unknown state or until fails with am.ErrStateUnknown and nothing is
// added. Each request must activate state (make it Multi, or inactive in
// between) and its answer must activate until (likewise), since a state
// that is already active is not activated again.
//
// On a local machine, don't call Request from the machine's own handlers:
// the Add would only be queued behind the running handler, so Request fails
// at once with am.ErrInvalidArgs (the Add stays queued). Safe to call
// concurrently.
func Request(ctx context.Context, mach am.Api, state string, args am.A, until string) (am.A, error) {
	switch m := mach.(type) {
	case Requester:
		return m.Request(ctx, state, args, until)
	case *am.Machine:
		return requestLocal(ctx, m, state, args, until)
	case nil:
		return nil, fmt.Errorf("%w: nil machine", am.ErrInvalidArgs)
	}
	return nil, fmt.Errorf("%w: Request needs a *machine.Machine or a Requester, not %T", am.ErrInvalidArgs, mach)
}

// requestLocal is Request on a local machine.
func requestLocal(ctx context.Context, m *am.Machine, state string, args am.A, until string) (am.A, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	for _, s := range []string{state, until} {
		if !m.Has1(s) {
			return nil, fmt.Errorf("%w: %s", am.ErrStateUnknown, s)
		}
	}
	if m.IsDisposed() {
		return nil, am.ErrDisposed
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	id := newCorrelationID()
	e := &reqEntry{id: id, until: until, ch: make(chan struct{})}
	h, err := registerLocal(m, e)
	if err != nil {
		return nil, err
	}
	defer h.releaseLocal(e)
	res, err := m.Mutate(ctx, am.MutationAdd, am.S{state}, Correlated(id, args))
	switch {
	case ctx.Err() != nil && err != nil:
		return nil, ctx.Err()
	case err != nil:
		return nil, err
	case res == am.Canceled:
		return nil, fmt.Errorf("%w: %s", am.ErrCanceled, state)
	case res == am.Queued:
		return nil, fmt.Errorf("%w: Request from a handler of %s would wait for itself (%s stays queued)",
			am.ErrInvalidArgs, m.ID, state)
	}
	select {
	case <-e.ch:
		return e.args, e.err
	case <-ctx.Done():
		// an answer that arrived meanwhile wins: it reached its caller
		if args, err, ok := h.settled(e); ok {
			return args, err
		}
		return nil, ctx.Err()
	}
}

// correlation IDs are a random process prefix and a counter: unique across
// the processes that talk to one server, and cheap.
var (
	corrPrefix = func() string {
		var b [8]byte
		_, _ = crand.Read(b[:])
		return hex.EncodeToString(b[:]) + "-"
	}()
	corrSeq atomic.Uint64
)

func newCorrelationID() string {
	var buf [48]byte
	b := append(buf[:0], corrPrefix...)
	return string(strconv.AppendUint(b, corrSeq.Add(1), 36))
}
