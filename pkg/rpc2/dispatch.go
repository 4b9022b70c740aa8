package rpc2

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"sync"
)

// request is a received request or notification (seq 0) waiting to be
// served: either a handler with decoded arguments, or an error to reply.
type request struct {
	h     *handler
	seq   uint64
	ctx   *handlerCtx
	args  any
	reply any
	code  Code // non-zero: reply with this error instead of calling a handler
	msg   string
}

var requestPool = sync.Pool{New: func() any { return new(request) }}

// dispatch hands r to a worker. It runs on the read loop and never waits:
// the queues have room for the whole request window, which the peer may not
// exceed. Replies never pass through here.
func (c *Conn) dispatch(r *request) {
	if r.h != nil && r.h.ordered {
		if c.orderedQ == nil {
			c.orderedQ = make(chan *request, c.cfg.window)
		}
		c.orderedQ <- r
		// after the send: a retiring ordered worker looks at the queue
		// after it clears orderedOn (see orderedWorker)
		if c.orderedOn.CompareAndSwap(false, true) {
			c.wg.Add(1)
			go c.orderedWorker(c.orderedQ)
		}
		return
	}
	select {
	case c.handoff <- r: // a parked worker took it
		return
	default:
	}
	select {
	case c.sem <- struct{}{}: // start another worker
		c.wg.Add(1)
		go c.worker(r)
	default: // all workers busy: the first to finish takes it
		c.queue <- r
		// unless the only one retired meanwhile (see worker)
		select {
		case c.sem <- struct{}{}:
			c.wg.Add(1)
			go c.worker(nil)
		default:
		}
	}
}

// worker serves requests from the queue until the connection ends. Workers
// are started on demand, at most WithMaxConcurrency per connection, and stay
// parked when idle (so their grown stacks are reused), until the timers
// find the connection idle for a whole period and retire them.
func (c *Conn) worker(r *request) {
	defer c.wg.Done()
	c.waitReady()
	for {
		if r != nil {
			c.serve(r) // r is recycled: not to be served again
			r = nil
		}
		select {
		case r = <-c.queue:
			continue
		default:
		}
		// Park. dispatch's non-blocking send on the unbuffered handoff
		// succeeds only while a worker waits here, so a request never waits
		// for a worker that is busy elsewhere.
		select {
		case r = <-c.handoff:
		case r = <-c.queue:
		case <-c.retire:
			<-c.sem
			// a request queued while this worker still held its slot
			// is served by it, or by a worker dispatch starts
			if len(c.queue) == 0 {
				return
			}
			select {
			case c.sem <- struct{}{}:
			default:
				return
			}
		case <-c.ctx.Done():
			c.serveLeft(c.queue)
			return
		}
	}
}

// retireWorkers ends the parked workers of a connection that was idle for
// a whole timer period, so that an idle connection keeps no goroutine but
// its read loop; the next request starts a worker again.
func (c *Conn) retireWorkers() {
	for {
		select {
		case c.retire <- struct{}{}:
		default:
			return
		}
	}
}

// orderedWorker serves the requests of Ordered methods one at a time, from
// q, and exits when q is empty: Ordered methods are rare (a handshake), so
// an idle connection keeps no goroutine for them. Of the worker exiting and
// one dispatch starts meanwhile, exactly one serves on.
func (c *Conn) orderedWorker(q chan *request) {
	defer c.wg.Done()
	c.waitReady()
	for {
		select {
		case r := <-q:
			c.serve(r)
			continue
		case <-c.ctx.Done():
			c.serveLeft(q)
			return
		default:
		}
		c.orderedOn.Store(false)
		if len(q) == 0 || !c.orderedOn.CompareAndSwap(false, true) {
			return
		}
	}
}

func (c *Conn) waitReady() {
	select {
	case <-c.ready:
	case <-c.ctx.Done():
	}
}

// errCanceledByPeer is the message of the error that answers a request
// canceled by its caller before its handler started.
const errCanceledByPeer = "canceled by the caller before it started"

// serve runs one request and sends its reply; for a notification it only
// returns the credit. A request canceled by the peer before it started is
// answered with a CodeCanceled error instead of running. After the end of
// the connection only notifications run, and only while it delivers (see
// delivering).
func (c *Conn) serve(r *request) {
	seq, code, msg, h, hc, args, reply := r.seq, r.code, r.msg, r.h, r.ctx, r.args, r.reply
	*r = request{}
	requestPool.Put(r)
	var err error
	if code == 0 && (c.ctx.Err() == nil || seq == 0 && c.delivering()) {
		if seq != 0 && hc.canceled() {
			code, msg = CodeCanceled, errCanceledByPeer
		} else {
			hc.running.Store(true)
			err = c.invoke(h, hc, args, reply)
			hc.running.Store(false)
		}
	}
	if seq != 0 && hc != nil {
		c.untrackRequest(hc)
	}
	if seq == 0 {
		if c.queued.Load() {
			c.flushQueued()
		}
		if err != nil {
			c.log.Debug("rpc2: notification handler failed", "method", h.name, "err", err)
		}
		c.finishRequest(true, false)
		c.settled()
		return
	}
	c.finishRequest(false, false)
	if testHookFinished != nil {
		testHookFinished(c)
	}
	switch {
	case c.ctx.Err() != nil:
	case code != 0:
		_ = c.sendError(seq, code, msg)
	case err != nil:
		code, msg := toWireError(err)
		_ = c.sendError(seq, code, msg)
	default:
		err = c.send(c.ctx, kindReply, seq, 0, reply, false)
		switch {
		case errors.Is(err, ErrEncode):
			_ = c.sendError(seq, CodeInternal, fmt.Sprintf("%s: %v", h.name, err))
		case errors.Is(err, ErrTooLarge):
			_ = c.sendError(seq, CodeTooLarge, fmt.Sprintf("%s: %v", h.name, err))
		}
	}
	c.settled() // after the reply is queued: a drain's writer writes it first
}

// testHookFinished, when set by a test, runs between a request's finish and
// its reply.
var testHookFinished func(*Conn)

// serveInline runs a notification of an Inline method on the read loop.
func (c *Conn) serveInline(h *handler, hc *handlerCtx, args, reply any) {
	c.waitReady()
	if c.ctx.Err() == nil {
		hc.running.Store(true)
		err := c.invoke(h, hc, args, reply)
		hc.running.Store(false)
		if err != nil {
			c.log.Debug("rpc2: notification handler failed", "method", h.name, "err", err)
		}
	}
	if c.queued.Load() {
		c.wake() // the read loop must not write
	}
	c.finishRequest(true, true)
	c.settled()
}

// flushQueued writes what Queue left in the buffer, unless a writer is
// already at it.
func (c *Conn) flushQueued() {
	c.wmu.Lock()
	var werr error
	if !c.flushing && len(c.wbuf) > 0 && c.werr == nil {
		werr = c.flushLocked()
	}
	c.wmu.Unlock()
	if werr != nil {
		c.fail(werr)
	}
}

// invoke calls the handler, turning a panic into a CodeInternal error.
func (c *Conn) invoke(h *handler, ctx context.Context, args, reply any) (err error) {
	defer func() {
		if p := recover(); p != nil {
			c.log.Error("rpc2: handler panicked", "method", h.name, "panic", p, "stack", string(debug.Stack()))
			err = &Error{Code: CodeInternal, Message: fmt.Sprintf("%s: handler panicked: %v", h.name, p)}
		}
	}()
	return h.call(ctx, c, args, reply)
}
