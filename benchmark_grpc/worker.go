package benchgrpc

import (
	"math/rand/v2"
	"sync"
	"sync/atomic"
)

// Worker is the one workload every transport serves. It holds a value in {1, 2, 3}. Calling the
// operation that matches the value counts a completion, picks a new value and notifies the listener;
// calling any other operation counts an error (a mismatch) and changes nothing.
//
// Every Worker draws its values from its own PCG generator seeded by NewWorker, so the same seed gives
// the same sequence whatever the transport. All methods are safe for concurrent use; the listener is
// called synchronously, outside the Worker's lock, on the goroutine that called Start or CallOp.
type Worker struct {
	mu       sync.Mutex
	value    int
	rng      *rand.Rand
	listener func(value int)

	completions atomic.Uint64
	errors      atomic.Uint64
}

// NewWorker returns a Worker with no value yet, whose value sequence is determined by seed.
func NewWorker(seed uint64) *Worker {
	return &Worker{rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
}

// SetListener sets the function called with each new value (nil removes it). Set it before Start.
func (w *Worker) SetListener(fn func(value int)) {
	w.mu.Lock()
	w.listener = fn
	w.mu.Unlock()
}

// Start picks the first value and notifies the listener. It counts nothing.
func (w *Worker) Start() {
	w.mu.Lock()
	w.value = w.next()
	v, fn := w.value, w.listener
	w.mu.Unlock()
	if fn != nil {
		fn(v)
	}
}

// Value returns the current value: 1, 2 or 3, or 0 before Start.
func (w *Worker) Value() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.value
}

// CallOp calls operation op. If op matches the current value it counts a completion, picks a new
// value, notifies the listener and returns true. Otherwise it counts an error and returns false.
func (w *Worker) CallOp(op int) bool {
	w.mu.Lock()
	if w.value == 0 || op != w.value {
		w.mu.Unlock()
		w.errors.Add(1)
		return false
	}
	w.value = w.next()
	v, fn := w.value, w.listener
	w.mu.Unlock()
	w.completions.Add(1)
	if fn != nil {
		fn(v)
	}
	return true
}

// Completions returns how many matching operations were called.
func (w *Worker) Completions() uint64 { return w.completions.Load() }

// Errors returns how many mismatched operations were called.
func (w *Worker) Errors() uint64 { return w.errors.Load() }

// next draws a value in {1, 2, 3}; the caller holds mu.
func (w *Worker) next() int { return 1 + w.rng.IntN(3) }
