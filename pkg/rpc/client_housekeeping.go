package rpc

import "context"

// housekeeping is the client's background loop: it tells the server about
// remote WhenArgs watches whose context ended, and about requests given up,
// off the caller's goroutine.
type housekeeping struct {
	unwatch chan struct{}
}

func newHousekeeping() housekeeping {
	return housekeeping{unwatch: make(chan struct{}, 1)}
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
	for {
		c.mu.Lock()
		changed := c.changed
		c.mu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-changed:
			// a new connection: what could not be sent before goes now
			c.sendUnrequests()
		case <-c.hk.unwatch:
			w.mu.Lock()
			ids := w.unwatches
			w.unwatches = nil
			w.mu.Unlock()
			for _, id := range ids {
				_ = c.notify(mUnwatchArgs, &wireUint{v: id})
			}
			c.sendUnrequests()
		}
	}
}
