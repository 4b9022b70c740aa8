package exchange

import (
	"context"
	"fmt"
	"sync"
)

// Exchange is one operation whose requests go out to asynchronous backends
// and whose responses come back through its Controller. Create one with
// Controller.Begin, register its requests with Request or Register, send them,
// then Wait.
//
// An exchange ends exactly once: when Wait sees every request answered, when a
// request fails, when its context or Wait's context ends, or on Cancel. When it
// ends, its pending requests become Unanswered and their ids are tagged for
// rollback, and the controller forgets all its ids: nothing of it is left in
// the controller but the tags, and no goroutine.
//
// All methods are safe to call concurrently, but requests must be registered
// before Wait is called.
type Exchange struct {
	c    *Controller
	ctx  context.Context
	done chan struct{}

	mu      sync.Mutex
	stop    func() bool // stops the context.AfterFunc, nil if none
	calls   []Call      // in registration order; fixed once ended
	inline  [2]Call     // first calls, without an allocation
	pending int
	waiting bool // Wait has begun: no more requests, end when none pending
	ended   bool
	err     error
}

// Request registers a request carrying req under a new correlation id, and
// returns the id to send with the request. It returns ErrClosed if the
// exchange has ended or Wait has begun, and ErrTooManyPending when the
// controller's MaxPending is reached. Register the request before sending
// it, so that even an immediate response finds it.
func (x *Exchange) Request(req any) (string, error) {
	id := x.c.NewID()
	// A fresh id cannot be pending or tagged already.
	if err := x.register(id, req, false); err != nil {
		return "", err
	}
	return id, nil
}

// Register registers a request carrying req under a correlation id chosen by
// the caller, for backends that bring their own ids. It returns ErrEmptyID,
// ErrDuplicateID if id is pending in this controller or tagged for rollback,
// ErrClosed if the exchange has ended or Wait has begun, or ErrTooManyPending.
func (x *Exchange) Register(id string, req any) error {
	if id == "" {
		return ErrEmptyID
	}
	return x.register(id, req, true)
}

func (x *Exchange) register(id string, req any, checkTags bool) error {
	c := x.c
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.ended || x.waiting {
		return ErrClosed
	}
	if err := x.ctx.Err(); err != nil {
		return fmt.Errorf("%w: %w", ErrClosed, err)
	}
	// Counted first, so concurrent registrations cannot overshoot the bound.
	if n := c.pending.Add(1); c.maxPending > 0 && n > c.maxPending {
		c.pending.Add(-1)
		return fmt.Errorf("%w: %d", ErrTooManyPending, c.maxPending)
	}
	sh := c.shard(id)
	sh.mu.Lock()
	_, dup := sh.m[id]
	// Checked under the shard's lock: an ending exchange tags an id before
	// it deletes it from the shard, so one of the two checks sees it.
	if !dup && checkTags {
		dup = c.tags.has(id)
	}
	if dup {
		sh.mu.Unlock()
		c.pending.Add(-1)
		return fmt.Errorf("%w: %q", ErrDuplicateID, id)
	}
	sh.m[id] = slot{x: x, i: len(x.calls)}
	sh.peak = max(sh.peak, len(sh.m))
	sh.mu.Unlock()
	x.calls = append(x.calls, Call{ID: id, Request: req})
	x.pending++
	return nil
}

// Wait waits until every registered request has an outcome, a request
// fails, or ctx or the exchange's own context ends; then it ends the exchange
// and returns its calls, in registration order, with their outcomes.
//
// The error is nil when every request was answered. It wraps ErrFailed and
// the failure when a request failed, and ErrUnanswered and the reason (such as
// context.DeadlineExceeded) when requests were left unanswered. When Wait
// returns, the unanswered ids are tagged and the controller's counts include
// this exchange.
//
// Wait may be called more than once, from any goroutine; every call returns
// the same calls and error. The returned slice is shared: do not modify it.
func (x *Exchange) Wait(ctx context.Context) ([]Call, error) {
	x.mu.Lock()
	x.waiting = true
	now := !x.ended && x.pending == 0
	x.mu.Unlock()
	if now {
		x.end(nil)
	}
	select {
	case <-x.done:
	case <-ctx.Done():
		x.end(ctx.Err())
		// Another goroutine may be ending it; its end is short and does not
		// block.
		<-x.done
	}
	return x.calls, x.err
}

// Cancel ends the exchange without waiting: its pending requests become
// unanswered and are tagged for rollback, and a Wait in progress returns an
// error wrapping ErrUnanswered and ErrCanceled. Cancel after the exchange has
// ended does nothing. It is safe to defer Cancel right after Begin.
func (x *Exchange) Cancel() {
	x.end(ErrCanceled)
}

// Done returns a channel closed when the exchange has ended and the
// controller has forgotten its ids.
func (x *Exchange) Done() <-chan struct{} {
	return x.done
}

// end ends the exchange once, for reason cause when requests are pending.
func (x *Exchange) end(cause error) {
	c := x.c
	x.mu.Lock()
	if x.ended {
		x.mu.Unlock()
		return
	}
	x.ended = true
	n := 0
	for i := range x.calls {
		if x.calls[i].Outcome == Pending {
			x.calls[i].Outcome = Unanswered
			n++
		}
	}
	if n > 0 {
		if x.err == nil {
			if cause == nil {
				cause = ErrCanceled
			}
			x.err = fmt.Errorf("%w: %d of %d: %w", ErrUnanswered, n, len(x.calls), cause)
		}
		// Tag before forgetting the ids, so a response racing with the end
		// is recognised as late, never as unknown.
		c.tags.add(x.calls)
	}
	for i := range x.calls {
		sh := c.shard(x.calls[i].ID)
		sh.mu.Lock()
		delete(sh.m, x.calls[i].ID)
		if len(sh.m) == 0 && sh.peak > shrinkAbove {
			sh.m, sh.peak = make(map[string]slot), 0
		}
		sh.mu.Unlock()
	}
	x.pending = 0
	c.pending.Add(-int64(n))
	c.unanswered.Add(uint64(n))
	c.open.Add(-1)
	stop := x.stop
	x.mu.Unlock()
	if stop != nil {
		stop()
	}
	close(x.done)
}
