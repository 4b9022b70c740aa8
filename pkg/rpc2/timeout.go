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

// sweep fails the pending calls that outlived the connection's call timeout,
// until the connection ends. It runs only with WithCallTimeout.
func (c *Conn) sweep() {
	defer c.wg.Done()
	period := max(c.cfg.callTimeout/16, time.Millisecond)
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-t.C:
		}
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
			call.Error = fmt.Errorf("%w after %s: %w", ErrTimeout, c.cfg.callTimeout, context.DeadlineExceeded)
			call.complete()
		}
	}
}
