package rpc

import (
	"context"
	"time"
)

// housekeeping is the client's background loop while connected: it
// resynchronises a mirror stuck behind a missing update, and cancels remote
// WhenArgs watches whose context ended.
type housekeeping struct {
	resync  chan struct{}
	unwatch chan struct{}
}

func newHousekeeping() housekeeping {
	return housekeeping{resync: make(chan struct{}, 1), unwatch: make(chan struct{}, 1)}
}

// requestResync asks the loop to check for a version gap.
func (c *Client) requestResync() {
	select {
	case c.hk.resync <- struct{}{}:
	default:
	}
}

// requestUnwatch asks the loop to send pending unwatches.
func (c *Client) requestUnwatch() {
	select {
	case c.hk.unwatch <- struct{}{}:
	default:
	}
}

func (c *Client) housekeep(ctx context.Context) {
	w := c.Worker
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	armed := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.hk.resync:
			if !armed {
				timer.Reset(c.opts.resyncAfter)
				armed = true
			}
		case <-timer.C:
			armed = false
			if w.hasGap() {
				_ = w.Resync(ctx)
			}
		case <-c.hk.unwatch:
			w.mu.Lock()
			ids := w.unwatches
			w.unwatches = nil
			w.mu.Unlock()
			for _, id := range ids {
				_ = c.notify(mUnwatchArgs, &wireUint{v: id})
			}
		}
	}
}
