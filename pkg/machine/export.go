package machine

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Export returns the ID, the time and the state names as one consistent
// snapshot. Unlike upstream it doesn't panic on an unverified machine: the
// current names are returned. Safe to call concurrently with transitions.
func (m *Machine) Export() *Serialized {
	m.mu.RLock()
	defer m.mu.RUnlock()
	sch := m.sch.Load()
	t := make(Time, len(sch.names))
	for i := range t {
		t[i] = m.tickOf(sch, i)
	}
	return &Serialized{ID: m.ID, Time: t, StateNames: slices.Clone(sch.names)}
}

// Import sets the ticks, activates every state with an odd tick, and adopts
// StateNames, ID and StatesVerified. Unlike asyncmachine-go, it checks
// everything first: the names must be exactly the schema's states, and on
// error nothing changes. Safe to call concurrently, but not while handlers of
// a transition run.
func (m *Machine) Import(data *Serialized) error {
	if data == nil {
		return fmt.Errorf("%w: nil data", ErrInvalidArgs)
	}
	if len(data.Time) != len(data.StateNames) {
		return fmt.Errorf("%w: %d ticks for %d states", ErrInvalidArgs, len(data.Time), len(data.StateNames))
	}
	m.mu.Lock()
	old := m.sch.Load()
	if err := verifyNames(old.structure, data.StateNames); err != nil {
		m.mu.Unlock()
		return err
	}
	m.installSchemaLocked(old.structure, data.StateNames)
	sch := m.sch.Load()
	m.seq.Add(1)
	var changed []tickChange
	m.active = m.active[:0]
	for i, v := range data.Time {
		if old := sch.ticks[i].Load(); old != v {
			changed = append(changed, tickChange{idx: i, old: old, new: v})
		}
		sch.ticks[i].Store(v)
		if v%2 == 1 {
			m.active = append(m.active, i)
		}
	}
	m.seq.Add(1)
	m.ID = data.ID
	m.StatesVerified = true
	m.mu.Unlock()
	m.rebindHandlers()
	if len(changed) > 0 {
		m.processWaiters(sch, changed)
	}
	return nil
}

// Inspect prints the given states (nil means all, in StateNames() order):
// activity, tick, flags and relations. Unknown states are skipped.
func (m *Model) Inspect(states S) string {
	sch := m.sch.Load()
	if states == nil {
		states = sch.names
	}
	var b strings.Builder
	for _, name := range states {
		i := sch.idx(name)
		if i < 0 {
			continue
		}
		st := sch.structure[name]
		tick := m.tickOf(sch, i)
		b.WriteString(name + ":\n")
		b.WriteString("  State:   " + strconv.FormatBool(sch.ticks[i].Load()%2 == 1) + " " +
			strconv.FormatUint(tick, 10) + "\n")
		if st.Auto {
			b.WriteString("  Auto:    true\n")
		}
		if st.Multi {
			b.WriteString("  Multi:   true\n")
		}
		if st.Add != nil {
			b.WriteString("  Add:     " + j(st.Add) + "\n")
		}
		if st.Require != nil {
			b.WriteString("  Require: " + j(st.Require) + "\n")
		}
		if st.Remove != nil {
			b.WriteString("  Remove:  " + j(st.Remove) + "\n")
		}
		if st.After != nil {
			b.WriteString("  After:   " + j(st.After) + "\n")
		}
		b.WriteString("\n")
	}
	return b.String()
}
