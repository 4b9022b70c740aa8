package machine

import (
	"errors"
	"slices"
)

// Tracer observes a machine. Hooks run on the goroutine processing the queue
// (or calling the named method) and must not block; they must not call
// Mutate or Eval on the traced machine either.
type Tracer interface {
	// TransitionInit runs before resolution.
	TransitionInit(transition *Transition)
	// TransitionStart runs before the handlers.
	TransitionStart(transition *Transition)
	// TransitionEnd runs last, except when AnyAny canceled the transition.
	TransitionEnd(transition *Transition)
	// HandlerStart runs before each handler method.
	HandlerStart(transition *Transition, emitter string, handler string)
	// HandlerEnd runs after each handler method that returned in time.
	HandlerEnd(transition *Transition, emitter string, handler string)
	// End is never called by the engine.
	End()
	// MachineInit runs at the end of New (or when bound with BindTracer).
	MachineInit(machine *Machine)
	// MachineDispose runs when disposal starts.
	MachineDispose(machID string)
	// NewSubmachine runs for inheritable tracers of a parent.
	NewSubmachine(parent, machine *Machine)
	// Inheritable tells whether NewSubmachine should be called.
	Inheritable() bool
	// QueueEnd runs after each queue pass.
	QueueEnd(machine *Machine)
	// StructChange runs after SetStruct.
	StructChange(machine *Machine, old Struct)
	// VerifyStates runs after a successful VerifyStates.
	VerifyStates(machine *Machine)
}

// NoOpTracer implements Tracer with no-ops; embed it to implement only some
// hooks.
type NoOpTracer struct{}

var _ Tracer = (*NoOpTracer)(nil)

// TransitionInit does nothing.
func (t *NoOpTracer) TransitionInit(*Transition) {}

// TransitionStart does nothing.
func (t *NoOpTracer) TransitionStart(*Transition) {}

// TransitionEnd does nothing.
func (t *NoOpTracer) TransitionEnd(*Transition) {}

// HandlerStart does nothing.
func (t *NoOpTracer) HandlerStart(*Transition, string, string) {}

// HandlerEnd does nothing.
func (t *NoOpTracer) HandlerEnd(*Transition, string, string) {}

// End does nothing.
func (t *NoOpTracer) End() {}

// MachineInit does nothing.
func (t *NoOpTracer) MachineInit(*Machine) {}

// MachineDispose does nothing.
func (t *NoOpTracer) MachineDispose(string) {}

// NewSubmachine does nothing.
func (t *NoOpTracer) NewSubmachine(*Machine, *Machine) {}

// Inheritable returns false.
func (t *NoOpTracer) Inheritable() bool { return false }

// QueueEnd does nothing.
func (t *NoOpTracer) QueueEnd(*Machine) {}

// StructChange does nothing.
func (t *NoOpTracer) StructChange(*Machine, Struct) {}

// VerifyStates does nothing.
func (t *NoOpTracer) VerifyStates(*Machine) {}

// TransientTracer is an optional interface for a Tracer. If
// TransientTransitions returns true, the tracer promises not to keep a
// *Transition (nor its slices) after a hook returns, so the engine may
// reuse records, which saves allocations on every transition. Copy what you
// need inside the hook.
type TransientTracer interface {
	TransientTransitions() bool
}

// tracerSet is an immutable snapshot of the bound tracers.
type tracerSet struct {
	list []Tracer
	// transient: every tracer is a TransientTracer returning true
	transient bool
}

func newTracerSet(list []Tracer) *tracerSet {
	ts := &tracerSet{list: list, transient: true}
	for _, t := range list {
		if tt, ok := t.(TransientTracer); !ok || !tt.TransientTransitions() {
			ts.transient = false
		}
	}
	return ts
}

// tracerList returns the current tracers (a snapshot; don't modify).
func (m *Machine) tracerList() []Tracer {
	if p := m.tracers.Load(); p != nil {
		return p.list
	}
	return nil
}

// tracersKeepRecords tells whether some tracer may keep records.
func (m *Machine) tracersKeepRecords() bool {
	p := m.tracers.Load()
	return p != nil && len(p.list) > 0 && !p.transient
}

// tracersFor returns the current tracers, marking t as handed out if some
// may keep records.
func (m *Machine) tracersFor(t *Transition) []Tracer {
	p := m.tracers.Load()
	if p == nil || len(p.list) == 0 {
		return nil
	}
	if !p.transient {
		t.expose()
	}
	return p.list
}

// ErrTracerBound and ErrTracerNotBound are returned by BindTracer and
// DetachTracer.
var (
	ErrTracerBound    = errors.New("tracer already bound")
	ErrTracerNotBound = errors.New("tracer not bound")
)

// BindTracer adds a tracer; it takes effect from the next hook. Safe to call
// concurrently with transitions. The Tracers field is updated too.
func (m *Machine) BindTracer(t Tracer) error {
	if t == nil {
		return ErrInvalidArgs
	}
	if m.Disposed.Load() {
		return ErrDisposed
	}
	m.trMu.Lock()
	defer m.trMu.Unlock()
	cur := m.tracerList()
	if slices.Contains(cur, t) {
		return ErrTracerBound
	}
	next := append(slices.Clone(cur), t)
	m.tracers.Store(newTracerSet(next))
	m.Tracers = slices.Clone(next)
	return nil
}

// DetachTracer removes a tracer. Safe to call concurrently with transitions;
// a hook already running may still complete.
func (m *Machine) DetachTracer(t Tracer) error {
	m.trMu.Lock()
	defer m.trMu.Unlock()
	cur := m.tracerList()
	i := slices.Index(cur, t)
	if i < 0 {
		return ErrTracerNotBound
	}
	next := slices.Delete(slices.Clone(cur), i, i+1)
	m.tracers.Store(newTracerSet(next))
	m.Tracers = slices.Clone(next)
	return nil
}
