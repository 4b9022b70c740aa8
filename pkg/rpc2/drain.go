package rpc2

// A graceful end (PROTOCOL.md, "Shutdown"). Server.Shutdown drains each
// connection: new requests are refused with CodeUnavailable while the ones
// already read finish. Once none is left, the writer goroutine writes
// everything queued, then ends the write side: it half-closes a transport
// that can (the peer reads every frame, then end of stream) and keeps reading
// (replies to this end's calls are still delivered) until the peer closes in
// turn; a transport that cannot half-close is closed. An end that reads end
// of stream between frames still handles the notifications it has read
// before it ends, so nothing the peer sent before closing is lost.

// endMode values: what the connection's end does with the requests and
// notifications read and not yet handled.
const (
	endRunning uint32 = iota // not ended (an end now drops them)
	endDeliver               // ended by the peer's end of stream: notifications still run
	endAbort                 // ended locally (Close): drop them
)

// drain refuses new requests (CodeUnavailable) and ends the connection with
// err once the requests in flight are done (see shutWrite). Only the first
// call counts. drainErr is written before draining is set, so readers that
// see draining see it.
func (c *Conn) drain(err error) {
	c.drainOnce.Do(func() {
		c.drainErr = err
		c.draining.Store(true)
		if c.busy.Load() == 0 {
			c.shutWrite()
		}
	})
}

// shutWrite asks the writer goroutine to end the write side once everything
// queued is written (see writer). Called when a drain finds nothing in
// flight; calling it again does nothing more.
func (c *Conn) shutWrite() {
	c.drainedOnce.Do(func() {
		if fn := c.cfg.onDrained; fn != nil && c.ctx.Err() == nil {
			fn(c)
		}
	})
	c.closing.Store(true)
	c.wake()
}

// closeWriteSide ends the write side of a drained connection whose frames
// are all written: a transport that can half-close does so and the read loop
// reads on until the peer's end of stream; any other is closed.
func (c *Conn) closeWriteSide() {
	if cw, ok := c.nc.(interface{ CloseWrite() error }); ok {
		c.wshut.Store(true)
		if cw.CloseWrite() == nil {
			return
		}
	}
	c.fail(c.drainErr)
}

// abort ends the connection at once with err: nothing left is handled, even
// after the peer's end of stream (see endMode).
func (c *Conn) abort(err error) {
	c.endMode.Store(endAbort)
	c.fail(err)
}

// delivering reports whether the connection ended with the peer's end of
// stream and still handles the notifications it read (not after Close, nor
// before a Server's OnConnect hook returned).
func (c *Conn) delivering() bool {
	if c.endMode.Load() != endDeliver {
		return false
	}
	select {
	case <-c.ready:
		return true
	default:
		return false
	}
}

// serveLeft serves what is left in q after the end of the connection, while
// it delivers (see delivering).
func (c *Conn) serveLeft(q chan *request) {
	for c.delivering() {
		select {
		case r := <-q:
			c.serve(r)
		default:
			return
		}
	}
}
