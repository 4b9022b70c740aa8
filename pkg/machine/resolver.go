package machine

import (
	"fmt"
	"slices"
)

// RelationsResolver resolves target states, auto mutations and handler
// order. The default is DefaultRelationsResolver; a custom one is used
// through this interface, by name.
type RelationsResolver interface {
	// GetTargetStates returns the states to activate for t.
	GetTargetStates(t *Transition, calledStates S) S
	// GetAutoMutation returns the mutation for inactive Auto states, or nil.
	GetAutoMutation() *Mutation
	// SortStates orders states in place by their After relations.
	SortStates(states S)
	// GetRelationsOf lists the relation kinds of a state.
	GetRelationsOf(fromState string) ([]Relation, error)
	// GetRelationsBetween lists the relation kinds from one state to another.
	GetRelationsBetween(fromState, toState string) ([]Relation, error)
}

// DefaultRelationsResolver is the engine's resolver. Its methods are safe to
// call concurrently; the engine itself uses a faster index-based path.
type DefaultRelationsResolver struct {
	Machine    *Machine
	Transition *Transition
}

var _ RelationsResolver = (*DefaultRelationsResolver)(nil)

// GetTargetStates resolves the targets of t for calledStates: transitive Add
// implication, the Require filter, then Remove blocking, the front of the
// list winning.
func (r *DefaultRelationsResolver) GetTargetStates(t *Transition, calledStates S) S {
	m := r.Machine
	sch := m.sch.Load()
	called, _ := sch.parseStates(calledStates, nil)
	typ := MutationAdd
	auto := false
	if t != nil && t.Mutation != nil {
		typ = t.Mutation.Type
		auto = t.Mutation.Auto
	}
	var before []int
	var tb Time
	if t != nil && len(t.TimeBefore) == len(sch.names) {
		tb = t.TimeBefore
		for _, n := range t.StatesBefore {
			if i := sch.idx(n); i >= 0 {
				before = append(before, i)
			}
		}
	} else {
		m.mu.RLock()
		before = slices.Clone(m.active)
		m.mu.RUnlock()
		tb = m.Time(nil)
	}
	var c resolverCore
	res := c.resolve(nil, nil, sch, typ, auto, called, before, func(i int) bool { return tb[i]%2 == 1 })
	return sch.namesOf(S{}, res)
}

// GetAutoMutation returns an Add of every inactive Auto state not removed by
// an active state, in StateNames() order, or nil.
func (r *DefaultRelationsResolver) GetAutoMutation() *Mutation {
	names := r.Machine.autoStates(r.Machine.sch.Load())
	if len(names) == 0 {
		return nil
	}
	return &Mutation{Type: MutationAdd, CalledStates: names, Auto: true}
}

// SortStates orders states in place so that each comes after the states in
// its After list (a stable topological sort, so non-adjacent states are
// ordered too). Unknown names keep
// their place relative to each other, at the end.
func (r *DefaultRelationsResolver) SortStates(states S) {
	sch := r.Machine.sch.Load()
	var idxs []int
	var unknown S
	for _, s := range states {
		if i := sch.idx(s); i >= 0 {
			idxs = append(idxs, i)
		} else {
			unknown = append(unknown, s)
		}
	}
	var c resolverCore
	idxs = c.sortStates(sch, idxs)
	out := sch.namesOf(states[:0:0], idxs)
	out = append(out, unknown...)
	copy(states, out)
}

// GetRelationsOf lists the relation kinds of fromState, in the order Add,
// Require, Remove, After.
func (r *DefaultRelationsResolver) GetRelationsOf(fromState string) ([]Relation, error) {
	st, ok := r.Machine.sch.Load().structure[fromState]
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrStateUnknown, fromState)
	}
	var out []Relation
	if st.Add != nil {
		out = append(out, RelationAdd)
	}
	if st.Require != nil {
		out = append(out, RelationRequire)
	}
	if st.Remove != nil {
		out = append(out, RelationRemove)
	}
	if st.After != nil {
		out = append(out, RelationAfter)
	}
	return out, nil
}

// GetRelationsBetween lists the relation kinds on fromState that name
// toState, in the order Add, Require, Remove, After.
func (r *DefaultRelationsResolver) GetRelationsBetween(fromState, toState string) ([]Relation, error) {
	structure := r.Machine.sch.Load().structure
	st, ok := structure[fromState]
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrStateUnknown, fromState)
	}
	if _, ok := structure[toState]; !ok {
		return nil, fmt.Errorf("%w: %s", ErrStateUnknown, toState)
	}
	var out []Relation
	if slices.Contains(st.Add, toState) {
		out = append(out, RelationAdd)
	}
	if slices.Contains(st.Require, toState) {
		out = append(out, RelationRequire)
	}
	if slices.Contains(st.Remove, toState) {
		out = append(out, RelationRemove)
	}
	if slices.Contains(st.After, toState) {
		out = append(out, RelationAfter)
	}
	return out, nil
}

// markSet is a set of state indexes, cleared in O(1) by a generation bump.
type markSet struct {
	m   []uint32
	gen uint32
}

func (s *markSet) reset(n int) {
	if len(s.m) < n {
		s.m = make([]uint32, n)
		s.gen = 0
	}
	s.gen++
	if s.gen == 0 {
		clear(s.m)
		s.gen = 1
	}
}
func (s *markSet) has(i int) bool { return s.m[i] == s.gen }
func (s *markSet) set(i int)      { s.m[i] = s.gen }
func (s *markSet) del(i int)      { s.m[i] = 0 }

// resolverCore is the deterministic, index-based resolution with
// reusable scratch space. Not safe for concurrent use; the engine keeps one
// for the goroutine draining the queue.
type resolverCore struct {
	in, aux, drop, rm markSet
	list, surv, out   []int
	sorted            []int
}

// resolve returns the target states (in c's scratch; copy it). m and t may
// be nil (no logs, no steps).
func (c *resolverCore) resolve(m *Machine, t *Transition, sch *schema, typ MutationType, auto bool,
	called, before []int, wasActive func(int) bool,
) []int {
	n := len(sch.names)
	list := c.list[:0]
	in := &c.in
	in.reset(n)
	push := func(i int) {
		if !in.has(i) {
			in.set(i)
			list = append(list, i)
		}
	}
	switch typ {
	case MutationAdd:
		for _, i := range called {
			push(i)
		}
		for _, i := range before {
			push(i)
		}
	case MutationRemove:
		c.aux.reset(n)
		for _, i := range called {
			c.aux.set(i)
		}
		for _, i := range before {
			if !c.aux.has(i) {
				push(i)
			}
		}
	default:
		for _, i := range called {
			push(i)
		}
	}
	// 2-3. transitive Add expansion (to any depth, not two levels), deduped
	list = c.expand(sch, list, in, wasActive, t)
	// 4. Require filter to a fixpoint
	list = c.requireFilter(m, t, sch, list, in, auto)
	// 5-6. Remove filter over the reversed list; the front wins
	c.drop.reset(n)
	surv := c.surv[:0]
	for k := len(list) - 1; k >= 0; k-- {
		x := list[k]
		blocked := false
		for _, b := range sch.states[x].removedBy {
			if in.has(b) && !c.drop.has(b) {
				blocked = true
				break
			}
		}
		if !blocked {
			surv = append(surv, x)
			continue
		}
		c.drop.set(x)
		if t != nil {
			for _, b := range sch.states[x].removedBy {
				if in.has(b) && !c.drop.has(b) {
					t.addStep(Step{Type: StepRelation, FromState: sch.names[b], ToState: sch.names[x],
						Data: RelationRemove})
				}
			}
		}
		if m != nil {
			lvl := LogDecisions
			if wasActive(x) {
				lvl = LogOps
			}
			if m.logOn(lvl) {
				var blockers S
				for _, b := range sch.states[x].removedBy {
					if in.has(b) && !c.drop.has(b) {
						blockers = append(blockers, sch.names[b])
					}
				}
				m.log(lvl, "[rel:remove] %s by %s", sch.names[x], j(blockers))
			}
		}
	}
	// 7. R: union of the survivors' Remove lists
	c.rm.reset(n)
	for _, s := range surv {
		for _, r := range sch.states[s].remove {
			c.rm.set(r)
		}
	}
	// 8. expand once more, drop R
	in.reset(n)
	for _, s := range surv {
		in.set(s)
	}
	surv = c.expand(sch, surv, in, wasActive, nil)
	out := c.out[:0]
	for _, s := range surv {
		if !c.rm.has(s) {
			out = append(out, s)
		}
	}
	// 9. reverse back, Require filter again
	slices.Reverse(out)
	in.reset(n)
	for _, s := range out {
		in.set(s)
	}
	out = c.requireFilter(m, t, sch, out, in, auto)
	// 10. sort
	out = c.sortStates(sch, out)
	c.list, c.surv, c.out = list, surv, out
	return out
}

// expand appends the Add relations of list's states, transitively (cycles
// are safe), skipping states active before and not Multi. in must mark
// list's members.
func (c *resolverCore) expand(sch *schema, list []int, in *markSet, wasActive func(int) bool, t *Transition) []int {
	for k := 0; k < len(list); k++ {
		x := list[k]
		def := &sch.states[x]
		if len(def.add) == 0 || (wasActive(x) && !def.multi) {
			continue
		}
		for _, a := range def.add {
			if !in.has(a) {
				in.set(a)
				list = append(list, a)
				if t != nil {
					t.addStep(Step{Type: StepRelation, FromState: sch.names[x], ToState: sch.names[a],
						Data: RelationAdd})
				}
			}
		}
	}
	return list
}

// requireFilter drops, to a fixpoint, every state whose Require isn't fully
// in the list. in must mark list's members and is kept in sync.
func (c *resolverCore) requireFilter(m *Machine, t *Transition, sch *schema, list []int, in *markSet, auto bool) []int {
	for {
		changed := false
		w := 0
		for _, x := range list {
			ok := true
			for _, r := range sch.states[x].require {
				if !in.has(r) {
					ok = false
					break
				}
			}
			if ok {
				list[w] = x
				w++
				continue
			}
			in.del(x)
			changed = true
			if t != nil {
				t.addStep(Step{Type: StepCancel, ToState: sch.names[x]})
			}
			lvl, label := LogOps, "reject"
			if auto {
				lvl, label = LogDecisions, "reject:auto"
			}
			if m != nil && m.logOn(lvl) {
				var missing []string
				for _, r := range sch.states[x].require {
					if !in.has(r) {
						missing = append(missing, "-"+sch.names[r])
					}
				}
				m.log(lvl, "[%s] %s(%s)", label, sch.names[x], j(missing))
			}
		}
		list = list[:w]
		if !changed {
			return list
		}
	}
}

// sortStates orders list in place by After (stable topological sort; on a
// cycle, the first remaining state goes next).
func (c *resolverCore) sortStates(sch *schema, list []int) []int {
	if len(list) < 2 {
		return list
	}
	need := false
	for _, x := range list {
		if len(sch.states[x].after) > 0 {
			need = true
			break
		}
	}
	if !need {
		return list
	}
	n := len(sch.names)
	inl, done := &c.aux, &c.drop
	inl.reset(n)
	done.reset(n)
	for _, x := range list {
		inl.set(x)
	}
	sorted := c.sorted[:0]
	for len(sorted) < len(list) {
		pick := -1
		for _, x := range list {
			if done.has(x) {
				continue
			}
			ready := true
			for _, a := range sch.states[x].after {
				if inl.has(a) && !done.has(a) {
					ready = false
					break
				}
			}
			if ready {
				pick = x
				break
			}
		}
		if pick < 0 {
			for _, x := range list {
				if !done.has(x) {
					pick = x
					break
				}
			}
		}
		done.set(pick)
		sorted = append(sorted, pick)
	}
	copy(list, sorted)
	c.sorted = sorted
	return list
}
