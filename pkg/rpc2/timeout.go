package rpc2

import (
	"context"
	"fmt"
	"time"
)

// monoStart anchors monoNow; time.Since reads the monotonic clock.
var monoStart = time.Now()

// monoNow returns monotonic nanoseconds.
func monoNow() int64 { return int64(time.Since(monoStart)) }

// timers is the connection's one timer goroutine: it sweeps the pending
// calls that outlived WithCallTimeout and runs the keepalive, until the
// connection ends. It runs when either is enabled.
func (c *Conn) timers() {
	defer c.wg.Done()
	var period time.Duration
	if d := c.cfg.callTimeout; d > 0 {
		period = max(d/16, time.Millisecond)
	}
	if d := c.cfg.keepalive; d > 0 && (period == 0 || d/4 < period) {
		period = max(d/4, time.Millisecond)
	}
	t := time.NewTicker(period)
	defer t.Stop()
	ka := newKeepalive(c)
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-t.C:
		}
		if c.cfg.callTimeout > 0 {
			c.sweep()
		}
		if c.cfg.keepalive > 0 && !ka.tick() {
			return
		}
	}
}

// sweep fails the pending calls that outlived the connection's call timeout
// and tells the peer, as for a canceled call.
func (c *Conn) sweep() {
	now := monoNow()
	var expired []*Call
	c.pmu.Lock()
	for seq, call := range c.pending {
		if call.deadline != 0 && call.deadline <= now {
			delete(c.pending, seq)
			c.npending.Add(-1)
			expired = append(expired, call)
		}
	}
	c.pmu.Unlock()
	for _, call := range expired {
		if call.stop != nil {
			call.stop()
			call.stop = nil
		}
		c.sendCancel(call.seq)
		call.Error = fmt.Errorf("%w after %s: %w", ErrTimeout, c.cfg.callTimeout, context.DeadlineExceeded)
		call.complete()
	}
}
