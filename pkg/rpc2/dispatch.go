package rpc2

import (
	"errors"
	"fmt"
	"runtime/debug"
	"sync"
)

// request is a received request or notification (seq 0) waiting to be
// served: either a handler with decoded arguments, or an error to reply.
type request struct {
	h    *handler
	seq  uint64
	args any
	code Code // non-zero: reply with this error instead of calling a handler
	msg  string
}

var requestPool = sync.Pool{New: func() any { return new(request) }}

// dispatch hands r to a worker. It runs on the read loop and blocks only when
// a queue is full (backpressure) or the connection ends. Replies never pass
// through here, so they are read while handlers run.
func (c *Conn) dispatch(r *request) {
	if r.h != nil && r.h.ordered {
		if c.orderedQ == nil {
			c.orderedQ = make(chan *request, c.cfg.queueLen)
			c.wg.Add(1)
			go c.orderedWorker()
		}
		select {
		case c.orderedQ <- r:
		case <-c.ctx.Done():
		}
		return
	}
	select {
	case c.sem <- struct{}{}:
		c.wg.Add(1)
		go c.worker(r)
		return
	default:
	}
	select {
	case c.queue <- r:
	case <-c.ctx.Done():
		return
	}
	// A worker may have given up its slot after we found none free: make
	// sure someone serves the queue.
	select {
	case c.sem <- struct{}{}:
		c.wg.Add(1)
		go c.worker(nil)
	default:
	}
}

// worker serves r, then queued requests, until the queue is empty. It holds
// one slot of sem while it runs.
func (c *Conn) worker(r *request) {
	defer c.wg.Done()
	c.waitReady()
	for {
		if r != nil {
			c.serve(r)
		}
		select {
		case r = <-c.queue:
			continue
		default:
		}
		<-c.sem
		if len(c.queue) == 0 {
			return
		}
		select {
		case c.sem <- struct{}{}:
			r = nil
		default:
			return
		}
	}
}

// orderedWorker serves the requests of Ordered methods one at a time.
func (c *Conn) orderedWorker() {
	defer c.wg.Done()
	c.waitReady()
	for {
		select {
		case r := <-c.orderedQ:
			c.serve(r)
		case <-c.ctx.Done():
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

// serve runs one request and sends its reply (not for notifications).
func (c *Conn) serve(r *request) {
	defer func() {
		*r = request{}
		requestPool.Put(r)
		c.doneRequest()
	}()
	if c.ctx.Err() != nil {
		return
	}
	if r.code != 0 {
		_ = c.sendError(r.seq, r.code, r.msg)
		return
	}
	reply := r.h.newReply()
	err := c.invoke(r.h, r.args, reply)
	if r.seq == 0 {
		if err != nil {
			c.log.Debug("rpc2: notification handler failed", "method", r.h.name, "err", err)
		}
		return
	}
	if err != nil {
		code, msg := toWireError(err)
		_ = c.sendError(r.seq, code, msg)
		return
	}
	err = c.send(c.ctx, kindReply, r.seq, 0, reply, false)
	switch {
	case err == nil:
	case errors.Is(err, ErrEncode):
		_ = c.sendError(r.seq, CodeInternal, fmt.Sprintf("%s: %v", r.h.name, err))
	case errors.Is(err, ErrTooLarge):
		_ = c.sendError(r.seq, CodeTooLarge, fmt.Sprintf("%s: %v", r.h.name, err))
	}
}

// invoke calls the handler, turning a panic into a CodeInternal error.
func (c *Conn) invoke(h *handler, args, reply any) (err error) {
	defer func() {
		if p := recover(); p != nil {
			c.log.Error("rpc2: handler panicked", "method", h.name, "panic", p, "stack", string(debug.Stack()))
			err = &Error{Code: CodeInternal, Message: fmt.Sprintf("%s: handler panicked: %v", h.name, p)}
		}
	}()
	return h.call(c.ctx, c, args, reply)
}

// doneRequest accounts for a finished request; a draining connection closes
// when the last one is done.
func (c *Conn) doneRequest() {
	if c.inflight.Add(-1) == 0 && c.draining.Load() {
		c.fail(c.drainErr)
	}
}

// drain refuses new requests (CodeUnavailable) and ends the connection with
// err once the requests in flight are done. drainErr is written before
// draining is set, so readers that see draining see it.
func (c *Conn) drain(err error) {
	c.drainErr = err
	c.draining.Store(true)
	if c.inflight.Load() == 0 {
		c.fail(err)
	}
}
