package rpc2

import "context"

// Flow control (PROTOCOL.md, "Flow control"): each end announces in a
// settings frame how many requests and notifications it accepts outstanding
// (its window). The sender spends one credit per request or notification; a
// reply or error frame returns the credit of its request, and credit frames
// return the credits of finished notifications. The receiver therefore never
// holds more than its window, and its read loop never waits for handlers.

// acquireCredit takes one credit, waiting for the peer to return one if
// needed.
func (c *Conn) acquireCredit(ctx context.Context) error {
	c.cmu.Lock()
	for c.credits <= 0 {
		if c.starved.Load() == 0 {
			c.starved.Store(monoNow() | 1) // never 0 ("not starved")
		}
		if c.cwait == nil {
			c.cwait = make(chan struct{})
		}
		ch := c.cwait
		c.cmu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		case <-c.ctx.Done():
			return c.endErr()
		}
		c.cmu.Lock()
	}
	c.credits--
	c.cmu.Unlock()
	return nil
}

// tryAcquireCredit takes one credit if there is one, without waiting.
func (c *Conn) tryAcquireCredit() bool {
	c.cmu.Lock()
	defer c.cmu.Unlock()
	if c.credits <= 0 {
		return false
	}
	c.credits--
	return true
}

// addCredit returns n credits (from the peer, or locally for a request that
// was not sent) and wakes the waiters.
func (c *Conn) addCredit(n int64) {
	c.cmu.Lock()
	c.credits = min(c.credits+n, 1<<40)
	if c.credits > 0 {
		c.starved.Store(0)
	}
	if c.cwait != nil {
		close(c.cwait)
		c.cwait = nil
	}
	c.cmu.Unlock()
}

// finishRequest accounts for a request or notification whose handler has
// finished, before its reply is sent (so the peer's next request, sent when
// it sees the reply, finds room). For a notification it returns the credit
// batched (from the read loop, for an inline handler, without writing).
// Once the reply is queued, the caller calls settled.
func (c *Conn) finishRequest(notify, readLoop bool) {
	c.inflight.Add(-1)
	if notify {
		// A batch is sent at once; fewer credits ride the next frame
		// written (see flushLocked), so that a lone notification costs no
		// write of its own. The peer is never short of more than a batch,
		// a small part of its window.
		batch := int64(max(1, c.cfg.window/8))
		if f := c.freed.Add(1); f >= batch {
			if f = c.freed.Swap(0); f > 0 {
				if readLoop {
					c.sendControl(kindCredit, uint64(f), false)
				} else {
					_ = c.send(c.ctx, kindCredit, uint64(f), 0, nil, false)
				}
			}
		}
	}
}

// settled accounts for a request whose reply is queued (or a notification
// handled): a draining connection ends its write side after the last one.
// The count is apart from inflight, which drops before the reply is queued
// (so that the peer may reuse the credit as soon as it reads the reply): a
// drain that found inflight at zero could otherwise end the write side
// before that reply.
func (c *Conn) settled() {
	if c.busy.Add(-1) == 0 && c.draining.Load() {
		c.shutWrite()
	}
}
