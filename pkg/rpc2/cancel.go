package rpc2

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// Cancellation across the wire (PROTOCOL.md, "Cancellation"): when the
// context of a Call or Go ends before the reply arrives, the caller queues a
// cancel frame for the request's seq. The receiver drops the request if its
// handler has not started yet (it answers with a CodeCanceled error, which
// returns the caller's credit), or cancels the context the running handler
// received.

// handlerCtx is the context a handler receives. For a request it is
// canceled when the peer cancels the call, when the handler returns, or when
// the connection ends (unless the method is Detached); for a notification it ends with the connection (it
// behaves as the connection's context). It is allocated together with the
// request's arguments and reply (see HandleFunc), and its Done channel is made
// only when someone asks for it, so a handler that never looks at ctx.Done
// costs no extra allocation.
//
// It implements the AfterFunc method the context package looks for, so
// contexts derived from it (context.WithTimeout, ...) start no goroutine.
type handlerCtx struct {
	c       *Conn
	seq     uint64 // of a request
	tracked bool   // a request, registered in c.active by seq
	inline  bool   // an Inline handler: runs on the read loop
	// detached: the end of the connection does not cancel it (see Detached)
	detached bool
	running  atomic.Bool // the handler is running (see Queue)

	// state is 1 once canceled; observed is set once Done or AfterFunc was
	// called. So the common request, whose handler never asks for Done,
	// costs atomics only, and mu is taken only when someone is watching.
	state    atomic.Uint32
	observed atomic.Bool

	mu     sync.Mutex
	done   chan struct{} // made lazily; closed on cancel
	afters map[*afterFunc]struct{}
}

type afterFunc struct{ f func() }

// handlerCtxKey makes Value return the handlerCtx itself, also through
// contexts derived from it.
type handlerCtxKey struct{}

// closedChan is returned by Done of a context canceled before anyone asked
// for its channel.
var closedChan = func() chan struct{} {
	ch := make(chan struct{})
	close(ch)
	return ch
}()

// Deadline returns the connection context's deadline (normally none).
func (h *handlerCtx) Deadline() (time.Time, bool) { return h.c.ctx.Deadline() }

// Value returns the handlerCtx for handlerCtxKey, else the connection
// context's value. It looks through context.WithoutCancel so that the
// context package does not take the connection's cancelation for this
// context's (context.Cause then reports this context's own Err).
func (h *handlerCtx) Value(key any) any {
	if key == (handlerCtxKey{}) {
		return h
	}
	return h.c.vctx.Value(key)
}

// Done returns a channel closed when the context is canceled.
func (h *handlerCtx) Done() <-chan struct{} {
	if !h.tracked {
		return h.c.ctx.Done()
	}
	h.observed.Store(true)
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.done == nil {
		if h.state.Load() != 0 {
			h.done = closedChan
		} else {
			h.done = make(chan struct{})
		}
	}
	return h.done
}

// Err returns context.Canceled once the context is canceled, else nil.
func (h *handlerCtx) Err() error {
	if !h.tracked {
		return h.c.ctx.Err()
	}
	if h.state.Load() != 0 {
		return context.Canceled
	}
	return nil
}

// String describes the context (as the context package's contexts do).
func (h *handlerCtx) String() string { return "rpc2.handlerContext" }

// AfterFunc arranges for f to run on its own goroutine once the context is
// canceled, as context.AfterFunc does; the context package uses it for
// derived contexts instead of a watcher goroutine.
func (h *handlerCtx) AfterFunc(f func()) (stop func() bool) {
	if !h.tracked {
		return context.AfterFunc(h.c.ctx, f)
	}
	a := &afterFunc{f}
	h.observed.Store(true)
	h.mu.Lock()
	if h.state.Load() != 0 {
		h.mu.Unlock()
		go f()
		return func() bool { return false }
	}
	if h.afters == nil {
		h.afters = make(map[*afterFunc]struct{})
	}
	h.afters[a] = struct{}{}
	h.mu.Unlock()
	return func() bool {
		h.mu.Lock()
		defer h.mu.Unlock()
		_, ok := h.afters[a]
		delete(h.afters, a)
		return ok
	}
}

// cancel cancels the context (the first call wins) and reports whether this
// call did it.
func (h *handlerCtx) cancel() bool {
	if !h.state.CompareAndSwap(0, 1) {
		return false
	}
	// Done and AfterFunc set observed before they read state: if they read
	// 0, this load sees observed and closes what they made.
	if !h.observed.Load() {
		return true
	}
	h.mu.Lock()
	// A Done that ran between the swap above and the load of observed saw
	// the context canceled already and handed out closedChan: that one is
	// closed for good and shared, so it must not be closed again.
	switch h.done {
	case nil:
		h.done = closedChan
	case closedChan:
	default:
		close(h.done)
	}
	afters := h.afters
	h.afters = nil
	h.mu.Unlock()
	for a := range afters {
		go a.f()
	}
	return true
}

// canceled reports whether the context was canceled.
func (h *handlerCtx) canceled() bool { return h.state.Load() != 0 }

// sendCancel tells the peer that the call seq was given up. Best effort: it
// is queued without waiting for credit or for room in the write buffer (at
// most one per outstanding request, so bounded by the peer's window).
func (c *Conn) sendCancel(seq uint64) {
	c.sendControl(kindCancel, seq, false)
}
