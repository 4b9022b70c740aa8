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
	hsTimeout
)

// negotiate runs the self, exit and enter handlers, canceling t if one of
// them vetoes, panics or times out.
func (m *Machine) negotiate(t *Transition) {
	if !t.Accepted {
		t.cancelBy(causeRelations, "", nil)
		return
	}
	tab, sch := t.tab, t.sch
	if tab.none {
		return
	}
	cancelBy := func(s hStatus, name, label string) {
		if s == hsFalse {
			if m.Ctx.Err() != nil {
				t.cancelBy(causeDisposed, name, nil)
				return
			}
			t.cancelBy(causeVeto, name, nil)
			if m.logOn(LogOps) {
				m.log(LogOps, "[%s] (%s) by %s", label, j(t.TargetStates), name)
			}
		}
		// panics and timeouts canceled t already
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
			if s, by := m.emit(t, hl, phNegotiation, Step{FromState: n, ToState: n, IsSelf: true}); s != hsTrue {
				cancelBy(s, by, "cancel:self")
				return
			}
		}
	}
	for _, x := range t.exits {
		n := sch.names[x]
		if hl := tab.exit[x]; len(hl) > 0 {
			if s, by := m.emit(t, hl, phNegotiation, Step{FromState: n}); s != hsTrue {
				cancelBy(s, by, "cancel")
				return
			}
		}
		if tab.pair != nil {
			for _, y := range t.targets {
				if hl := tab.pair[pairKey(x, y)]; len(hl) > 0 {
					if s, by := m.emit(t, hl, phNegotiation, Step{FromState: n, ToState: sch.names[y]}); s != hsTrue {
						cancelBy(s, by, "cancel")
						return
					}
				}
			}
		}
		if hl := tab.xAny[x]; len(hl) > 0 {
			if s, by := m.emit(t, hl, phNegotiation, Step{FromState: n, ToState: Any}); s != hsTrue {
				cancelBy(s, by, "cancel")
				return
			}
		}
	}
	for _, x := range t.enters {
		n := sch.names[x]
		if hl := tab.anyX[x]; len(hl) > 0 {
			if s, by := m.emit(t, hl, phNegotiation, Step{FromState: Any, ToState: n}); s != hsTrue {
				cancelBy(s, by, "cancel")
				return
			}
		}
		if hl := tab.enter[x]; len(hl) > 0 {
			if s, by := m.emit(t, hl, phNegotiation, Step{ToState: n}); s != hsTrue {
				cancelBy(s, by, "cancel")
				return
			}
		}
	}
}

// runFinal runs XEnd for each exit, then XState for each enter. A panic or
// a timeout stops it (the transition is then canceled).
func (m *Machine) runFinal(t *Transition) {
	tab, sch := t.tab, t.sch
	if !tab.none {
		for _, x := range t.exits {
			if hl := tab.end[x]; len(hl) > 0 {
				switch s, _ := m.emit(t, hl, phFinal, Step{FromState: sch.names[x], IsFinal: true}); s {
				case hsPanic, hsTimeout:
					return
				}
			}
		}
	}
	for _, x := range t.enters {
		if !tab.none {
			if hl := tab.state[x]; len(hl) > 0 {
				switch s, _ := m.emit(t, hl, phFinal, Step{ToState: sch.names[x], IsFinal: true, IsEnter: true}); s {
				case hsPanic, hsTimeout:
					return
				}
			}
		}
		if m.nWhenArgs.Load() > 0 {
			m.checkWhenArgs(x, t.mut.Args)
		}
	}
}

// emit calls every handler of hl, in binding order, and records one step
// once they returned (so a handler doesn't see its own step). It returns
// the outcome and the name of the handler that stopped the emission.
func (m *Machine) emit(t *Transition, hl hList, ph hPhase, st Step) (hStatus, string) {
	if m.Disposed.Load() {
		return hsFalse, hl[0].name
	}
	st.Type = StepHandler
	st.Data = hl[0].nameAny
	args := t.eventArgs()
	for i := range hl {
		h := &hl[i]
		if m.logOn(LogOps) {
			m.log(LogOps, "[handler] %s", h.name)
		}
		if m.logOn(LogEverything) {
			m.log(LogEverything, "[handle:%s] %s", padName(h.em.name), h.name)
		}
		e := &Event{Name: h.name, Machine: m, Args: args}
		s, p := m.callHandler(t, h, e)
		if m.logOn(LogEverything) {
			m.log(LogEverything, "[handler:end] %s", h.name)
		}
		switch s {
		case hsTrue:
		case hsFalse:
			if ph != phFinal {
				t.addStep(st)
				return s, h.name
			}
		case hsPanic:
			t.addStep(st)
			m.recoverPanic(t, h, ph, p)
			return s, h.name
		default:
			t.addStep(st)
			return s, h.name
		}
	}
	t.addStep(st)
	return hsTrue, ""
}

func padName(s string) string {
	if len(s) >= 15 {
		return s[:15]
	}
	return s + strings.Repeat("_", 15-len(s))
}
