package rpc

import (
	"context"
	"slices"

	am "github.com/arpc-go/arpc/pkg/machine"
)

// binding kinds
const (
	bWhen = iota
	bWhenNot
	bTime
	bCtx
)

// binding is one pending wait (or state context) on the mirror, registered
// under each of its states.
type binding struct {
	kind   int
	states []int
	times  []uint64
	ch     chan struct{}
	cancel context.CancelFunc
	// stop releases the ctx watcher of the binding.
	stop func() bool
	done bool
}

// fire resolves the binding once.
func (b *binding) fire() {
	if b.done {
		return
	}
	b.done = true
	if b.ch != nil {
		close(b.ch)
	}
	if b.cancel != nil {
		b.cancel()
	}
	if b.stop != nil {
		b.stop()
	}
}

// change is what one update did to one state.
type change struct {
	idx      int
	old, new uint64
	exited   bool
}

// findChange returns the change of state i, if the update changed it.
func findChange(changes []change, i int) (change, bool) {
	for _, c := range changes {
		if c.idx == i {
			return c, true
		}
	}
	return change{}, false
}

// wasActive tells whether the state was active at some moment after the
// window started (the window's first moment was checked before).
func (c change) wasActive() bool { return c.new%2 == 1 || c.new-c.old >= 2 }

// wasInactive tells whether the state was inactive at some moment after the
// window started. For a Multi state active at both ends, the server's exit
// flag tells a deactivation from a re-entry.
func (c change) wasInactive(multi bool) bool {
	switch {
	case c.new%2 == 0:
		return true
	case c.new-c.old < 2:
		return false
	case c.old%2 == 0:
		return true
	case multi:
		return c.exited
	}
	return true
}

// closedCh is returned for waits that hold at once.
var closedCh = func() chan struct{} {
	ch := make(chan struct{})
	close(ch)
	return ch
}()

// register adds b under its states and arms ctx. w.mu must be held.
func (w *Worker) registerLocked(b *binding, ctx context.Context) {
	for _, i := range b.states {
		w.byState[i] = append(w.byState[i], b)
	}
	if ctx != nil {
		b.stop = context.AfterFunc(ctx, func() {
			w.mu.Lock()
			w.unregisterLocked(b)
			b.fire()
			w.mu.Unlock()
		})
	}
}

func (w *Worker) unregisterLocked(b *binding) {
	for _, i := range b.states {
		l := w.byState[i]
		if j := slices.Index(l, b); j >= 0 {
			l[j] = l[len(l)-1]
			l[len(l)-1] = nil
			w.byState[i] = l[:len(l)-1]
		}
	}
}

// indexes maps names to indexes; ok is false if a name is unknown.
func (w *Worker) indexes(states am.S) ([]int, bool) {
	idxs := make([]int, 0, len(states))
	for _, s := range states {
		i := w.idx(s)
		if i < 0 {
			return idxs, false
		}
		if !slices.Contains(idxs, i) {
			idxs = append(idxs, i)
		}
	}
	return idxs, true
}

// When returns a channel closed once all the states are active, at once if
// they are. A state that was activated and deactivated again between two
// updates counts as having been active. The channel also closes when ctx ends
// or the Worker is disposed. An unknown state never activates.
func (w *Worker) When(states am.S, ctx context.Context) <-chan struct{} {
	return w.when(bWhen, states, ctx)
}

// When1 is When for one state.
func (w *Worker) When1(state string, ctx context.Context) <-chan struct{} {
	return w.When(am.S{state}, ctx)
}

// WhenNot returns a channel closed once none of the states is active, at once
// if that holds; passing through inactivity between two updates counts.
func (w *Worker) WhenNot(states am.S, ctx context.Context) <-chan struct{} {
	return w.when(bWhenNot, states, ctx)
}

// WhenNot1 is WhenNot for one state.
func (w *Worker) WhenNot1(state string, ctx context.Context) <-chan struct{} {
	return w.WhenNot(am.S{state}, ctx)
}

// WhenErr returns a channel closed once Exception is active.
func (w *Worker) WhenErr(ctx context.Context) <-chan struct{} {
	return w.When1(am.Exception, ctx)
}

func (w *Worker) when(kind int, states am.S, ctx context.Context) <-chan struct{} {
	if w.disposed.Load() {
		return closedCh
	}
	idxs, ok := w.indexes(states)
	if !ok {
		if kind == bWhenNot {
			// unknown states are inactive: wait only on the known ones
			idxs = idxs[:0]
			for _, s := range states {
				if i := w.idx(s); i >= 0 && !slices.Contains(idxs, i) {
					idxs = append(idxs, i)
				}
			}
		} else {
			return w.never(ctx)
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	want := uint64(1)
	if kind == bWhenNot {
		want = 0
	}
	holds := true
	for _, i := range idxs {
		if w.time[i]%2 != want {
			holds = false
			break
		}
	}
	if holds || w.disposed.Load() {
		return closedCh
	}
	b := &binding{kind: kind, states: idxs, ch: make(chan struct{})}
	w.registerLocked(b, ctx)
	return b.ch
}

// never returns a channel that closes only with ctx or disposal.
func (w *Worker) never(ctx context.Context) <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	b := &binding{kind: bWhen, ch: make(chan struct{})}
	w.neverLocked(b, ctx)
	return b.ch
}

func (w *Worker) neverLocked(b *binding, ctx context.Context) {
	// registered under no state: only ctx or Dispose resolve it
	w.watchSeq++
	id := w.watchSeq
	aw := &argsWatch{ch: b.ch, local: true}
	w.watches[id] = aw
	if ctx != nil {
		aw.stop = context.AfterFunc(ctx, func() {
			w.mu.Lock()
			if w.watches[id] == aw {
				delete(w.watches, id)
				aw.close()
			}
			w.mu.Unlock()
		})
	}
}

// WhenTime returns a channel closed once each state's tick reaches at least
// the matching value of times; at once if it already has, or if the lengths
// differ.
func (w *Worker) WhenTime(states am.S, times am.Time, ctx context.Context) <-chan struct{} {
	if w.disposed.Load() || len(states) != len(times) {
		return closedCh
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	b := &binding{kind: bTime, ch: make(chan struct{})}
	holds := true
	for k, s := range states {
		i := w.idx(s)
		if i < 0 {
			if times[k] > 0 {
				// an unknown state stays at tick 0
				w.neverLocked(b, ctx)
				return b.ch
			}
			continue
		}
		b.states = append(b.states, i)
		b.times = append(b.times, times[k])
		if w.time[i] < times[k] {
			holds = false
		}
	}
	if holds {
		return closedCh
	}
	w.registerLocked(b, ctx)
	return b.ch
}

// WhenTicks returns a channel closed once state has ticked n more times.
func (w *Worker) WhenTicks(state string, n int, ctx context.Context) <-chan struct{} {
	return w.WhenTime(am.S{state}, am.Time{w.Tick(state) + uint64(max(n, 0))}, ctx)
}

// WhenTicksEq returns a channel closed once state's tick reaches tick.
func (w *Worker) WhenTicksEq(state string, tick uint64, ctx context.Context) <-chan struct{} {
	return w.WhenTime(am.S{state}, am.Time{tick}, ctx)
}

// NewStateCtx returns a context canceled once state is deactivated, or
// already canceled if it is inactive now. A Multi re-entry doesn't cancel it.
func (w *Worker) NewStateCtx(state string) context.Context {
	ctx, cancel := context.WithCancel(w.ctx)
	i := w.idx(state)
	w.mu.Lock()
	defer w.mu.Unlock()
	if i < 0 || w.time[i]%2 == 0 || w.disposed.Load() {
		cancel()
		return ctx
	}
	b := &binding{kind: bCtx, states: []int{i}, cancel: cancel}
	w.registerLocked(b, nil)
	return ctx
}

// fireLocked resolves the bindings the changes satisfy. w.mu must be held.
func (w *Worker) fireLocked(changes []change) {
	var fired []*binding
	for _, c := range changes {
		for _, b := range w.byState[c.idx] {
			if !b.done && !slices.Contains(fired, b) && w.holdsLocked(b, changes) {
				fired = append(fired, b)
			}
		}
	}
	for _, b := range fired {
		w.unregisterLocked(b)
		b.fire()
	}
}

// holdsLocked tells whether the changes of one update satisfy b.
func (w *Worker) holdsLocked(b *binding, changes []change) bool {
	switch b.kind {
	case bTime:
		for k, i := range b.states {
			if w.time[i] < b.times[k] {
				return false
			}
		}
		return true
	case bCtx:
		c, _ := findChange(changes, b.states[0])
		return c.wasInactive(w.multi[b.states[0]])
	}
	for _, i := range b.states {
		c, changed := findChange(changes, i)
		var ok bool
		switch {
		case !changed && b.kind == bWhen:
			ok = w.time[i]%2 == 1
		case !changed:
			ok = w.time[i]%2 == 0
		case b.kind == bWhen:
			ok = c.wasActive()
		default:
			ok = c.wasInactive(w.multi[i])
		}
		if !ok {
			return false
		}
	}
	return true
}
