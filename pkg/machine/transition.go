package machine

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"maps"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
)

// Transition is the record of one processed mutation. It's valid while its
// transition runs. Without tracers, the engine reuses the record for the
// next transition unless it was handed out (Machine.Transition,
// Event.Transition, Event.Mutation, a panic's ExceptionArgsPanic), so a
// record obtained through those stays intact; tracers always get fresh ones.
// Its fields are written by the goroutine processing the queue; read them
// from handlers and tracers, not concurrently from other goroutines.
type Transition struct {
	// ID is a random ID, set when the record is handed out.
	ID string
	// Steps is debugger data: relations, handlers, requested states. A
	// handler's step is recorded once the handler returned.
	Steps []*Step
	// StatesBefore are the active states before the transition.
	StatesBefore S
	// TimeBefore is the machine time before the transition.
	TimeBefore Time
	// TimeAfter is the machine time after it, nil until completed or when
	// AnyAny canceled it.
	TimeAfter Time
	// Enters are the states entering, in target order.
	Enters S
	// Exits are the states leaving, in SortStates order.
	Exits S
	// TargetStates are the resolved states to activate.
	TargetStates S
	// Accepted tells whether relations accepted it (false once canceled).
	Accepted bool
	// Mutation is the processed mutation.
	Mutation *Mutation
	// Machine is the owner.
	Machine *Machine
	// LogEntries are the messages logged during the transition.
	LogEntries []*LogEntry
	// PreLogEntries are the messages logged before it, since the last one.
	PreLogEntries []*LogEntry
	// QueueLen is the queue length when it completed.
	QueueLen int

	// life is txFree, txExposing, txExposed or txRecycling
	life      atomic.Int32
	completed atomic.Bool
	mut       Mutation
	stepVals  []Step
	sch       *schema
	tab       *handlerTable
	typ       MutationType
	auto      bool
	canceled  bool
	result    Result
	called    []int
	before    []int
	targets   []int
	enters    []int
	exits     []int
	changed   []int
	timeAfter Time
	// root is the Mutate call of the item, itemID its id
	root   *rootState
	itemID uint64
	// steps tells whether steps are recorded (someone can observe them)
	steps bool
	// why it was canceled: the first cause wins
	cause    cancelCause
	causeBy  string
	causeErr error
}

// cancelCause is why a transition was canceled.
type cancelCause uint8

const (
	causeNone cancelCause = iota
	causeRelations
	causeVeto
	causePanic
	causeTimeout
	causeSchema
	causeDisposed
)

// cancelBy cancels t, recording the first cause: the handler (by) and the
// panic's error, if any.
func (t *Transition) cancelBy(c cancelCause, by string, err error) {
	t.canceled = true
	if t.cause == causeNone {
		t.cause, t.causeBy, t.causeErr = c, by, err
	}
}

// cancelErr is the error Mutate returns for a transition that wasn't
// executed.
func (t *Transition) cancelErr() error {
	switch t.cause {
	case causeVeto:
		return fmt.Errorf("%w by %s", ErrCanceled, t.causeBy)
	case causePanic:
		return fmt.Errorf("%w: %s panicked: %w", ErrCanceled, t.causeBy, t.causeErr)
	case causeTimeout:
		return handlerTimeoutErr(t.causeBy)
	case causeSchema:
		return fmt.Errorf("%w: the schema changed", ErrCanceled)
	case causeDisposed:
		return ErrDisposed
	case causeRelations:
		return fmt.Errorf("%w: rejected by relations", ErrCanceled)
	}
	return ErrCanceled
}

// newTransition allocates a record with room for n states, so a fresh
// record costs a few allocations rather than one per growing slice.
func newTransition(n int) *Transition {
	t := &Transition{}
	strs := make(S, 5*n)
	t.StatesBefore, t.TargetStates = strs[0:0:n], strs[n:n:2*n]
	t.Enters, t.Exits = strs[2*n:2*n:3*n], strs[3*n:3*n:4*n]
	t.mut.CalledStates = strs[4*n : 4*n : 5*n]
	ints := make([]int, 6*n)
	t.called, t.before, t.targets = ints[0:0:n], ints[n:n:2*n], ints[2*n:2*n:3*n]
	t.enters, t.exits, t.changed = ints[3*n:3*n:4*n], ints[4*n:4*n:5*n], ints[5*n:5*n:6*n]
	times := make(Time, 2*n)
	t.TimeBefore, t.timeAfter = times[0:0:n], times[n:n:2*n]
	return t
}

// reset prepares a record for a new transition.
func (t *Transition) reset(m *Machine) {
	t.ID = ""
	t.Steps = t.Steps[:0]
	t.stepVals = t.stepVals[:0]
	t.StatesBefore = t.StatesBefore[:0]
	t.TimeBefore = t.TimeBefore[:0]
	t.TimeAfter = nil
	t.Enters = t.Enters[:0]
	t.Exits = t.Exits[:0]
	t.TargetStates = t.TargetStates[:0]
	t.Accepted = false
	t.Mutation = &t.mut
	t.Machine = m
	if m.logLevel.Load() != 0 {
		m.logMu.Lock()
		t.LogEntries = nil
		m.logMu.Unlock()
	} else {
		t.LogEntries = nil
	}
	t.PreLogEntries = nil
	t.QueueLen = 0
	t.completed.Store(false)
	t.canceled = false
	t.cause, t.causeBy, t.causeErr = causeNone, "", nil
	t.result = 0
	t.called = t.called[:0]
	t.before = t.before[:0]
	t.targets = t.targets[:0]
	t.enters = t.enters[:0]
	t.exits = t.exits[:0]
	t.changed = t.changed[:0]
	t.root, t.itemID = nil, 0
}

// Life states of a record: free (may be reused), being handed out, handed
// out (never reused), being recycled by the engine.
const (
	txFree int32 = iota
	txExposing
	txExposed
	txRecycling
)

// expose marks the record as handed out, so it won't be reused, and gives
// it an ID. False if the engine is recycling it (reload and retry).
func (t *Transition) expose() bool {
	for {
		switch t.life.Load() {
		case txExposed:
			return true
		case txRecycling:
			return false
		case txFree:
			if t.life.CompareAndSwap(txFree, txExposing) {
				if t.ID == "" {
					t.ID = fastID()
				}
				t.life.Store(txExposed)
				return true
			}
		default:
			runtime.Gosched()
		}
	}
}

// fastID returns a random 16-hex-char ID (not cryptographic).
func fastID() string {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], rand.Uint64())
	return hex.EncodeToString(b[:])
}

// exposeCur exposes and returns the machine's current transition, or nil.
func (m *Machine) exposeCur() *Transition {
	for {
		t := m.curT.Load()
		if t == nil || t.expose() {
			return t
		}
		runtime.Gosched()
	}
}

// addStep records a step.
func (t *Transition) addStep(st Step) {
	if !t.steps {
		return
	}
	if len(t.stepVals) == cap(t.stepVals) {
		// grow, then re-point: earlier pointers stay valid (immutable steps)
		nv := make([]Step, len(t.stepVals), 2*cap(t.stepVals)+8)
		copy(nv, t.stepVals)
		t.stepVals = nv
		t.Steps = t.Steps[:0]
		for i := range t.stepVals {
			t.Steps = append(t.Steps, &t.stepVals[i])
		}
	}
	t.stepVals = append(t.stepVals, st)
	t.Steps = append(t.Steps, &t.stepVals[len(t.stepVals)-1])
}

// wasActive tells whether state i was active before the transition.
func (t *Transition) wasActive(i int) bool {
	return i < len(t.TimeBefore) && t.TimeBefore[i]%2 == 1
}

// isCalled tells whether state i was called.
func (t *Transition) isCalled(i int) bool {
	return slices.Contains(t.called, i)
}

// eventArgs returns the args shared by handlers, creating A{} for nil.
func (t *Transition) eventArgs() A {
	if t.mut.Args == nil {
		t.mut.Args = A{}
	}
	return t.mut.Args
}

// IsAuto tells whether the mutation was queued for Auto states.
func (t *Transition) IsAuto() bool { return t.Mutation != nil && t.Mutation.Auto }

// CalledStates returns the states named by the mutation.
func (t *Transition) CalledStates() S {
	if t.Mutation == nil {
		return nil
	}
	return t.Mutation.CalledStates
}

// Args returns the mutation's arguments.
func (t *Transition) Args() A {
	if t.Mutation == nil {
		return nil
	}
	return t.Mutation.Args
}

// Type returns the mutation's type.
func (t *Transition) Type() MutationType {
	if t.Mutation == nil {
		return MutationAdd
	}
	return t.Mutation.Type
}

// IsCompleted tells whether the transition has finished. Safe to call
// concurrently.
func (t *Transition) IsCompleted() bool { return t.completed.Load() }

// LogArgs formats the arguments with the machine's mapper as " (k=v …)", or
// returns "" without a mapper or mapped values.
func (t *Transition) LogArgs() string {
	if t.Machine == nil || t.Mutation == nil {
		return ""
	}
	return t.Machine.logArgsString(t.Mutation.Args)
}

// ClockBefore returns TimeBefore keyed by the current StateNames().
func (t *Transition) ClockBefore() Clock {
	return t.clockOf(t.TimeBefore)
}

// ClockAfter returns TimeAfter keyed by the current StateNames().
func (t *Transition) ClockAfter() Clock {
	return t.clockOf(t.TimeAfter)
}

func (t *Transition) clockOf(tm Time) Clock {
	if t.Machine == nil {
		return Clock{}
	}
	names := t.Machine.sch.Load().names
	c := make(Clock, len(tm))
	for i, v := range tm {
		if i < len(names) {
			c[names[i]] = v
		}
	}
	return c
}

// String prints one line per step: "<To> -> " (if any), From, the type name
// and "   (<Data>)" (if any).
func (t *Transition) String() string {
	var b strings.Builder
	for i, st := range t.Steps {
		if i > 0 {
			b.WriteByte('\n')
		}
		if st.ToState != "" {
			b.WriteString(st.ToState)
			b.WriteString(" -> ")
		}
		b.WriteString(st.FromState)
		b.WriteString(st.Type.String())
		if st.Data != nil {
			b.WriteString("   (")
			fmt.Fprint(&b, st.Data)
			b.WriteString(")")
		}
	}
	return b.String()
}

// names writes the names of idxs into dst.
func (sch *schema) namesOf(dst S, idxs []int) S {
	for _, i := range idxs {
		dst = append(dst, sch.names[i])
	}
	return dst
}

// cloneArgs returns a shallow copy of a (nil stays an empty map).
func cloneArgs(a A) A {
	out := make(A, len(a)+2)
	maps.Copy(out, a)
	return out
}

// j joins states with spaces.
func j(states S) string { return strings.Join(states, " ") }
