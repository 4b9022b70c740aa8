package rpc2

import (
	"context"
	"fmt"
	"sync"
)

// Call is an outgoing call made with Conn.Go. When it completes, Error is set
// (nil on success, when Reply holds the result) and the Call is sent on Done.
type Call struct {
	Method Method // the method called
	Args   any    // the arguments, as passed to Go
	Reply  any    // the reply target, as passed to Go
	Error  error  // set when the call completes
	Done   chan *Call

	seq      uint64
	deadline int64       // monotonic ns after which the sweeper fails it; 0: none
	stop     func() bool // stops the context watcher of a Go call
}

// complete delivers the call without blocking (Done must have room).
func (call *Call) complete() {
	select {
	case call.Done <- call:
	default:
	}
}

// callPool recycles the Calls of Call. Each gets a fresh Done channel: a
// channel made inside a testing/synctest bubble must not be used outside it,
// and a pooled one could cross from a test's bubble into another test.
var callPool = sync.Pool{New: func() any { return new(Call) }}

func putCall(call *Call) {
	call.Args, call.Reply, call.Error, call.seq, call.deadline, call.Done = nil, nil, nil, 0, 0, nil
	callPool.Put(call)
}

var errMethod0 = fmt.Errorf("%w: method 0", ErrInvalid)

// register assigns call a sequence number and adds it to the pending table.
func (c *Conn) register(call *Call) error {
	c.pmu.Lock()
	if c.pclosed {
		c.pmu.Unlock()
		return c.Err()
	}
	c.seq++
	call.seq = c.seq
	if c.cfg.callTimeout > 0 {
		call.deadline = monoNow() + int64(c.cfg.callTimeout)
	}
	c.pending[call.seq] = call
	c.npending.Add(1)
	c.pmu.Unlock()
	return nil
}

// takePending removes and returns the pending call for seq (nil if there is
// none). The caller then owns the call and must complete it.
func (c *Conn) takePending(seq uint64) *Call {
	c.pmu.Lock()
	call := c.pending[seq]
	if call == nil {
		c.pmu.Unlock()
		return nil
	}
	delete(c.pending, seq)
	c.npending.Add(-1)
	stop := call.stop
	call.stop = nil
	c.pmu.Unlock()
	if stop != nil {
		stop()
	}
	return call
}

// failPending fails every pending call with err and refuses new ones.
func (c *Conn) failPending(err error) {
	c.pmu.Lock()
	calls := c.pending
	c.pending = nil
	c.pclosed = true
	c.pmu.Unlock()
	for _, call := range calls {
		if call.stop != nil {
			call.stop()
			call.stop = nil
		}
		call.Error = err
		call.complete()
	}
}

// Call calls method m on the peer with args and waits for the reply, which
// it decodes into reply (a pointer, or nil to discard it). It returns the
// remote handler's error as an *Error, ErrEncode/ErrTooLarge for arguments
// that cannot be sent (nothing is sent then), ErrDecode for a reply that
// cannot be decoded, ctx's error if ctx ends first (the call is forgotten at
// once, a late reply is discarded, and the peer is sent a cancel frame: it
// drops the request if its handler has not started, or cancels the
// handler's context), or the connection's end error. ctx
// bounds every wait, including the wait for flow-control credit when the
// peer's request window (see WithRequestWindow) is used up. Safe for
// concurrent use.
func (c *Conn) Call(ctx context.Context, m Method, args, reply any) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if m == 0 {
		return errMethod0
	}
	if err := c.acquireCredit(ctx); err != nil {
		return err
	}
	call := callPool.Get().(*Call)
	call.Method, call.Args, call.Reply, call.Done = m, args, reply, make(chan *Call, 1)
	if err := c.register(call); err != nil {
		c.addCredit(1)
		putCall(call)
		return err
	}
	if err := c.send(ctx, kindRequest, call.seq, m, args, false); err != nil {
		c.addCredit(1)
		if c.takePending(call.seq) == nil {
			<-call.Done // completed by someone else: consume it
		}
		putCall(call)
		return err
	}
	select {
	case <-call.Done:
	case <-ctx.Done():
		if c.takePending(call.seq) != nil {
			c.sendCancel(call.seq)
			putCall(call)
			return ctx.Err()
		}
		<-call.Done // the reply is being delivered
	}
	err := call.Error
	putCall(call)
	return err
}

// Go calls method m on the peer asynchronously and returns the Call at once.
// The Call is sent on done when it completes (with Error set as for Call,
// including ctx's error if ctx ends first). If done is nil, a channel with
// room for one is allocated. done must be buffered, with room for every call
// that may complete while nobody receives (rpc2 never blocks delivering; a
// completion that does not fit is dropped). An unbuffered done makes Go
// return a Call with an ErrInvalid Error that is never sent on done.
// If ctx ends first, the peer is told, as for Call.
// Go returns without waiting for the reply, but it may wait (bounded by ctx)
// for flow-control credit when the peer's request window is used up, and for
// room in the write buffer. Safe for concurrent use.
func (c *Conn) Go(ctx context.Context, m Method, args, reply any, done chan *Call) *Call {
	call := &Call{Method: m, Args: args, Reply: reply, Done: done}
	switch {
	case done == nil:
		call.Done = make(chan *Call, 1)
	case cap(done) == 0:
		call.Error = fmt.Errorf("%w: Go with an unbuffered done channel", ErrInvalid)
		return call
	}
	if err := ctx.Err(); err != nil {
		call.Error = err
		call.complete()
		return call
	}
	if m == 0 {
		call.Error = errMethod0
		call.complete()
		return call
	}
	if err := c.acquireCredit(ctx); err != nil {
		call.Error = err
		call.complete()
		return call
	}
	if err := c.register(call); err != nil {
		c.addCredit(1)
		call.Error = err
		call.complete()
		return call
	}
	if err := c.send(ctx, kindRequest, call.seq, m, args, false); err != nil {
		c.addCredit(1)
		if c.takePending(call.seq) != nil {
			call.Error = err
			call.complete()
		}
		return call
	}
	if ctx.Done() != nil {
		seq := call.seq
		stop := context.AfterFunc(ctx, func() {
			if c.takePending(seq) != nil {
				c.sendCancel(seq)
				call.Error = ctx.Err()
				call.complete()
			}
		})
		c.pmu.Lock()
		if c.pending[seq] == call {
			call.stop = stop
			stop = nil
		}
		c.pmu.Unlock()
		if stop != nil {
			stop()
		}
	}
	return call
}

// Notify sends a one-way message for method m to the peer: no reply, and the
// peer's handler error is only logged there. It returns once the message has
// been handed to the transport, or with ErrEncode/ErrTooLarge (nothing sent),
// ctx's error, or the connection's end error. Notifications of an Ordered
// method are handled in the order they were sent. Safe for concurrent use.
func (c *Conn) Notify(ctx context.Context, m Method, args any) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if m == 0 {
		return errMethod0
	}
	if err := c.acquireCredit(ctx); err != nil {
		return err
	}
	queued, err := c.sendFrame(ctx, kindNotify, 0, m, args, sendWait)
	if !queued {
		c.addCredit(1)
	}
	return err
}

// TryNotify sends a notification without ever waiting for the peer: it
// takes one unit of the peer's flow-control window and room in the write
// buffer first, and when either is missing it returns an error wrapping
// ErrWouldBlock at once, without calling args. Otherwise it calls args, and
// sends what it returns (nil sends nothing and gives the credit back).
//
// args runs while none of the connection's locks is held, so it may compute the
// message then, for example to merge every change made while the peer was
// not reading into one message: a slow peer then costs one message, never a
// queue of them. The frame is written by the caller when no other goroutine
// is writing (a write the peer's window keeps small, bounded by the write
// timeout), else by the goroutine writing now. Should other senders fill the
// write buffer while args runs, the message is not sent and the error wraps
// ErrSlowPeer. Safe for concurrent use.
func (c *Conn) TryNotify(m Method, args func() any) error {
	if m == 0 {
		return errMethod0
	}
	if err := c.ctx.Err(); err != nil {
		return c.endErr()
	}
	if !c.tryAcquireCredit() {
		// the peer is behind as if a sender waited: WithWriteTimeout
		// applies (the next credit clears it)
		c.starved.CompareAndSwap(0, monoNow()|1)
		return fmt.Errorf("%w: the peer's flow-control window is full", ErrWouldBlock)
	}
	c.wmu.Lock()
	full := len(c.wbuf) >= writeBufLimit
	c.wmu.Unlock()
	if full {
		c.addCredit(1)
		return fmt.Errorf("%w: the write buffer is full", ErrWouldBlock)
	}
	body := args()
	if isNil(body) {
		c.addCredit(1)
		return nil
	}
	queued, err := c.sendFrame(c.ctx, kindNotify, 0, m, body, sendTry)
	if !queued {
		c.addCredit(1)
	}
	return err
}

// Queue is Notify without the write: it appends the notification to the
// connection's write buffer and returns, so that the message goes out in the
// same write as the next frame. A handler that queues an update and then
// returns its reply sends both in one write (one system call), the update
// first.
//
// A queued frame is never left behind: called from a handler of this
// connection (with the handler's ctx, or a context derived from it), the
// frame is written at the latest when that handler returns, by its reply or,
// for a notification handler, by a flush right after it; called from
// anywhere else, it wakes the connection's writer goroutine, which writes it
// soon (possibly together with frames sent meanwhile). Frames are written in
// the order they were queued or sent.
//
// Queue returns ErrEncode/ErrTooLarge (nothing queued), ctx's error (while
// waiting for flow-control credit or for room in the write buffer, as Notify
// does; a frame held for a handler's reply is queued despite a canceled ctx
// when that needs no wait), or the connection's end error. In an Inline handler, which runs on
// the read loop, Queue never waits: where it would, it returns an error
// wrapping ErrWouldBlock. A nil error means the message was
// queued, not that it was written. Safe for concurrent use.
func (c *Conn) Queue(ctx context.Context, m Method, args any) error {
	if m == 0 {
		return errMethod0
	}
	mode := sendQueue
	if h := handlerOf(ctx, c); h != nil {
		mode = sendQueueHeld
		if h.inline {
			mode = sendQueueInline
		}
	}
	switch {
	case mode == sendQueueInline:
		if !c.tryAcquireCredit() {
			return fmt.Errorf("%w: Queue in an inline handler without flow-control credit", ErrWouldBlock)
		}
	case mode == sendQueueHeld && c.tryAcquireCredit():
		// Held for the handler's reply, which goes whether or not the
		// handler's ctx was canceled: with nothing to wait for, ctx's
		// cancellation does not matter.
	default:
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := c.acquireCredit(ctx); err != nil {
			return err
		}
	}
	queued, err := c.sendFrame(ctx, kindNotify, 0, m, args, mode)
	if !queued {
		c.addCredit(1)
	}
	if queued && mode != sendQueue && handlerOf(ctx, c) == nil {
		// The handler returned meanwhile (ctx was used from another
		// goroutine); its flush may have missed this frame.
		c.wake()
	}
	return err
}

// handlerOf returns the context of the handler of c that is running now, if
// ctx is (or derives from) it, else nil.
func handlerOf(ctx context.Context, c *Conn) *handlerCtx {
	h, _ := ctx.Value(handlerCtxKey{}).(*handlerCtx)
	if h == nil || h.c != c || !h.running.Load() {
		return nil
	}
	return h
}
