package rpc

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/arpc-go/arpc/pkg/rpc2"
)

// fanout sends the source's changes to the sessions. The mutating path only
// flags a change (sourceChanged, one atomic operation and a non-blocking
// channel send, whatever the number of sessions); one goroutine, owned by the
// server, then gathers the changes for the push interval and writes one
// update to each session that observes a changed state. A session that
// observes none of them is not touched. Session-specific news (an answer to
// a request, a matched watch, the effect of a mutation sent without a reply)
// marks just that session.
//
// The fan-out never waits for a client: a session whose client has not
// handled the updates already sent (its flow-control window is full) is
// skipped and tried again later, so its changes merge into one diff against
// what it was last sent, and a slow or stalled client costs memory bounded
// by the number of states and slows nobody else.
type fanout struct {
	s      *Server
	ctx    context.Context
	cancel context.CancelFunc
	kick   chan struct{}
	// changed is set by the source's queue passes, cleared by a pass
	changed atomic.Bool

	mu      sync.Mutex
	marked  []*session
	started bool

	// owned by run
	passes  uint64
	bits    bitset
	spare   []*session
	targets []*session
	retry   []*session
}

// fanoutRetry is how long a session whose client is behind waits before the
// fan-out tries it again.
const fanoutRetry = 10 * time.Millisecond

func newFanout(s *Server) *fanout {
	f := &fanout{s: s, kick: make(chan struct{}, 1), bits: newBitset(len(s.names))}
	f.ctx, f.cancel = context.WithCancel(s.ctx)
	return f
}

// start starts the fan-out's goroutine (owned by the server's wg) with the
// first session, unless the fan-out was stopped.
func (f *fanout) start() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.started || f.ctx.Err() != nil {
		return
	}
	f.started = true
	f.s.wg.Add(1)
	go f.run()
}

// stop ends the fan-out's goroutine (the caller waits for the server's wg).
func (f *fanout) stop() {
	f.mu.Lock()
	f.cancel()
	f.mu.Unlock()
}

func (f *fanout) wake() {
	select {
	case f.kick <- struct{}{}:
	default:
	}
}

// sourceChanged notes a queue pass of the source.
func (f *fanout) sourceChanged() {
	if !f.changed.Load() && f.changed.CompareAndSwap(false, true) {
		f.wake()
	}
}

// mark schedules a push to one session.
func (f *fanout) mark(se *session) {
	if !se.marked.CompareAndSwap(false, true) {
		return
	}
	f.mu.Lock()
	f.marked = append(f.marked, se)
	f.mu.Unlock()
	f.wake()
}

// run is the fan-out's goroutine: after each wake-up it waits the push
// interval, so that the changes made meanwhile go out together, then pushes.
func (f *fanout) run() {
	defer f.s.wg.Done()
	ctx := f.ctx
	interval := f.s.opts.pushInterval
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		var retry <-chan time.Time
		if len(f.retry) > 0 {
			timer.Reset(fanoutRetry)
			retry = timer.C
		}
		select {
		case <-ctx.Done():
			return
		case <-f.kick:
			// no stale tick can be received after Stop (Go 1.23 timers)
			timer.Stop()
		case <-retry:
		}
		if interval > 0 {
			timer.Reset(interval)
			select {
			case <-ctx.Done():
				return
			case <-timer.C:
			}
		}
		f.pass()
	}
}

// pass pushes to the marked sessions, the sessions waiting for a retry, and,
// if the source changed, every session that observes a changed state.
func (f *fanout) pass() {
	targets := append(f.targets[:0], f.retry...)
	clear(f.retry)
	f.retry = f.retry[:0]

	f.mu.Lock()
	marked := f.marked
	f.marked = f.spare[:0]
	f.mu.Unlock()
	for _, se := range marked {
		se.marked.Store(false)
	}
	targets = append(targets, marked...)
	clear(marked)
	f.spare = marked[:0]

	if f.changed.Swap(false) && f.s.tracer.takeChanged(f.bits) {
		f.s.mu.Lock()
		for _, se := range f.s.sessions {
			if se.observesAny(f.bits) {
				targets = append(targets, se)
			}
		}
		f.s.mu.Unlock()
	}
	f.passes++
	for _, se := range targets {
		if se.pass == f.passes {
			continue // already pushed in this pass
		}
		se.pass = f.passes
		if err := se.push(); errors.Is(err, rpc2.ErrWouldBlock) {
			f.s.stats.traffic.deferred.Add(1)
			f.retry = append(f.retry, se)
		} else if err != nil && !errors.Is(err, errDetached) {
			f.s.opts.logger.Debug("arpc: push failed", "client", se.clientID, "err", err)
		}
	}
	clear(targets)
	f.targets = targets[:0]
}

// bitset is a set of state indexes.
type bitset []uint64

func newBitset(n int) bitset { return make(bitset, (n+63)/64) }

func (b bitset) set(i int) { b[i/64] |= 1 << (uint(i) % 64) }

// intersects reports whether b and o share an index.
func (b bitset) intersects(o bitset) bool {
	for i, w := range b {
		if i < len(o) && w&o[i] != 0 {
			return true
		}
	}
	return false
}
