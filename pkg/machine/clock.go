package machine

// tickOf returns the tick of state i, 0 once disposed (the clock is
// cleared on disposal, while Is keeps showing the last active states).
func (m *Model) tickOf(sch *schema, i int) uint64 {
	if m.closed.Load() && m.clockCleared.Load() {
		return 0
	}
	return sch.ticks[i].Load()
}

// Tick returns the tick of a state; 0 for an unknown one. Lock-free.
func (m *Model) Tick(state string) uint64 {
	sch := m.sch.Load()
	i := sch.idx(state)
	ok := i >= 0
	if !ok {
		return 0
	}
	return m.tickOf(sch, i)
}

// Time returns the ticks of states (nil means all, in StateNames() order) as
// one consistent snapshot. Unknown states give 0. Lock-free.
func (m *Model) Time(states S) Time {
	var out Time
	m.stable(func(sch *schema) {
		if states == nil {
			out = make(Time, len(sch.names))
			for i := range sch.names {
				out[i] = m.tickOf(sch, i)
			}
			return
		}
		out = make(Time, len(states))
		for k, s := range states {
			if i := sch.idx(s); i >= 0 {
				out[k] = m.tickOf(sch, i)
			}
		}
	})
	return out
}

// Clock returns the ticks of states (nil means all) as a map. Lock-free.
func (m *Model) Clock(states S) Clock {
	var out Clock
	m.stable(func(sch *schema) {
		if states == nil {
			states = sch.names
		}
		out = make(Clock, len(states))
		for _, s := range states {
			if i := sch.idx(s); i >= 0 {
				out[s] = m.tickOf(sch, i)
			} else {
				out[s] = 0
			}
		}
	})
	return out
}

// TimeSum returns the sum of the ticks of states (nil means all). Lock-free.
func (m *Model) TimeSum(states S) uint64 {
	var sum uint64
	for _, t := range m.Time(states) {
		sum += t
	}
	return sum
}

// IsTime tells whether time t (for states, nil meaning all) is still the
// machine's time: true when nothing changed (asyncmachine-go's comments say
// the opposite; its code, kept here, means this). It
// returns false, instead of panicking, when t is longer than states.
func (m *Model) IsTime(t Time, states S) bool {
	now := m.Time(states)
	if len(t) > len(now) {
		return false
	}
	for i, v := range t {
		if now[i] != v {
			return false
		}
	}
	return true
}

// IsClock tells whether clock c still matches the machine's ticks: true when
// nothing changed.
func (m *Model) IsClock(c Clock) bool {
	names := make(S, 0, len(c))
	for n := range c {
		names = append(names, n)
	}
	now := m.Time(names)
	for i, n := range names {
		if c[n] != now[i] {
			return false
		}
	}
	return true
}

// IsTimeAfter tells whether no tick of t1 is lower than the matching one of
// t2 and at least one is higher.
func IsTimeAfter(t1, t2 Time) bool {
	higher := false
	for i, v := range t1 {
		if i >= len(t2) {
			break
		}
		if v < t2[i] {
			return false
		}
		if v > t2[i] {
			higher = true
		}
	}
	return higher
}

// IsActiveTick tells whether a tick means active (odd).
func IsActiveTick(tick uint64) bool {
	return tick%2 == 1
}

// MockClock replaces the machine's ticks with clock (unknown names are
// ignored, missing states keep theirs) and recomputes the active states from
// their parity. Meant for tests.
func MockClock(m *Machine, clock Clock) {
	m.mu.Lock()
	sch := m.sch.Load()
	m.seq.Add(1)
	var changed []tickChange
	for n, v := range clock {
		if i := sch.idx(n); i >= 0 {
			if old := sch.ticks[i].Load(); old != v {
				changed = append(changed, tickChange{idx: i, old: old, new: v})
			}
			sch.ticks[i].Store(v)
		}
	}
	active := m.active[:0:0]
	for _, i := range m.active {
		if sch.ticks[i].Load()%2 == 1 {
			active = append(active, i)
		}
	}
	for i := range sch.names {
		if sch.ticks[i].Load()%2 == 1 && !slices_contains(active, i) {
			active = append(active, i)
		}
	}
	m.active = active
	m.seq.Add(1)
	m.mu.Unlock()
	if len(changed) > 0 {
		m.processWaiters(sch, changed)
	}
}
