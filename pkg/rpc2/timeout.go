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
// calls that outlived WithCallTimeout, runs the keepalive, and enforces the
// gate, idle and write timeouts, until the connection ends. It runs when any
// of them is enabled.
func (c *Conn) timers() {
	defer c.wg.Done()
	var period time.Duration
	every := func(d time.Duration) {
		if d > 0 && (period == 0 || d < period) {
			period = max(d, time.Millisecond)
		}
	}
	lim := c.cfg.limits
	every(c.cfg.callTimeout / 16)
	every(c.cfg.keepalive / 4)
	every(lim.idleTimeout / 4)
	every(lim.writeTimeout / 4)
	var tick <-chan time.Time
	if period > 0 {
		t := time.NewTicker(period)
		defer t.Stop()
		tick = t.C
	}
	var gate <-chan time.Time
	if lim.gateTimeout > 0 && c.gated.Load() {
		t := time.NewTimer(lim.gateTimeout)
		defer t.Stop()
		gate = t.C
	}
	ka := newKeepalive(c)
	idle := idleState{frames: c.frames.Load(), since: time.Now()}
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-gate:
			if c.gated.Load() {
				c.fail(lostError(fmt.Errorf("%w within %s", ErrGateTimeout, lim.gateTimeout)))
				return
			}
			gate = nil
			continue
		case <-tick:
		}
		if c.cfg.callTimeout > 0 {
			c.sweep()
		}
		if c.cfg.keepalive > 0 && !ka.tick() {
			return
		}
		if d := lim.idleTimeout; d > 0 && !idle.tick(c, d) {
			return
		}
		if d := lim.writeTimeout; d > 0 {
			now := monoNow()
			if ws := c.wstart.Load(); ws != 0 && now-ws >= int64(d) {
				c.fail(lostError(fmt.Errorf("%w: a write was blocked for %s", ErrSlowPeer, d)))
				return
			}
			if st := c.starved.Load(); st != 0 && now-st >= int64(d) {
				c.fail(lostError(fmt.Errorf("%w: no flow-control credit for %s", ErrSlowPeer, d)))
				return
			}
		}
	}
}

// timed reports whether the limits need the timer goroutine.
func (l limits) timed() bool {
	return (l.gate != nil && l.gateTimeout > 0) || l.idleTimeout > 0 || l.writeTimeout > 0
}

// idleState tracks when the last whole frame arrived (timer goroutine only).
type idleState struct {
	frames uint64
	since  time.Time
}

// tick ends the connection if no frame arrived for d (then it returns
// false).
func (s *idleState) tick(c *Conn, d time.Duration) bool {
	now := time.Now()
	if f := c.frames.Load(); f != s.frames {
		s.frames, s.since = f, now
		return true
	}
	if idle := now.Sub(s.since); idle >= d {
		c.fail(lostError(fmt.Errorf("%w: no frame for %s (idle timeout %s)", ErrIdle, idle.Round(time.Millisecond), d)))
		return false
	}
	return true
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
