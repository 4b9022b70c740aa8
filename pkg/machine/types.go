package machine

import (
	"context"
	"slices"
)

// S is a list of state names.
type S []string

// A is a map of mutation arguments, shared by all the handlers of one
// transition.
type A map[string]any

// Time is a list of ticks, in the order of StateNames() unless said otherwise.
type Time []uint64

// Is1 tells whether the tick at index i is odd (the state is active). It does
// not check bounds.
func (t Time) Is1(i int) bool {
	return t[i]%2 == 1
}

// Is tells whether all the ticks at the given indexes are odd. An empty list
// gives false. It does not check bounds.
func (t Time) Is(idxs []int) bool {
	if len(idxs) == 0 {
		return false
	}
	for _, i := range idxs {
		if t[i]%2 == 0 {
			return false
		}
	}
	return true
}

// Clock maps state names to ticks.
type Clock map[string]uint64

// Struct is a machine schema: state name to its definition.
type Struct = map[string]State

// State is the definition of one state: flags and relations to other states.
type State struct {
	// Auto states are added automatically whenever their requirements hold.
	Auto bool
	// Multi states can be re-entered while active; every activation counts.
	Multi bool
	// Require lists states which must be active (or activated) together.
	Require S
	// Add lists states activated together with this one.
	Add S
	// Remove lists states deactivated by this one.
	Remove S
	// After lists states whose handlers run before this one's.
	After S
	// Tags is free-form metadata, unused by the engine.
	Tags []string
}

// StateIsActive maps state names to their activity.
type StateIsActive map[string]bool

// Exception is the name of the built-in error state.
const Exception = "Exception"

// Any is a pseudo-state used only in handler names (AnyX, XAny, AnyAny).
const Any = "Any"

// Result is the outcome of a mutation.
type Result int

const (
	// Executed means the mutation was applied.
	Executed Result = 1
	// Canceled means the mutation was rejected or canceled.
	Canceled Result = 2
	// Queued means the mutation was queued and will run later.
	Queued Result = 4
	// ResultNoOp is used only by helpers: nothing had to be done.
	ResultNoOp Result = 8
)

// String returns executed, canceled, queued, or "".
func (r Result) String() string {
	switch r {
	case Executed:
		return "executed"
	case Canceled:
		return "canceled"
	case Queued:
		return "queued"
	}
	return ""
}

// MutationType is the kind of a queued mutation.
type MutationType int

const (
	// MutationAdd activates states, keeping the active ones.
	MutationAdd MutationType = iota
	// MutationRemove deactivates states.
	MutationRemove
	// MutationSet activates exactly the given states.
	MutationSet
	// MutationEval runs a function on the queue.
	MutationEval
)

// String returns add, remove, set or eval.
func (m MutationType) String() string {
	switch m {
	case MutationAdd:
		return "add"
	case MutationRemove:
		return "remove"
	case MutationSet:
		return "set"
	case MutationEval:
		return "eval"
	}
	return ""
}

// StepType is the kind of a transition step (debugger data).
type StepType int

const (
	// StepRelation records a relation that was applied.
	StepRelation StepType = 1 << iota
	// StepHandler records a handler call.
	StepHandler
	// StepSet records a state being activated.
	StepSet
	// StepRemove records an active state being deactivated.
	StepRemove
	// StepRemoveNotActive records an inactive state being removed.
	StepRemoveNotActive
	// StepRequested records a called state.
	StepRequested
	// StepCancel records a rejected state.
	StepCancel
)

// String returns rel, handler, set, remove, removenotactive, requested,
// cancel, or "".
func (tt StepType) String() string {
	switch tt {
	case StepRelation:
		return "rel"
	case StepHandler:
		return "handler"
	case StepSet:
		return "set"
	case StepRemove:
		return "remove"
	case StepRemoveNotActive:
		return "removenotactive"
	case StepRequested:
		return "requested"
	case StepCancel:
		return "cancel"
	}
	return ""
}

// Relation is a kind of relation between two states.
type Relation int

const (
	// RelationAfter orders handlers.
	RelationAfter Relation = iota
	// RelationAdd implies other states.
	RelationAdd
	// RelationRequire requires other states.
	RelationRequire
	// RelationRemove removes other states.
	RelationRemove
)

// String returns after, add, require or remove.
func (r Relation) String() string {
	switch r {
	case RelationAfter:
		return "after"
	case RelationAdd:
		return "add"
	case RelationRequire:
		return "require"
	case RelationRemove:
		return "remove"
	}
	return ""
}

// Serialized is an exported machine: its ID, time and ordered state names.
type Serialized struct {
	ID         string `json:"id"`
	Time       Time   `json:"time"`
	StateNames S      `json:"state_names"`
}

// Mutation is a queued request to change the machine's states.
type Mutation struct {
	// Type is the kind of mutation.
	Type MutationType
	// CalledStates are the states named by the caller.
	CalledStates S
	// Args are the caller's arguments.
	Args A
	// Auto marks mutations queued by the engine for Auto states.
	Auto bool
	// Ctx, when done, makes the queue skip this mutation.
	Ctx context.Context
	// Eval is the function of a MutationEval item.
	Eval func()
}

// StateWasCalled tells whether the state was named by the caller.
func (m Mutation) StateWasCalled(state string) bool {
	return slices.Contains(m.CalledStates, state)
}

// Step is one recorded step of a transition, kept as debugger data.
type Step struct {
	// Type is the kind of step.
	Type StepType
	// FromState is the source state, if any.
	FromState string
	// ToState is the target state, if any.
	ToState string
	// Data is a handler name or a Relation.
	Data any
	// IsFinal marks End and State handlers.
	IsFinal bool
	// IsSelf marks XX handlers.
	IsSelf bool
	// IsEnter marks State handlers.
	IsEnter bool
}

// IndexWhen is kept for compatibility: When bindings keyed by state.
type IndexWhen map[string][]*WhenBinding

// IndexWhenTime is kept for compatibility: WhenTime bindings keyed by state.
type IndexWhenTime map[string][]*WhenTimeBinding

// IndexWhenArgs is kept for compatibility: WhenArgs bindings keyed by state.
type IndexWhenArgs map[string][]*WhenArgsBinding

// IndexStateCtx is kept for compatibility: state contexts keyed by state.
type IndexStateCtx map[string][]context.Context

// WhenBinding is kept for compatibility; the engine uses its own records.
type WhenBinding struct {
	Ch       chan struct{}
	Negation bool
	States   StateIsActive
	Matched  int
	Total    int
}

// WhenTimeBinding is kept for compatibility; the engine uses its own records.
type WhenTimeBinding struct {
	Ch        chan struct{}
	Index     map[string]int
	Matched   int
	Total     int
	Times     Time
	Completed StateIsActive
}

// WhenArgsBinding is kept for compatibility; the engine uses its own records
// and this type has no fields.
type WhenArgsBinding struct{}

// LogEntry is a log message kept in a transition.
type LogEntry struct {
	Level LogLevel
	Text  string
}
