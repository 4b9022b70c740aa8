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

// startTimers starts the connection's timers: a periodic tick that sweeps
// the pending calls that outlived WithCallTimeout, runs the keepalive,
// enforces the idle and write timeouts and retires the parked workers of an
// idle connection, and a one-off gate timeout. They run as timer callbacks,
// not as a goroutine of their own: an idle connection costs no stack for
// them. The periodic one is re-armed at the end of each run, so runs never
// overlap. stopTimers stops them; the connection's end waits for a callback
// that is running (see enter).
func (c *Conn) startTimers() {
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

	ts := &timerState{c: c, ka: newKeepalive(c), idle: idleState{frames: c.frames.Load(), since: time.Now()}}
	// Callbacks are counted in c.wg (enter), so the end of the connection
	// waits for one that is running; after the end they do nothing, and
	// none re-arms a timer.
	var tick, gate *time.Timer
	if period > 0 {
		// armed once assigned, so that the callback sees tick set
		tick = time.AfterFunc(time.Hour, func() {
			if !c.enter() {
				return
			}
			defer c.wg.Done()
			if ts.tick() {
				c.gmu.Lock()
				if !c.ended {
					tick.Reset(period)
				}
				c.gmu.Unlock()
			}
		})
		tick.Reset(period)
	}
	if lim.gateTimeout > 0 && c.gated.Load() {
		gate = time.AfterFunc(lim.gateTimeout, func() {
			if !c.enter() {
				return
			}
			defer c.wg.Done()
			if c.gated.Load() {
				c.fail(lostError(fmt.Errorf("%w within %s", ErrGateTimeout, lim.gateTimeout)))
			}
		})
	}
	c.stopTimers = func() {
		if tick != nil {
			tick.Stop()
		}
		if gate != nil {
			gate.Stop()
		}
	}
}

// timerState is what the periodic tick keeps between runs (they never
// overlap).
type timerState struct {
	c      *Conn
	ka     *keepalive
	idle   idleState
	frames uint64 // c.frames at the last tick, to retire idle workers
}

// tick runs the periodic checks; false ends the ticks (the connection
// failed).
func (t *timerState) tick() bool {
	c := t.c
	lim := c.cfg.limits
	if c.ctx.Err() != nil {
		return false
	}
	if c.cfg.callTimeout > 0 {
		c.sweep()
	}
	if c.cfg.keepalive > 0 && !t.ka.tick() {
		return false
	}
	if d := lim.idleTimeout; d > 0 && !t.idle.tick(c, d) {
		return false
	}
	if d := lim.writeTimeout; d > 0 {
		now := monoNow()
		if ws := c.wstart.Load(); ws != 0 && now-ws >= int64(d) {
			c.fail(lostError(fmt.Errorf("%w: a write was blocked for %s", ErrSlowPeer, d)))
			return false
		}
		if st := c.starved.Load(); st != 0 && now-st >= int64(d) {
			c.fail(lostError(fmt.Errorf("%w: no flow-control credit for %s", ErrSlowPeer, d)))
			return false
		}
	}
	if f := c.frames.Load(); f == t.frames && c.inflight.Load() == 0 {
		c.retireWorkers()
	} else {
		t.frames = f
	}
	return true
}

// timed reports whether the limits need the timers.
func (l limits) timed() bool {
	return (l.gate != nil && l.gateTimeout > 0) || l.idleTimeout > 0 || l.writeTimeout > 0
}

// idleState tracks when the last whole frame arrived (timers only).
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
