package machine

import (
	"runtime"
	"sync"
)

// bgTracker counts the machine's own background goroutines (watchdog
// takeovers) so disposal can wait for them.
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

// onDrainerStack tells whether the calling goroutine is the one draining the
// queue of some machine (inside a handler, tracer or Eval function).
func onDrainerStack() bool {
	var pcs [64]uintptr
	n := runtime.Callers(3, pcs[:])
	frames := runtime.CallersFrames(pcs[:n])
	for {
		f, more := frames.Next()
		switch f.Function {
		case fnProcess, fnTakeover:
			return true
		}
		if !more {
			return false
		}
	}
}

const (
	fnProcess  = "github.com/arpc-go/arpc/pkg/machine.(*Machine).process"
	fnTakeover = "github.com/arpc-go/arpc/pkg/machine.(*Machine).takeover"
)
