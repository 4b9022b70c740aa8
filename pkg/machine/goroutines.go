package machine

import (
	"sync"
)

// bgTracker counts the machine's own background goroutines (the handler
// timeout timer's callbacks) so disposal can wait for them.
type bgTracker struct {
	mu      sync.Mutex
	cond    *sync.Cond
	n       int
	closing bool
}

func (b *bgTracker) enter() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closing {
		return false
	}
	b.n++
	return true
}

func (b *bgTracker) exit() {
	b.mu.Lock()
	b.n--
	if b.n == 0 && b.cond != nil {
		b.cond.Broadcast()
	}
	b.mu.Unlock()
}

// closeAndWait refuses new entries and waits for the running ones.
func (b *bgTracker) closeAndWait() {
	b.mu.Lock()
	b.closing = true
	if b.cond == nil {
		b.cond = sync.NewCond(&b.mu)
	}
	for b.n > 0 {
		b.cond.Wait()
	}
	b.mu.Unlock()
}
