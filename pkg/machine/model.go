package machine

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
)

// Model is the read-and-wait side of a state machine: the ordered state
// names and the schema, the tick vector, and the index of waiters (When,
// WhenNot, WhenTime, WhenTicks, WhenArgs, state contexts). It answers every
// read and wait of Api (Is, Time, Clock, When..., NewStateCtx, String,
// StringAll, Inspect...) from its ticks, whatever moves them.
//
// A Machine is built on one and moves its ticks with its transitions.
// Another implementation of Api, such as a mirror of a remote machine, gets
// one from NewModel and feeds it through the returned ModelWriter with the
// tick changes it learns (clock diffs), so both share one waiter index and
// one set of semantics.
//
// Reads are lock-free: ticks are atomics behind a seqlock, so a reader sees
// a consistent vector. Waiters are indexed by state, so a change checks only
// the waiters of the states it moved, and channels close after the model's
// lock is released. All methods are safe for concurrent use.
type Model struct {
	// mu guards writes of the ticks, the waiter index and, in a Machine, the
	// active list
	mu  sync.RWMutex
	seq atomic.Uint64
	sch atomic.Pointer[schema]
	waiters
	// closed is the model's disposal flag (a Machine's Disposed)
	closed *atomic.Bool
	// ctx is the parent of state contexts
	ctx context.Context
	lg  modelLogger
	// own backs closed for a model made by NewModel
	own atomic.Bool
}

// model lets Machine embed Model under an unexported field name.
type model = Model

// modelLogger receives the model's decision logs (a Machine's logger).
type modelLogger interface {
	logOn(l LogLevel) bool
	log(l LogLevel, format string, args ...any)
}

// initModel sets up m for the compiled schema sch (with zero ticks).
func (m *Model) initModel(ctx context.Context, sch *schema, closed *atomic.Bool, lg modelLogger) {
	m.sch.Store(sch)
	m.initWaitersLocked(len(sch.names))
	m.ctx, m.closed, m.lg = ctx, closed, lg
}

func (m *Model) mlogOn(l LogLevel) bool { return m.lg != nil && m.lg.logOn(l) }

func (m *Model) mlog(l LogLevel, format string, args ...any) {
	if m.lg != nil {
		m.lg.log(l, format, args...)
	}
}

// NormalizeSchema returns s as a machine keeps it: a deep copy where each
// state's own name is dropped from its Remove and After lists, Remove loses
// the names also in Add, and Exception is added (a Multi state) if missing.
// It's a pure function: s is not modified.
func NormalizeSchema(s Struct) Struct {
	st := cleanStruct(s)
	if _, ok := st[Exception]; !ok {
		st[Exception] = State{Multi: true}
	}
	return st
}

// NewModel returns a model of the schema s (normalised by NormalizeSchema)
// with the ordered state names names, which must list every state of the
// normalised schema exactly once, Exception included. All ticks start at 0.
// State contexts are children of ctx (nil means Background). The returned
// writer is the only way to move its ticks; keep it to the model's feeder.
func NewModel(ctx context.Context, s Struct, names S) (*Model, *ModelWriter, error) {
	st := NormalizeSchema(s)
	if err := verifyNames(st, names); err != nil {
		return nil, nil, err
	}
	if ctx == nil {
		ctx = context.Background()
	}
	m := &Model{}
	m.initModel(ctx, compileSchema(st, names), &m.own, nil)
	return m, &ModelWriter{m: m}, nil
}

// TickDelta is one state's change in an update fed to a Model.
type TickDelta struct {
	// Index is the state's position in StateNames().
	Index int
	// Delta is how much the state's tick grew: every activation and every
	// deactivation adds 1, so an odd delta flips the state.
	Delta uint64
	// Exited tells, for a state active before and after the update whose
	// tick grew by 2 or more, that it was deactivated in between; otherwise
	// (a Multi state re-entered) it stayed active.
	Exited bool
}

// ModelWriter moves the ticks of the Model it was returned with, and
// releases the waiters that the changes satisfy. Its methods are safe for
// concurrent use; updates are applied one at a time, in call order.
type ModelWriter struct {
	m *Model
}

// Apply applies one update: the ticks of the named states grow by their
// deltas (entries with an index out of range or a zero delta are ignored).
// A waiter is released if its condition held at some moment of the update:
// When for a state activated and deactivated again within it, WhenNot and
// state contexts for a state deactivated and activated again (for a Multi
// state active at both ends, as Exited tells).
func (w *ModelWriter) Apply(deltas []TickDelta) {
	m := w.m
	var buf [8]tickChange
	changes := buf[:0]
	m.mu.Lock()
	if m.closed.Load() {
		m.mu.Unlock()
		return
	}
	sch := m.sch.Load()
	// watched: a moved state has waiters now; one registered after the
	// unlock sees the new ticks when it registers
	watched := false
	m.seq.Add(1)
	for _, d := range deltas {
		if d.Index < 0 || d.Index >= len(sch.ticks) || d.Delta == 0 {
			continue
		}
		old := sch.ticks[d.Index].Load()
		sch.ticks[d.Index].Store(old + d.Delta)
		changes = append(changes, tickChange{idx: d.Index, old: old, new: old + d.Delta, exited: d.Exited})
		watched = watched || len(m.byState[d.Index]) > 0 || m.stateCtx[d.Index].cancel != nil
	}
	m.seq.Add(1)
	m.mu.Unlock()
	if watched {
		m.processWaiters(sch, changes)
	}
}

// SetTime replaces the whole tick vector (a handshake or a resync), in
// StateNames() order, and releases the waiters that the new ticks satisfy.
// A tick that decreased is taken as it is. It fails if t's length isn't
// the number of states.
func (w *ModelWriter) SetTime(t Time) error {
	m := w.m
	m.mu.Lock()
	sch := m.sch.Load()
	if len(t) != len(sch.ticks) {
		m.mu.Unlock()
		return fmt.Errorf("%w: %d ticks for %d states", ErrInvalidArgs, len(t), len(sch.ticks))
	}
	if m.closed.Load() {
		m.mu.Unlock()
		return nil
	}
	var changes []tickChange
	m.seq.Add(1)
	for i, v := range t {
		if old := sch.ticks[i].Load(); old != v {
			sch.ticks[i].Store(v)
			changes = append(changes, tickChange{idx: i, old: old, new: v})
		}
	}
	m.seq.Add(1)
	m.mu.Unlock()
	m.processWaiters(sch, changes)
	return nil
}

// MatchArgs releases the WhenArgs waiters of state whose args are all
// present, and equal, in args: call it when the state's State handler runs
// with the mutation's args. An unknown state matches nothing.
func (w *ModelWriter) MatchArgs(state string, args A) {
	m := w.m
	if i := m.sch.Load().idx(state); i >= 0 && m.nWhenArgs.Load() > 0 {
		m.checkWhenArgs(i, args)
	}
}

// ReleaseArgs releases the WhenArgs waiter of state whose channel is ch,
// and tells whether it was pending. It's for a feeder that doesn't see the
// mutation's args but learns which of its waits matched (a mirror whose
// source matches the args and reports the matches by wait): releasing just
// that one keeps a wait registered after the match from being released by
// it. An unknown state, a foreign channel or a released waiter is a no-op.
func (w *ModelWriter) ReleaseArgs(state string, ch <-chan struct{}) bool {
	m := w.m
	i := m.sch.Load().idx(state)
	return i >= 0 && m.nWhenArgs.Load() > 0 && m.releaseArgs(i, ch)
}

// Close releases every waiter and cancels every state context; later waits
// return closed channels. The ticks stay readable. Idempotent.
func (w *ModelWriter) Close() {
	m := w.m
	m.mu.Lock()
	m.closed.Store(true)
	m.mu.Unlock()
	m.closeAllWaiters()
}

// ActiveStates returns the active states, in StateNames() order (empty, not
// nil, when none is). A Machine lists them in the order of its last
// transition's targets instead.
func (m *Model) ActiveStates() S {
	out := S{}
	m.stable(func(sch *schema) {
		out = out[:0]
		for i, n := range sch.names {
			if sch.ticks[i].Load()%2 == 1 {
				out = append(out, n)
			}
		}
	})
	return slices.Clip(out)
}

// tickChange is what one update did to one state: its tick went from old to
// new; exited is TickDelta.Exited.
type tickChange struct {
	idx      int
	old, new uint64
	exited   bool
}

// findChange returns the change of state i, if the update changed it.
func findChange(changes []tickChange, i int) (tickChange, bool) {
	for _, c := range changes {
		if c.idx == i {
			return c, true
		}
	}
	return tickChange{}, false
}

// wasActive tells whether the state was active at some moment of the
// update (after its start, which was checked before).
func (c tickChange) wasActive() bool {
	return c.new%2 == 1 || (c.new > c.old && c.new-c.old >= 2)
}

// wasInactive tells whether the state was inactive at some moment of the
// update. For a Multi state active at both ends, exited tells a
// deactivation from a re-entry.
func (c tickChange) wasInactive(multi bool) bool {
	switch {
	case c.new%2 == 0:
		return true
	case c.new < c.old || c.new-c.old < 2:
		return false
	case c.old%2 == 0:
		return true
	case multi:
		return c.exited
	}
	return true
}
