package machine

import (
	"strings"
)

// hPhase is the phase of a handler call.
type hPhase uint8

const (
	phNegotiation hPhase = iota
	phAnyAny
	phFinal
)

// hStatus is the outcome of emitting an event.
type hStatus uint8

const (
	hsTrue hStatus = iota
	hsFalse
	hsPanic
	hsAbandoned
)

// negotiate runs the self, exit and enter handlers.
func (m *Machine) negotiate(t *Transition) (abandoned bool) {
	if !t.Accepted {
		t.canceled = true
		return false
	}
	tab, sch := t.tab, t.sch
	if tab.none {
		return false
	}
	cancelBy := func(s hStatus, name string) bool {
		if s == hsAbandoned {
			return true
		}
		t.canceled = true
		if s == hsFalse && m.logOn(LogOps) {
			m.log(LogOps, "[cancel] (%s) by %s", j(t.TargetStates), name)
		}
		return false
	}
	if t.typ != MutationRemove && tab.pair != nil {
		for _, c := range t.called {
			if !t.wasActive(c) {
				continue
			}
			hl := tab.pair[pairKey(c, c)]
			if len(hl) == 0 {
				continue
			}
			n := sch.names[c]
			if s := m.emit(t, hl, phNegotiation, Step{FromState: n, ToState: n, IsSelf: true}); s != hsTrue {
				if s == hsAbandoned {
					return true
				}
				t.canceled = true
				if s == hsFalse && m.logOn(LogOps) {
					m.log(LogOps, "[cancel:self] (%s) by %s", j(t.TargetStates), hl[0].name)
				}
				return false
			}
		}
	}
	for _, x := range t.exits {
		n := sch.names[x]
		if hl := tab.exit[x]; len(hl) > 0 {
			if s := m.emit(t, hl, phNegotiation, Step{FromState: n}); s != hsTrue {
				return cancelBy(s, hl[0].name)
			}
		}
		if tab.pair != nil {
			for _, y := range t.targets {
				if hl := tab.pair[pairKey(x, y)]; len(hl) > 0 {
					if s := m.emit(t, hl, phNegotiation, Step{FromState: n, ToState: sch.names[y]}); s != hsTrue {
						return cancelBy(s, hl[0].name)
					}
				}
			}
		}
		if hl := tab.xAny[x]; len(hl) > 0 {
			if s := m.emit(t, hl, phNegotiation, Step{FromState: n, ToState: Any}); s != hsTrue {
				return cancelBy(s, hl[0].name)
			}
		}
	}
	for _, x := range t.enters {
		n := sch.names[x]
		if hl := tab.anyX[x]; len(hl) > 0 {
			if s := m.emit(t, hl, phNegotiation, Step{FromState: Any, ToState: n}); s != hsTrue {
				return cancelBy(s, hl[0].name)
			}
		}
		if hl := tab.enter[x]; len(hl) > 0 {
			if s := m.emit(t, hl, phNegotiation, Step{ToState: n}); s != hsTrue {
				return cancelBy(s, hl[0].name)
			}
		}
	}
	return false
}

// runFinal runs XEnd for each exit, then XState for each enter.
func (m *Machine) runFinal(t *Transition) (abandoned bool) {
	tab, sch := t.tab, t.sch
	if !tab.none {
		for _, x := range t.exits {
			if hl := tab.end[x]; len(hl) > 0 {
				switch m.emit(t, hl, phFinal, Step{FromState: sch.names[x], IsFinal: true}) {
				case hsAbandoned:
					return true
				case hsPanic:
					return false
				}
			}
		}
	}
	for _, x := range t.enters {
		if !tab.none {
			if hl := tab.state[x]; len(hl) > 0 {
				switch m.emit(t, hl, phFinal, Step{ToState: sch.names[x], IsFinal: true, IsEnter: true}) {
				case hsAbandoned:
					return true
				case hsPanic:
					return false
				}
			}
		}
		if m.nWhenArgs.Load() > 0 {
			m.checkWhenArgs(x, t.mut.Args)
		}
	}
	return false
}

// emit calls every handler of hl, in binding order, recording one step.
func (m *Machine) emit(t *Transition, hl hList, ph hPhase, st Step) hStatus {
	if m.Disposed.Load() {
		return hsFalse
	}
	st.Type = StepHandler
	st.Data = hl[0].nameAny
	t.addStep(st)
	args := t.eventArgs()
	step := t.Steps[len(t.Steps)-1]
	for i := range hl {
		h := &hl[i]
		if m.logOn(LogOps) {
			m.log(LogOps, "[handler] %s", h.name)
		}
		if m.logOn(LogEverything) {
			m.log(LogEverything, "[handle:%s] %s", padName(h.em.name), h.name)
		}
		e := &Event{Name: h.name, Machine: m, Args: args, step: step}
		s := m.callHandler(t, h, e, ph)
		if m.logOn(LogEverything) && s != hsAbandoned {
			m.log(LogEverything, "[handler:end] %s", h.name)
		}
		switch s {
		case hsTrue:
		case hsFalse:
			if ph != phFinal {
				return s
			}
		default:
			return s
		}
	}
	return hsTrue
}

func padName(s string) string {
	if len(s) >= 15 {
		return s[:15]
	}
	return s + strings.Repeat("_", 15-len(s))
}
