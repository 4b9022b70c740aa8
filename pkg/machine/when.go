package machine

import (
	"context"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
)

// bKind is the kind of a waiter binding.
type bKind uint8

const (
	bWhen bKind = iota
	bWhenNot
	bWhenTime
	bWhenArgs
)

// binding is one When* waiter. Its fields are guarded by Machine.mu.
type binding struct {
	kind  bKind
	ch    chan struct{}
	idxs  []int // state indexes; -1 for an unknown state
	inl   [2]int
	times Time
	args  A
	done  bool
	never bool // When with an unknown state
	stop  func() bool
}

// waiters holds the bindings, indexed by state index, and state contexts.
// Guarded by Machine.mu, except the counters.
type waiters struct {
	byState  [][]*binding // When, WhenNot, WhenTime
	byArgs   [][]*binding // WhenArgs
	orphans  []*binding   // bindings without a known state
	stateCtx []stateCtxEntry
	nWatch   atomic.Int32 // bindings in byState/orphans plus state ctxs
	// nWhenArgs counts WhenArgs bindings
	nWhenArgs    atomic.Int32
	cbs          sync.WaitGroup
	clockCleared atomic.Bool
}

func (w *waiters) initWaitersLocked(n int) {
	w.byState = make([][]*binding, n)
	w.byArgs = make([][]*binding, n)
	w.stateCtx = make([]stateCtxEntry, n)
}

// closedCh is a shared, closed channel.
var closedCh = func() chan struct{} {
	ch := make(chan struct{})
	close(ch)
	return ch
}()

// addBindingLocked indexes b and registers ctx. Needs m.mu.
func (m *Model) addBindingLocked(b *binding, ctx context.Context) {
	indexed := false
	for _, i := range b.idxs {
		if i < 0 {
			continue
		}
		if b.kind == bWhenArgs {
			m.byArgs[i] = append(m.byArgs[i], b)
		} else {
			m.byState[i] = append(m.byState[i], b)
		}
		indexed = true
	}
	if !indexed {
		m.orphans = append(m.orphans, b)
	}
	if b.kind == bWhenArgs {
		m.nWhenArgs.Add(1)
	} else {
		m.nWatch.Add(1)
	}
	if ctx != nil && ctx.Done() != nil {
		m.cbs.Add(1)
		b.stop = context.AfterFunc(ctx, func() {
			defer m.cbs.Done()
			m.mu.Lock()
			if b.done {
				m.mu.Unlock()
				return
			}
			m.unindexLocked(b)
			m.mu.Unlock()
			close(b.ch)
		})
	}
}

// unindexLocked marks b done and removes it from the indexes. Needs m.mu.
func (m *Model) unindexLocked(b *binding) {
	b.done = true
	del := func(l []*binding) []*binding {
		for k, v := range l {
			if v == b {
				last := len(l) - 1
				l[k] = l[last]
				l[last] = nil
				return l[:last]
			}
		}
		return l
	}
	indexed := false
	for _, i := range b.idxs {
		if i < 0 || i >= len(m.byState) {
			continue
		}
		indexed = true
		if b.kind == bWhenArgs {
			m.byArgs[i] = del(m.byArgs[i])
		} else {
			m.byState[i] = del(m.byState[i])
		}
	}
	if !indexed {
		m.orphans = del(m.orphans)
	}
	if b.kind == bWhenArgs {
		m.nWhenArgs.Add(-1)
	} else {
		m.nWatch.Add(-1)
	}
}

// release closes the channels of bindings removed from the indexes and stops
// their ctx watchers. Call without m.mu.
func (m *Model) release(bs []*binding) {
	for _, b := range bs {
		if b.stop != nil && b.stop() {
			m.cbs.Done()
		}
		close(b.ch)
	}
}

// satisfied tells whether b's condition holds now or, for the states that
// changes moved, held at some moment of that update (see tickChange). Needs
// a stable view.
func (m *Model) satisfied(sch *schema, b *binding, changes []tickChange) bool {
	switch b.kind {
	case bWhen:
		if b.never {
			return false
		}
		for _, i := range b.idxs {
			if c, ok := findChange(changes, i); ok {
				if !c.wasActive() {
					return false
				}
			} else if sch.ticks[i].Load()%2 == 0 {
				return false
			}
		}
		return true
	case bWhenNot:
		for _, i := range b.idxs {
			if i < 0 {
				continue
			}
			if c, ok := findChange(changes, i); ok {
				if !c.wasInactive(sch.states[i].multi) {
					return false
				}
			} else if sch.ticks[i].Load()%2 == 1 {
				return false
			}
		}
		return true
	case bWhenTime:
		for k, i := range b.idxs {
			var t uint64
			if i >= 0 {
				t = sch.ticks[i].Load()
			}
			if t < b.times[k] {
				return false
			}
		}
		return true
	}
	return false
}

// processWaiters releases When/WhenNot/WhenTime bindings and cancels state
// contexts after an update moved the ticks as changes tell.
func (m *Model) processWaiters(sch *schema, changes []tickChange) {
	if m.nWatch.Load() == 0 || len(changes) == 0 {
		return
	}
	var rel []*binding
	var cancels []context.CancelFunc
	m.mu.Lock()
	if m.sch.Load() != sch {
		m.mu.Unlock()
		return
	}
	for _, c := range changes {
		i := c.idx
		for k := 0; k < len(m.byState[i]); k++ {
			b := m.byState[i][k]
			if b.done || !m.satisfied(sch, b, changes) {
				continue
			}
			m.unindexLocked(b)
			rel = append(rel, b)
			k = -1 // the list changed; rescan (done ones are skipped)
		}
		if e := m.stateCtx[i]; e.cancel != nil && c.wasInactive(sch.states[i].multi) {
			cancels = append(cancels, e.cancel)
			m.stateCtx[i] = stateCtxEntry{}
			m.nWatch.Add(-1)
		}
	}
	m.mu.Unlock()
	if len(rel) > 0 && m.mlogOn(LogDecisions) {
		for _, b := range rel {
			var names S
			for _, i := range b.idxs {
				if i >= 0 {
					names = append(names, sch.names[i])
				}
			}
			switch b.kind {
			case bWhenTime:
				m.mlog(LogDecisions, "[when:time] match for (%s)", j(names))
			case bWhenNot:
				m.mlog(LogDecisions, "[when:not] match for (%s)", j(names))
			default:
				m.mlog(LogDecisions, "[when] match for (%s)", j(names))
			}
		}
	}
	m.release(rel)
	for _, c := range cancels {
		c()
	}
}

// newBinding prepares a binding for names.
func newBinding(sch *schema, kind bKind, names S) *binding {
	b := &binding{kind: kind, ch: make(chan struct{})}
	if len(names) <= len(b.inl) {
		b.idxs = b.inl[:0]
	}
	for _, n := range names {
		i := sch.idx(n)
		if i < 0 {
			if kind == bWhen {
				b.never = true
			}
			if kind == bWhenNot {
				continue
			}
		} else if kind != bWhenTime && slices.Contains(b.idxs, i) {
			continue // a repeated name counts once, or the binding never closes
		}
		b.idxs = append(b.idxs, i)
	}
	return b
}

// register adds b unless it's already satisfied, ctx is done or the machine
// is disposed; then it returns a closed channel.
func (m *Model) register(b *binding, ctx context.Context, check bool) <-chan struct{} {
	if ctx != nil && ctx.Err() != nil {
		return closedCh
	}
	m.mu.Lock()
	if m.closed.Load() {
		m.mu.Unlock()
		return closedCh
	}
	sch := m.sch.Load()
	if check && m.satisfied(sch, b, nil) {
		m.mu.Unlock()
		return closedCh
	}
	m.addBindingLocked(b, ctx)
	m.mu.Unlock()
	return b.ch
}

// When returns a channel closed once all the states are active (at once if
// they already are, or for S{}), when ctx ends (nil: never) or on disposal.
// An unknown state never matches.
func (m *Model) When(states S, ctx context.Context) <-chan struct{} {
	if len(states) == 0 || m.closed.Load() {
		return closedCh
	}
	b := newBinding(m.sch.Load(), bWhen, states)
	return m.register(b, ctx, true)
}

// When1 is When for one state.
func (m *Model) When1(state string, ctx context.Context) <-chan struct{} {
	if m.closed.Load() {
		return closedCh
	}
	sch := m.sch.Load()
	b := &binding{kind: bWhen, ch: make(chan struct{})}
	b.inl[0] = sch.idx(state)
	b.idxs = b.inl[:1]
	b.never = b.inl[0] < 0
	return m.register(b, ctx, true)
}

// WhenNot returns a channel closed once none of the states is active (at
// once if that holds), when ctx ends or on disposal. Unknown states count as
// inactive.
func (m *Model) WhenNot(states S, ctx context.Context) <-chan struct{} {
	if m.closed.Load() {
		return closedCh
	}
	b := newBinding(m.sch.Load(), bWhenNot, states)
	if len(b.idxs) == 0 {
		return closedCh
	}
	return m.register(b, ctx, true)
}

// WhenNot1 is WhenNot for one state.
func (m *Model) WhenNot1(state string, ctx context.Context) <-chan struct{} {
	return m.WhenNot(S{state}, ctx)
}

// WhenErr is When(S{Exception}, ctx).
func (m *Model) WhenErr(ctx context.Context) <-chan struct{} {
	return m.When(S{Exception}, ctx)
}

// WhenTime returns a channel closed once tick(states[i]) >= times[i] for
// every i (at once if that holds or if the lengths differ), when ctx ends or
// on disposal. Unknown states have tick 0.
func (m *Model) WhenTime(states S, times Time, ctx context.Context) <-chan struct{} {
	if m.closed.Load() {
		return closedCh
	}
	if len(states) != len(times) {
		if m.mlogOn(LogDecisions) {
			m.mlog(LogDecisions, "[when:time] lengths differ: %d states, %d times", len(states), len(times))
		}
		return closedCh
	}
	b := newBinding(m.sch.Load(), bWhenTime, states)
	b.times = slices.Clone(times)
	return m.register(b, ctx, true)
}

// WhenTicks returns a channel closed once the state's tick grows by ticks.
func (m *Model) WhenTicks(state string, ticks int, ctx context.Context) <-chan struct{} {
	return m.WhenTime(S{state}, Time{m.Tick(state) + uint64(ticks)}, ctx)
}

// WhenTicksEq returns a channel closed once the state's tick reaches tick.
func (m *Model) WhenTicksEq(state string, tick uint64, ctx context.Context) <-chan struct{} {
	return m.WhenTime(S{state}, Time{tick}, ctx)
}

// WhenArgs returns a channel closed once the state's State event carries
// args with every key of args equal (compared safely: non-comparable values
// use reflect.DeepEqual), when ctx ends or on disposal. A non-Multi state
// emits its State event only when it newly activates. Each call is its own
// binding with its own ctx, even for the same state and args. An unknown
// state never matches.
func (m *Model) WhenArgs(state string, args A, ctx context.Context) <-chan struct{} {
	if m.closed.Load() {
		return closedCh
	}
	sch := m.sch.Load()
	b := &binding{kind: bWhenArgs, ch: make(chan struct{}), args: cloneArgs(args)}
	b.inl[0] = sch.idx(state)
	b.idxs = b.inl[:1]
	return m.register(b, ctx, false)
}

// checkWhenArgs releases WhenArgs bindings of state i matching args.
func (m *Model) checkWhenArgs(i int, args A) {
	var rel []*binding
	m.mu.Lock()
	if i < len(m.byArgs) {
		for k := 0; k < len(m.byArgs[i]); k++ {
			b := m.byArgs[i][k]
			if b.done || !argsMatch(args, b.args) {
				continue
			}
			m.unindexLocked(b)
			rel = append(rel, b)
			k = -1
		}
	}
	m.mu.Unlock()
	if len(rel) > 0 && m.mlogOn(LogDecisions) {
		m.mlog(LogDecisions, "[when:args] match for %s", m.sch.Load().names[i])
	}
	m.release(rel)
}

// releaseArgs releases the WhenArgs binding of state i whose channel is ch.
func (m *Model) releaseArgs(i int, ch <-chan struct{}) bool {
	var rel []*binding
	m.mu.Lock()
	if i < len(m.byArgs) {
		for _, b := range m.byArgs[i] {
			if !b.done && b.ch == ch {
				m.unindexLocked(b)
				rel = append(rel, b)
				break
			}
		}
	}
	m.mu.Unlock()
	if len(rel) > 0 && m.mlogOn(LogDecisions) {
		m.mlog(LogDecisions, "[when:args] match for %s", m.sch.Load().names[i])
	}
	m.release(rel)
	return len(rel) > 0
}

// argsMatch tells whether have contains every key of want with an equal
// value.
func argsMatch(have, want A) bool {
	for k, w := range want {
		v, ok := have[k]
		if !ok || !safeEqual(v, w) {
			return false
		}
	}
	return true
}

// safeEqual compares with ==, falling back to reflect.DeepEqual for
// non-comparable values instead of panicking.
func safeEqual(a, b any) (eq bool) {
	defer func() {
		if recover() != nil {
			eq = reflect.DeepEqual(a, b)
		}
	}()
	return a == b
}

// remapWaitersLocked moves bindings and state contexts to new indexes after
// a schema change (remap: old index to new, or -1). Needs m.mu.
func (m *Model) remapWaitersLocked(remap []int, n int) {
	var all []*binding
	seen := map[*binding]bool{}
	collect := func(l []*binding) {
		for _, b := range l {
			if !seen[b] {
				seen[b] = true
				all = append(all, b)
			}
		}
	}
	for _, l := range m.byState {
		collect(l)
	}
	for _, l := range m.byArgs {
		collect(l)
	}
	collect(m.orphans)
	oldCtx := m.stateCtx
	m.byState = make([][]*binding, n)
	m.byArgs = make([][]*binding, n)
	m.orphans = nil
	m.stateCtx = make([]stateCtxEntry, n)
	for i, e := range oldCtx {
		if e.cancel == nil {
			continue
		}
		if j := remap[i]; j >= 0 {
			m.stateCtx[j] = e
		} else {
			e.cancel()
			m.nWatch.Add(-1)
		}
	}
	for _, b := range all {
		for k, i := range b.idxs {
			if i >= 0 {
				b.idxs[k] = remap[i]
				if remap[i] < 0 && b.kind == bWhen {
					b.never = true
				}
			}
		}
		indexed := false
		for _, i := range b.idxs {
			if i < 0 {
				continue
			}
			indexed = true
			if b.kind == bWhenArgs {
				m.byArgs[i] = append(m.byArgs[i], b)
			} else {
				m.byState[i] = append(m.byState[i], b)
			}
		}
		if !indexed {
			m.orphans = append(m.orphans, b)
		}
	}
}

// closeAllWaiters releases every binding and state context on disposal, and
// waits for ctx watchers.
func (m *Model) closeAllWaiters() {
	var rel []*binding
	var cancels []context.CancelFunc
	m.mu.Lock()
	seen := map[*binding]bool{}
	add := func(l []*binding) {
		for _, b := range l {
			if !b.done && !seen[b] {
				seen[b] = true
				rel = append(rel, b)
			}
		}
	}
	for _, l := range m.byState {
		add(l)
	}
	for _, l := range m.byArgs {
		add(l)
	}
	add(m.orphans)
	for _, b := range rel {
		m.unindexLocked(b)
	}
	for i, e := range m.stateCtx {
		if e.cancel != nil {
			cancels = append(cancels, e.cancel)
			m.stateCtx[i] = stateCtxEntry{}
			m.nWatch.Add(-1)
		}
	}
	m.mu.Unlock()
	m.release(rel)
	for _, c := range cancels {
		c()
	}
	m.cbs.Wait()
}
