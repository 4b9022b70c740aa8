package rpc

import (
	"sync"

	am "github.com/arpc-go/arpc/pkg/machine"
)

// sourceTracer keeps the server's own copy of the source machine's clock,
// updated at the end of every transition, so every session diffs against one
// consistent vector. It also counts the deactivations of Multi states, which a
// tick delta alone can't tell from a re-entry.
type sourceTracer struct {
	*am.NoOpTracer
	s *Server

	mu    sync.Mutex
	time  am.Time
	exits am.Time
	multi []int
	// args are the arguments of each state's last activation
	args []am.A
	// changed marks, one bit per state index, the states whose tick moved
	// since the fan-out last took it
	changed bitset
}

func newSourceTracer(s *Server) *sourceTracer {
	t := &sourceTracer{NoOpTracer: &am.NoOpTracer{}, s: s}
	st := s.source.GetStruct()
	for i, n := range s.names {
		if st[n].Multi {
			t.multi = append(t.multi, i)
		}
	}
	t.exits = make(am.Time, len(s.names))
	t.time = make(am.Time, len(s.names))
	t.args = make([]am.A, len(s.names))
	t.changed = newBitset(len(s.names))
	return t
}

// attach binds the tracer, then merges in the current clock. Ticks never
// decrease, so taking the larger of both is right whichever came first; the
// source's lock is never taken while holding t.mu.
func (t *sourceTracer) attach() error {
	if err := t.s.source.BindTracer(t); err != nil {
		return err
	}
	now := t.s.source.Time(nil)
	t.mu.Lock()
	defer t.mu.Unlock()
	for i := range t.time {
		if i < len(now) && now[i] > t.time[i] {
			t.time[i] = now[i]
		}
	}
	return nil
}

func (t *sourceTracer) detach() {
	_ = t.s.source.DetachTracer(t)
}

// TransitionEnd records the clock after a transition.
func (t *sourceTracer) TransitionEnd(tr *am.Transition) {
	after := tr.TimeAfter
	if len(after) != len(t.time) {
		return
	}
	before := tr.TimeBefore
	t.mu.Lock()
	copy(t.time, after)
	if len(before) == len(after) {
		for i, v := range after {
			if v != before[i] {
				t.changed.set(i)
			}
		}
		t.recordArgsLocked(before, after, tr.Args())
		for _, i := range t.multi {
			if before[i]%2 == 1 && after[i]%2 == 0 {
				t.exits[i]++
			}
		}
	}
	t.mu.Unlock()
}

// QueueEnd tells the fan-out, once per queue pass, that the source changed.
// It costs the same whatever the number of sessions: the fan-out does the
// work on its own goroutine.
func (t *sourceTracer) QueueEnd(*am.Machine) {
	t.s.fan.sourceChanged()
}

// takeChanged moves the changed-state bits into dst (cleared first) and
// clears them, and reports whether any was set.
func (t *sourceTracer) takeChanged(dst bitset) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	any := false
	for i, w := range t.changed {
		dst[i] = w
		t.changed[i] = 0
		any = any || w != 0
	}
	return any
}

// snapshot copies the clock and the exit counters into time and exits.
func (t *sourceTracer) snapshot(time, exits am.Time) {
	t.mu.Lock()
	copy(time, t.time)
	copy(exits, t.exits)
	t.mu.Unlock()
}

// diff appends to entries what changed since base/baseExits and moves them.
func (t *sourceTracer) diff(entries []tickEntry, base, baseExits am.Time) []tickEntry {
	t.mu.Lock()
	defer t.mu.Unlock()
	for i, v := range t.time {
		b := base[i]
		if v == b {
			continue
		}
		e := tickEntry{idx: i, delta: v - b}
		if b%2 == 1 && v%2 == 1 && t.exits[i] != baseExits[i] {
			e.exited = true
		}
		entries = append(entries, e)
		base[i] = v
	}
	for _, i := range t.multi {
		baseExits[i] = t.exits[i]
	}
	return entries
}

// TransientTransitions promises the engine that the tracer keeps no
// *Transition, so transition records can be reused.
func (t *sourceTracer) TransientTransitions() bool { return true }
