package machine

import (
	"slices"
	"strings"
)

// DiffStates returns the states of a not in b, in order, or nil.
func DiffStates(a, b S) S {
	var out S
	for _, s := range a {
		if !slices.Contains(b, s) {
			out = append(out, s)
		}
	}
	return out
}

// SAdd concatenates lists and dedupes them, keeping first occurrences.
// SAdd() gives S{}.
func SAdd(states ...S) S {
	out := S{}
	for _, l := range states {
		for _, s := range l {
			if !slices.Contains(out, s) {
				out = append(out, s)
			}
		}
	}
	return out
}

// SMerge is the older name of SAdd.
func SMerge(states ...S) S { return SAdd(states...) }

// StateAdd clones src, then SAdds each non-nil relation of overlay onto it.
// Auto and Multi come from src; Tags are merged too (asyncmachine-go drops
// them).
func StateAdd(src State, overlay State) State {
	out := cloneState(src)
	if overlay.Require != nil {
		out.Require = SAdd(out.Require, overlay.Require)
	}
	if overlay.Add != nil {
		out.Add = SAdd(out.Add, overlay.Add)
	}
	if overlay.Remove != nil {
		out.Remove = SAdd(out.Remove, overlay.Remove)
	}
	if overlay.After != nil {
		out.After = SAdd(out.After, overlay.After)
	}
	if overlay.Tags != nil {
		out.Tags = SAdd(out.Tags, overlay.Tags)
	}
	return out
}

// StateSet clones src, sets Auto and Multi, and replaces each relation
// (and Tags) that is non-nil in overlay.
func StateSet(src State, auto, multi bool, overlay State) State {
	out := cloneState(src)
	out.Auto = auto
	out.Multi = multi
	if overlay.Require != nil {
		out.Require = slices.Clone(overlay.Require)
	}
	if overlay.Add != nil {
		out.Add = slices.Clone(overlay.Add)
	}
	if overlay.Remove != nil {
		out.Remove = slices.Clone(overlay.Remove)
	}
	if overlay.After != nil {
		out.After = slices.Clone(overlay.After)
	}
	if overlay.Tags != nil {
		out.Tags = slices.Clone(overlay.Tags)
	}
	return out
}

// StructMerge merges schemas; the last definition of each key wins. The
// result is always a deep clone, even of a single schema, so it never aliases
// its input; no arguments give an empty map.
func StructMerge(structs ...Struct) Struct {
	out := Struct{}
	for _, s := range structs {
		for k, v := range s {
			out[k] = cloneState(v)
		}
	}
	return out
}

// CloneStates deep-clones a schema, Tags included.
func CloneStates(states Struct) Struct {
	out := make(Struct, len(states))
	for k, v := range states {
		out[k] = cloneState(v)
	}
	return out
}

// NormalizeID lowercases id and replaces each run of characters outside
// [a-z0-9_] with "_".
func NormalizeID(id string) string {
	var b strings.Builder
	inRun := false
	for _, r := range strings.ToLower(id) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') || r == '_' {
			b.WriteRune(r)
			inRun = false
			continue
		}
		if !inRun {
			b.WriteByte('_')
			inRun = true
		}
	}
	return b.String()
}

// AddFromEv is Add, for a mutation caused by event (upstream's stub panics;
// here it works).
func (m *Machine) AddFromEv(states S, event *Event, args A) Result {
	return m.Add(states, args)
}

// RemoveFromEv is Remove, for a mutation caused by event.
func (m *Machine) RemoveFromEv(states S, event *Event, args A) Result {
	return m.Remove(states, args)
}

// SetFromEv is Set, for a mutation caused by event.
func (m *Machine) SetFromEv(states S, event *Event, args A) Result {
	return m.Set(states, args)
}

// CanAdd tells whether relations would accept Add(states) now (handlers
// aren't consulted). Unknown states give false.
func (m *Machine) CanAdd(states S) bool {
	return m.can(MutationAdd, states)
}

// CanSet tells whether relations would accept Set(states) now.
func (m *Machine) CanSet(states S) bool {
	return m.can(MutationSet, states)
}

// CanRemove tells whether relations would accept Remove(states) now.
func (m *Machine) CanRemove(states S) bool {
	return m.can(MutationRemove, states)
}

// can dry-runs the resolution of a mutation.
func (m *Machine) can(typ MutationType, states S) bool {
	sch := m.sch.Load()
	called, err := sch.parseStates(states, nil)
	if err != nil {
		return false
	}
	if typ == MutationRemove {
		return true
	}
	m.mu.RLock()
	before := slices.Clone(m.active)
	tb := make(Time, len(sch.ticks))
	for i := range tb {
		tb[i] = sch.ticks[i].Load()
	}
	m.mu.RUnlock()
	var c resolverCore
	targets := c.resolve(nil, nil, sch, typ, false, called, before, func(i int) bool { return tb[i]%2 == 1 })
	for _, i := range called {
		if !slices.Contains(targets, i) {
			return false
		}
	}
	return true
}
