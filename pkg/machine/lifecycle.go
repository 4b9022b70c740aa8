package machine

import (
	"slices"
	"strings"
)

// startTransition creates the record for item it and resolves it. Runs on
// the goroutine draining the queue.
func (m *Machine) startTransition(it *queueItem, sch *schema) *Transition {
	trs := m.tracerList()
	t := m.spareT
	if t == nil || m.tracersKeepRecords() || !t.life.CompareAndSwap(txFree, txRecycling) {
		t = newTransition(len(sch.names))
		m.spareT = t
		t.life.Store(txRecycling)
	}
	t.reset(m)
	t.life.Store(txFree)
	t.sch = sch
	t.tab = m.htab.Load()
	if t.tab.sch != sch {
		m.rebindHandlers()
		t.tab = m.htab.Load()
	}
	t.root, t.itemID = it.root, it.id
	t.steps = len(trs) > 0 || !t.tab.none || m.logOn(LogOps)
	t.typ = it.typ
	t.auto = it.auto
	t.mut = Mutation{Type: it.typ, Args: it.args, Auto: it.auto, Ctx: it.ctx,
		CalledStates: t.mut.CalledStates[:0]}
	if it.states == nil {
		if i := sch.idx(it.one); i >= 0 {
			t.called = append(t.called, i)
		}
	} else {
		for _, n := range it.states {
			if i := sch.idx(n); i >= 0 && !slices.Contains(t.called, i) {
				t.called = append(t.called, i)
			}
		}
	}
	t.mut.CalledStates = sch.namesOf(t.mut.CalledStates, t.called)

	// before
	m.mu.RLock()
	t.before = append(t.before, m.active...)
	for i := range sch.ticks {
		t.TimeBefore = append(t.TimeBefore, sch.ticks[i].Load())
	}
	m.mu.RUnlock()
	t.StatesBefore = sch.namesOf(t.StatesBefore, t.before)
	m.curT.Store(t)
	if trs := m.tracersFor(t); len(trs) > 0 {
		m.inUser.Add(1)
		for _, tr := range trs {
			tr.TransitionInit(t)
		}
		m.inUser.Add(-1)
	}
	m.logPreEntries(t)

	// requested steps
	for _, c := range t.called {
		t.addStep(Step{Type: StepRequested, ToState: sch.names[c]})
	}
	switch t.typ {
	case MutationAdd:
		for _, c := range t.called {
			t.addStep(Step{Type: StepSet, ToState: sch.names[c]})
		}
	case MutationRemove:
		for _, c := range t.called {
			if t.wasActive(c) {
				t.addStep(Step{Type: StepRemove, ToState: sch.names[c]})
			} else {
				t.addStep(Step{Type: StepRemoveNotActive, ToState: sch.names[c]})
			}
		}
	case MutationSet:
		for _, c := range t.called {
			t.addStep(Step{Type: StepSet, ToState: sch.names[c]})
		}
		for _, b := range t.before {
			if !t.isCalled(b) {
				t.addStep(Step{Type: StepRemove, ToState: sch.names[b]})
			}
		}
	}
	if m.logOn(LogOps) && !t.auto {
		m.log(LogOps, "[%s] %s%s", t.typ, j(t.mut.CalledStates), m.logArgsString(t.mut.Args))
	} else if m.logOn(LogDecisions) && t.auto {
		m.log(LogDecisions, "[%s:auto] %s%s", t.typ, j(t.mut.CalledStates), m.logArgsString(t.mut.Args))
	}

	// targets
	if dr, ok := m.resolver.(*DefaultRelationsResolver); ok && dr.Machine == m {
		res := m.core.resolve(m, t, sch, t.typ, t.auto, t.called, t.before, t.wasActive)
		t.targets = append(t.targets, res...)
	} else {
		names := m.resolver.GetTargetStates(t, t.mut.CalledStates)
		for _, n := range names {
			if i := sch.idx(n); i >= 0 && !slices.Contains(t.targets, i) {
				t.targets = append(t.targets, i)
			}
		}
	}
	t.TargetStates = sch.namesOf(t.TargetStates, t.targets)
	if m.logOn(LogOps) {
		var implied S
		for _, x := range t.targets {
			if !t.isCalled(x) && !t.wasActive(x) {
				implied = append(implied, sch.names[x])
			}
		}
		if len(implied) > 0 {
			m.log(LogOps, "[implied] %s", j(implied))
		}
	}

	// acceptance
	t.Accepted = true
	switch {
	case t.typ == MutationRemove:
	case t.auto:
		ok := false
		for _, c := range t.called {
			if slices.Contains(t.targets, c) {
				ok = true
				break
			}
		}
		if !ok {
			t.Accepted = false
		}
	default:
		for _, c := range t.called {
			if !slices.Contains(t.targets, c) {
				t.Accepted = false
				break
			}
		}
	}
	if !t.Accepted {
		if m.logOn(LogOps) {
			var missing S
			for _, c := range t.called {
				if !slices.Contains(t.targets, c) {
					missing = append(missing, sch.names[c])
				}
			}
			m.log(LogOps, "[cancel:reject] %s", j(missing))
		}
		return t
	}

	// exits and enters
	for _, b := range t.before {
		if !slices.Contains(t.targets, b) {
			t.exits = append(t.exits, b)
		}
	}
	if dr, ok := m.resolver.(*DefaultRelationsResolver); ok && dr.Machine == m {
		t.exits = m.core.sortStates(sch, t.exits)
	} else if len(t.exits) > 1 {
		ex := sch.namesOf(nil, t.exits)
		m.resolver.SortStates(ex)
		t.exits = t.exits[:0]
		for _, n := range ex {
			if i := sch.idx(n); i >= 0 {
				t.exits = append(t.exits, i)
			}
		}
	}
	for _, x := range t.targets {
		if !t.wasActive(x) || (sch.states[x].multi && t.isCalled(x)) {
			t.enters = append(t.enters, x)
		}
	}
	t.Exits = sch.namesOf(t.Exits, t.exits)
	t.Enters = sch.namesOf(t.Enters, t.enters)
	return t
}

// runTransition runs handlers, applies and finishes t, on the goroutine
// draining the queue.
func (m *Machine) runTransition(t *Transition) {
	if trs := m.tracersFor(t); len(trs) > 0 {
		m.inUser.Add(1)
		for _, tr := range trs {
			tr.TransitionStart(t)
		}
		m.inUser.Add(-1)
	}
	m.negotiate(t)
	// AnyAny runs for canceled transitions too (asyncmachine-go does)
	if hl := t.tab.anyAny; len(hl) > 0 {
		if s, by := m.emit(t, hl, phAnyAny, Step{FromState: Any, ToState: Any}); s == hsFalse {
			t.cancelBy(causeVeto, by, nil)
			if m.logOn(LogOps) {
				m.log(LogOps, "[cancel] (%s) by %s", j(t.TargetStates), by)
			}
		}
	}
	// a transition canceled before apply still records TimeAfter and ends
	// for tracers
	if !t.canceled {
		if !m.apply(t) {
			t.cancelBy(causeSchema, "", nil)
		} else {
			m.runFinal(t)
		}
	}
	m.finish(t)
}

// apply moves ticks and the active list. Returns false if the schema changed
// under the transition.
func (m *Machine) apply(t *Transition) bool {
	sch := t.sch
	m.mu.Lock()
	if m.sch.Load() != sch {
		m.mu.Unlock()
		if m.logOn(LogOps) {
			m.log(LogOps, "[cancel] (%s) by schema change", j(t.TargetStates))
		}
		return false
	}
	m.seq.Add(1)
	for _, x := range t.targets {
		switch {
		case !t.wasActive(x):
			sch.ticks[x].Add(1)
			t.changed = append(t.changed, x)
		case sch.states[x].multi && t.isCalled(x):
			sch.ticks[x].Add(2)
			t.changed = append(t.changed, x)
		}
	}
	for _, x := range t.exits {
		sch.ticks[x].Add(1)
		t.changed = append(t.changed, x)
	}
	m.active = append(m.active[:0], t.targets...)
	m.seq.Add(1)
	m.mu.Unlock()

	if m.logOn(LogChanges) && len(t.changed) > 0 {
		m.logStateChange(t)
	}
	return true
}

// logStateChange logs "[state] +A -B".
func (m *Machine) logStateChange(t *Transition) {
	var b strings.Builder
	sch := t.sch
	for _, x := range t.enters {
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString("+" + sch.names[x])
	}
	for _, x := range t.exits {
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString("-" + sch.names[x])
	}
	if m.logOn(LogEverything) {
		for _, x := range t.targets {
			if !slices.Contains(t.enters, x) {
				if b.Len() > 0 {
					b.WriteByte(' ')
				}
				b.WriteString(sch.names[x])
			}
		}
	}
	label := "state"
	if t.auto {
		label = "state:auto"
	}
	m.log(LogChanges, "[%s] %s%s", label, b.String(), m.logArgsString(t.mut.Args))
}

// finish completes a transition: TimeAfter, auto mutation, tracers, waiters
// and the result.
func (m *Machine) finish(t *Transition) {
	sch := t.sch
	t.timeAfter = t.timeAfter[:0]
	for i := range sch.ticks {
		t.timeAfter = append(t.timeAfter, sch.ticks[i].Load())
	}
	t.TimeAfter = t.timeAfter
	if t.canceled {
		t.Accepted = false
	} else if len(t.changed) > 0 && !t.auto && !m.Disposed.Load() {
		m.queueAuto(t)
	}
	t.QueueLen = m.queueLen()
	t.completed.Store(true)
	if trs := m.tracersFor(t); len(trs) > 0 {
		m.inUser.Add(1)
		for _, tr := range trs {
			tr.TransitionEnd(t)
		}
		m.inUser.Add(-1)
	}
	if len(t.changed) > 0 && m.nWatch.Load() > 0 {
		chg := m.chgBuf[:0]
		for _, i := range t.changed {
			var old uint64
			if i < len(t.TimeBefore) {
				old = t.TimeBefore[i]
			}
			chg = append(chg, tickChange{idx: i, old: old, new: sch.ticks[i].Load()})
		}
		m.chgBuf = chg
		m.processWaiters(t.sch, chg)
	}
	res := Canceled
	if !t.canceled {
		res = Executed
		switch t.typ {
		case MutationRemove:
			for _, c := range t.called {
				if sch.ticks[c].Load()%2 == 1 {
					res = Canceled
					break
				}
			}
		default:
			for _, x := range t.targets {
				if sch.ticks[x].Load()%2 == 0 {
					res = Canceled
					break
				}
			}
		}
	}
	t.result = res
	m.complete(t, res)
}

// queueAuto prepends the auto mutation, if any.
func (m *Machine) queueAuto(t *Transition) {
	var names S
	if dr, ok := m.resolver.(*DefaultRelationsResolver); ok && dr.Machine == m {
		if !t.sch.hasAuto {
			return
		}
		names = m.autoStates(t.sch)
	} else if mut := m.resolver.GetAutoMutation(); mut != nil {
		names = mut.CalledStates
	}
	if len(names) == 0 {
		return
	}
	if m.logOn(LogOps) {
		m.log(LogOps, "[auto] %s", j(names))
	}
	m.prependFor(t, queueItem{typ: MutationAdd, states: names, auto: true})
}

// autoStates lists inactive Auto states not removed by an active state, in
// StateNames() order (the order of the schema, not of the map).
func (m *Machine) autoStates(sch *schema) S {
	var names S
	for i := range sch.states {
		def := &sch.states[i]
		if !def.auto || sch.ticks[i].Load()%2 == 1 {
			continue
		}
		blocked := false
		for _, b := range def.removedBy {
			if sch.ticks[b].Load()%2 == 1 {
				blocked = true
				break
			}
		}
		if !blocked {
			names = append(names, sch.names[i])
		}
	}
	return names
}
