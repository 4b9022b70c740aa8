package machine

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
)

// stateDef is a state's definition over indexes of the schema.
type stateDef struct {
	auto, multi bool
	require     []int
	add         []int
	remove      []int
	after       []int
	// removedBy lists the states whose Remove contains this state.
	removedBy []int
}

// schema is an immutable, compiled view of a Struct and its name order,
// except for ticks, which are atomics written under Machine.mu and guarded
// by Machine.seq (a seqlock), so readers need no lock.
type schema struct {
	names  S
	index  nameIndex
	states []stateDef
	// structure is the cleaned schema, shared read-only.
	structure Struct
	ticks     []atomic.Uint64
	hasAuto   bool
}

// idx returns the index of name, or -1.
func (s *schema) idx(name string) int {
	return s.index.get(name)
}

// cleanStruct returns a cleaned deep copy of s: each state's own name is
// removed from its Remove and After, and Remove loses names also in Add.
func cleanStruct(s Struct) Struct {
	out := make(Struct, len(s))
	for name, st := range s {
		c := cloneState(st)
		if c.Remove != nil {
			rm := S{}
			for _, r := range c.Remove {
				if r == name || slices.Contains(c.Add, r) {
					continue
				}
				rm = append(rm, r)
			}
			c.Remove = rm
		}
		if c.After != nil {
			af := S{}
			for _, a := range c.After {
				if a != name {
					af = append(af, a)
				}
			}
			c.After = af
		}
		out[name] = c
	}
	return out
}

// cloneState deep-copies a State, keeping nil slices nil.
func cloneState(st State) State {
	return State{
		Auto:    st.Auto,
		Multi:   st.Multi,
		Require: slices.Clone(st.Require),
		Add:     slices.Clone(st.Add),
		Remove:  slices.Clone(st.Remove),
		After:   slices.Clone(st.After),
		Tags:    slices.Clone(st.Tags),
	}
}

// sortedNames returns the keys of s in alphabetical order.
func sortedNames(s Struct) S {
	names := make(S, 0, len(s))
	for n := range s {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// compileSchema builds a schema for the cleaned struct st with the given
// name order. Relations naming unknown states are ignored by the engine.
// Ticks start at 0.
func compileSchema(st Struct, names S) *schema {
	sch := &schema{
		names:     slices.Clone(names),
		index:     newNameIndex(names),
		states:    make([]stateDef, len(names)),
		structure: st,
		ticks:     make([]atomic.Uint64, len(names)),
	}
	conv := func(l S) []int {
		if len(l) == 0 {
			return nil
		}
		out := make([]int, 0, len(l))
		for _, n := range l {
			if i := sch.idx(n); i >= 0 && !slices.Contains(out, i) {
				out = append(out, i)
			}
		}
		return out
	}
	for i, n := range names {
		def := st[n]
		sch.states[i] = stateDef{
			auto:    def.Auto,
			multi:   def.Multi,
			require: conv(def.Require),
			add:     conv(def.Add),
			remove:  conv(def.Remove),
			after:   conv(def.After),
		}
		if def.Auto {
			sch.hasAuto = true
		}
	}
	for i := range sch.states {
		for _, r := range sch.states[i].remove {
			sch.states[r].removedBy = append(sch.states[r].removedBy, i)
		}
	}
	return sch
}

// verifyNames checks names against the struct st: every name defined, no
// duplicates, and every state of st listed (checked by name, not by count,
// so a list missing one state and naming another twice fails).
func verifyNames(st Struct, names S) error {
	var errs []error
	seen := make(map[string]struct{}, len(names))
	for _, n := range names {
		if _, ok := seen[n]; ok {
			errs = append(errs, fmt.Errorf("state %s duplicated", n))
			continue
		}
		seen[n] = struct{}{}
		if _, ok := st[n]; !ok {
			errs = append(errs, fmt.Errorf("state %s is not defined: %w", n, ErrStateUnknown))
		}
	}
	var missing S
	for _, n := range sortedNames(st) {
		if _, ok := seen[n]; !ok {
			missing = append(missing, n)
		}
	}
	if len(missing) > 0 {
		errs = append(errs, fmt.Errorf("undefined states: %s", strings.Join(missing, " ")))
	}
	return errors.Join(errs...)
}

// VerifyStates checks names against the schema and, on success, makes it the
// order of StateNames(), Time and all printing, sets StatesVerified and
// notifies tracers. Every state of the schema (including Exception) must be
// listed exactly once. Safe to call concurrently.
func (m *Machine) VerifyStates(names S) error {
	m.mu.Lock()
	old := m.sch.Load()
	if err := verifyNames(old.structure, names); err != nil {
		m.mu.Unlock()
		return err
	}
	m.installSchemaLocked(old.structure, names)
	m.StatesVerified = true
	m.mu.Unlock()
	m.rebindHandlers()
	for _, t := range m.tracerList() {
		t.VerifyStates(m)
	}
	return nil
}

// SetStruct installs a new schema (cleaned; Exception is not added) with the
// given name order, keeping the ticks of states that remain. Unlike upstream,
// it is atomic: if names don't verify against s, it returns the error and
// keeps the old schema. On success tracers get StructChange. Safe to call
// concurrently, but not from a handler of a transition that it would
// invalidate.
func (m *Machine) SetStruct(s Struct, names S) error {
	clean := cleanStruct(s)
	m.mu.Lock()
	old := m.sch.Load()
	if err := verifyNames(clean, names); err != nil {
		m.mu.Unlock()
		return err
	}
	m.installSchemaLocked(clean, names)
	m.StatesVerified = true
	m.mu.Unlock()
	m.rebindHandlers()
	for _, t := range m.tracerList() {
		t.StructChange(m, old.structure)
	}
	return nil
}

// installSchemaLocked compiles st with names, carries ticks, the active list
// and index-based bookkeeping over by name, and publishes it. Needs m.mu.
func (m *Machine) installSchemaLocked(st Struct, names S) {
	old := m.sch.Load()
	sch := compileSchema(st, names)
	remap := make([]int, len(old.names))
	for i, n := range old.names {
		remap[i] = sch.idx(n)
	}
	m.seq.Add(1)
	for i := range old.names {
		if j := remap[i]; j >= 0 {
			sch.ticks[j].Store(old.ticks[i].Load())
		}
	}
	active := make([]int, 0, len(m.active))
	for _, i := range m.active {
		if j := remap[i]; j >= 0 {
			active = append(active, j)
		}
	}
	m.active = active
	m.sch.Store(sch)
	m.seq.Add(1)
	m.remapWaitersLocked(remap, len(names))
}

// GetStruct returns a shallow copy of the cleaned schema, including Exception
// and tags. Safe to call concurrently.
func (m *Model) GetStruct() Struct {
	st := m.sch.Load().structure
	out := make(Struct, len(st))
	for k, v := range st {
		out[k] = v
	}
	return out
}

// StateNames returns a copy of the ordered state names. Safe to call
// concurrently.
func (m *Model) StateNames() S {
	return slices.Clone(m.sch.Load().names)
}

// Has tells whether all the states are defined. Safe to call concurrently.
func (m *Model) Has(states S) bool {
	sch := m.sch.Load()
	for _, s := range states {
		if sch.idx(s) < 0 {
			return false
		}
	}
	return true
}

// Has1 tells whether the state is defined. Safe to call concurrently.
func (m *Model) Has1(state string) bool {
	return m.sch.Load().idx(state) >= 0
}

// Index returns the position of the state in StateNames(), or -1. Safe to
// call concurrently.
func (m *Model) Index(state string) int {
	return m.sch.Load().idx(state)
}

// MustParseStates returns states deduped, keeping first occurrences, and
// panics "state X is not defined" for an unknown name.
func (m *Machine) MustParseStates(states S) S {
	sch := m.sch.Load()
	out := make(S, 0, len(states))
	for _, s := range states {
		if sch.idx(s) < 0 {
			panic(fmt.Sprintf("state %s is not defined", s))
		}
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// parseStates returns the indexes of states, deduped, or an error wrapping
// ErrStateUnknown naming the first unknown state.
func (sch *schema) parseStates(states S, buf []int) ([]int, error) {
	for _, s := range states {
		i := sch.idx(s)
		if i < 0 {
			return buf, fmt.Errorf("%w: %s", ErrStateUnknown, s)
		}
		if !slices.Contains(buf, i) {
			buf = append(buf, i)
		}
	}
	return buf, nil
}
