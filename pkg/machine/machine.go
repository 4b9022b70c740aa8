package machine

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Machine is a state machine: a schema of states with relations, a clock of
// ticks, a queue of mutations and bound handlers. Its reads and waits (Is,
// Not, Any, Switch, Tick, Time, Clock, When, WhenNot, WhenTime, WhenTicks,
// WhenArgs, NewStateCtx, String, StringAll, Inspect, StateNames, Index...)
// are the methods of the Model it embeds, which its transitions move. All
// methods are safe to call concurrently unless their doc says otherwise. The exported fields are
// configuration read by the engine: set them right after New, before the
// machine is shared.
type Machine struct {
	// ID is a unique ID (32 random hex chars by default).
	ID string
	// HandlerTimeout bounds each handler call; 0 disables it. Default 100ms.
	HandlerTimeout time.Duration
	// LogStackTrace adds stack traces to errors and their logs.
	LogStackTrace bool
	// PanicToException turns handler panics into the Exception state.
	PanicToException bool
	// LogID prefixes log lines with the first 5 chars of ID.
	LogID bool
	// Ctx is the machine's context, canceled on disposal.
	Ctx context.Context
	// QueueLimit caps the queue; 0 means no limit. Default 1000.
	QueueLimit int
	// StatesVerified is set by VerifyStates.
	StatesVerified bool
	// Tracers are the bound tracers; use BindTracer/DetachTracer to change
	// them on a running machine.
	Tracers []Tracer
	// Disposed is set when disposal starts.
	Disposed atomic.Bool
	// ParentID is the ID of the parent machine, if any.
	ParentID string
	// Tags is free-form metadata.
	Tags []string

	epoch      time.Time
	cancel     context.CancelFunc
	stopCtx    func() bool
	resolver   RelationsResolver
	detectEval bool
	// drainID identifies this machine's drain sessions on the drainer's
	// stack, in drainDigits hexadecimal digits (see drain.go)
	drainID uint64
	// drainG is the goroutine (curg) of the running drain session, 0
	// between sessions
	drainG      atomic.Uintptr
	drainDigits int

	// active lists the active states in the order of the last targets,
	// guarded by model.mu; kept apart from qmu, which every caller takes,
	// as the drainer rewrites it on every transition
	active []int
	err    atomic.Pointer[errBox]

	// model holds the schema, the ticks (behind a seqlock, for lock-free
	// readers) and the waiters; its mu also guards active
	model

	// queue
	qmu       sync.Mutex
	queue     []queueItem
	qhead     int
	draining  bool
	itemSeq   uint64
	queueEnds []*queueEndWaiter

	// owned by the goroutine draining the queue
	curT    atomic.Pointer[Transition]
	curRoot atomic.Pointer[rootState]
	spareT  *Transition
	core    resolverCore
	chgBuf  []tickChange

	// handlers
	hmu      sync.Mutex
	emitters []*emitter
	unbound  bool
	htab     atomic.Pointer[handlerTable]
	wd       watchdog
	inUser   atomic.Int32
	bg       bgTracker

	// tracers
	trMu    sync.Mutex
	tracers atomic.Pointer[tracerSet]

	// logging
	logLevel atomic.Int32
	logger   atomic.Pointer[Logger]
	logArgs  atomic.Pointer[func(A) map[string]string]
	logMu    sync.Mutex
	preLog   []*LogEntry

	// disposal
	disposing       atomic.Bool
	disposed        chan struct{}
	disposeMu       sync.Mutex
	disposeHandlers []func()
}

type errBox struct{ err error }

// New creates a machine for schema s (may be nil). ctx may be nil (TODO);
// m.Ctx is a cancelable child of it, and when it ends the machine disposes.
// opts may be nil.
func New(ctx context.Context, s Struct, opts *Opts) *Machine {
	if ctx == nil {
		ctx = context.TODO()
	}
	m := &Machine{
		ID:               randHex(16),
		HandlerTimeout:   100 * time.Millisecond,
		LogStackTrace:    true,
		PanicToException: true,
		LogID:            true,
		QueueLimit:       1000,
		epoch:            time.Now(),
		disposed:         make(chan struct{}),
	}
	m.drainID, m.drainDigits = newDrainID()
	st := NormalizeSchema(s)
	var o Opts
	if opts != nil {
		o = *opts
	}
	if o.ID != "" {
		m.ID = o.ID
	}
	if o.HandlerTimeout != 0 {
		m.HandlerTimeout = o.HandlerTimeout
	}
	if o.Resolver != nil {
		m.resolver = o.Resolver
	} else {
		m.resolver = &DefaultRelationsResolver{Machine: m}
	}
	if len(o.Tracers) > 0 {
		m.Tracers = slices.Clone(o.Tracers)
	}
	if o.LogArgs != nil {
		fn := o.LogArgs
		m.logArgs.Store(&fn)
	}
	if o.QueueLimit != 0 {
		m.QueueLimit = o.QueueLimit
	}
	if o.LogLevel != LogNothing {
		m.logLevel.Store(int32(o.LogLevel))
	}
	if o.DontLogStackTrace {
		m.LogStackTrace = false
	}
	if o.DontPanicToException {
		m.PanicToException = false
	}
	if o.DontLogID {
		m.LogID = false
	}
	m.detectEval = o.DetectEval
	m.ParentID = o.ParentID
	m.Tags = slices.Clone(o.Tags)
	sch := compileSchema(st, sortedNames(st))
	m.Ctx, m.cancel = context.WithCancel(ctx)
	m.initModel(m.Ctx, sch, &m.Disposed, m)
	m.rebindHandlers()
	if o.Parent != nil {
		m.ParentID = o.Parent.ID
		for _, t := range o.Parent.tracerList() {
			if t.Inheritable() {
				t.NewSubmachine(o.Parent, m)
			}
		}
	}
	trs := slices.Clone(m.Tracers)
	m.tracers.Store(newTracerSet(trs))
	for _, t := range trs {
		t.MachineInit(m)
	}
	m.stopCtx = context.AfterFunc(m.Ctx, m.onCtxDone)
	return m
}

// NewCommon creates a machine with id, schema s, verified names and
// handlers (nil for none), and an optional parent. Unlike asyncmachine-go,
// whose check of a debug variable always succeeds, it doesn't apply debug
// options nor mutate opts.
func NewCommon(ctx context.Context, id string, s Struct, names S, handlers any, parent *Machine,
	opts *Opts,
) (*Machine, error) {
	var o Opts
	if opts != nil {
		o = *opts
	}
	o.ID = id
	if parent != nil {
		o.Parent = parent
	}
	m := New(ctx, s, &o)
	if err := m.VerifyStates(names); err != nil {
		m.DisposeForce()
		return nil, err
	}
	if handlers != nil {
		if err := m.BindHandlers(handlers); err != nil {
			m.DisposeForce()
			return nil, err
		}
	}
	return m, nil
}

// randHex returns 2n random hex characters.
func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Resolver returns the relations resolver.
func (m *Machine) Resolver() RelationsResolver { return m.resolver }

// Transition returns the current transition, set from a pass's first
// transition until the queue drains; nil when idle. The returned record
// won't be reused by the engine.
func (m *Machine) Transition() *Transition {
	return m.exposeCur()
}

// readTicks runs fn with a consistent view of the schema and its ticks
// (seqlock read).
func (m *Model) stable(fn func(sch *schema)) {
	for spins := 0; ; spins++ {
		s1 := m.seq.Load()
		if s1%2 == 0 {
			sch := m.sch.Load()
			fn(sch)
			if m.seq.Load() == s1 {
				return
			}
		}
		if spins > 3 {
			runtime.Gosched()
		}
	}
}

// Is tells whether all the states are active. Is(S{}) is true; an unknown
// name gives false. Lock-free.
func (m *Model) Is(states S) bool {
	for spins := 0; ; spins++ {
		s1 := m.seq.Load()
		if s1%2 == 0 {
			sch := m.sch.Load()
			ok := true
			for _, name := range states {
				i := sch.idx(name)
				found := i >= 0
				if !found || sch.ticks[i].Load()%2 == 0 {
					ok = false
					break
				}
			}
			if m.seq.Load() == s1 {
				return ok
			}
		}
		if spins > 3 {
			runtime.Gosched()
		}
	}
}

// Is1 tells whether the state is active. Lock-free.
func (m *Model) Is1(state string) bool {
	sch := m.sch.Load()
	i := sch.idx(state)
	found := i >= 0
	return found && sch.ticks[i].Load()%2 == 1
}

// Not tells whether none of the states is active; unknown names count as
// inactive. Lock-free.
func (m *Model) Not(states S) bool {
	ok := true
	m.stable(func(sch *schema) {
		ok = true
		for _, name := range states {
			if i := sch.idx(name); i >= 0 && sch.ticks[i].Load()%2 == 1 {
				ok = false
				return
			}
		}
	})
	return ok
}

// Not1 tells whether the state is inactive. Lock-free.
func (m *Model) Not1(state string) bool {
	return !m.Is1(state)
}

// Any tells whether some group of states is fully active. Lock-free.
func (m *Model) Any(states ...S) bool {
	for _, s := range states {
		if m.Is(s) {
			return true
		}
	}
	return false
}

// Any1 tells whether some state is active. Lock-free.
func (m *Model) Any1(states ...string) bool {
	for _, s := range states {
		if m.Is1(s) {
			return true
		}
	}
	return false
}

// Switch returns the first active state of states, or "". Lock-free.
func (m *Model) Switch(states ...string) string {
	for _, s := range states {
		if m.Is1(s) {
			return s
		}
	}
	return ""
}

// IsErr tells whether Exception is active.
func (m *Model) IsErr() bool {
	return m.Is1(Exception)
}

// ActiveStates returns the active states, in the order of the last targets.
func (m *Machine) ActiveStates() S {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.sch.Load().namesOf(make(S, 0, len(m.active)), m.active)
}

// String returns the active states with ticks, e.g. "(A:1 B:1)", in
// StateNames() order.
func (m *Model) String() string {
	var b strings.Builder
	m.stable(func(sch *schema) {
		b.Reset()
		b.WriteByte('(')
		first := true
		for i, n := range sch.names {
			t := m.tickOf(sch, i)
			if sch.ticks[i].Load()%2 == 0 {
				continue
			}
			if !first {
				b.WriteByte(' ')
			}
			first = false
			b.WriteString(n + ":" + strconv.FormatUint(t, 10))
		}
		b.WriteByte(')')
	})
	return b.String()
}

// StringAll returns all states with ticks, e.g. "(A:1 B:1)[C:0 D:0]".
func (m *Model) StringAll() string {
	var out string
	m.stable(func(sch *schema) {
		var act, inact []string
		for i, n := range sch.names {
			s := n + ":" + strconv.FormatUint(m.tickOf(sch, i), 10)
			if sch.ticks[i].Load()%2 == 1 {
				act = append(act, s)
			} else {
				inact = append(inact, s)
			}
		}
		out = "(" + strings.Join(act, " ") + ")[" + strings.Join(inact, " ") + "]"
	})
	return out
}
