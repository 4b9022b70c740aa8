package machine

import (
	"context"
	"fmt"
	"slices"
	"sync/atomic"
)

// queueItem is one queued mutation or Eval.
type queueItem struct {
	id     uint64
	typ    MutationType
	one    string // the state of Add1/Remove1, when states is nil
	states S
	args   A
	auto   bool
	ctx    context.Context
	// cond is the precondition of a MutateIf, checked right before the
	// transition
	cond condition
	eval *evalItem
	// root is the Mutate call this item belongs to, if any
	root *rootState
}

// evalItem is the state of one Eval call.
type evalItem struct {
	fn     func()
	source string
	// state: 0 pending, 1 running or ran, 2 given up by the caller
	state atomic.Int32
	done  chan struct{}
}

func (it *queueItem) names() S {
	if it.states != nil {
		return it.states
	}
	return S{it.one}
}

// hasState tells whether the item names state s.
func (it *queueItem) hasState(s string) bool {
	if it.states == nil {
		return it.one == s
	}
	return slices.Contains(it.states, s)
}

func (it *queueItem) stateCount() int {
	if it.states == nil {
		return 1
	}
	return len(it.states)
}

func (it *queueItem) toMutation() *Mutation {
	mut := &Mutation{Type: it.typ, CalledStates: slices.Clone(it.names()), Args: it.args,
		Auto: it.auto, Ctx: it.ctx}
	if it.eval != nil {
		mut.CalledStates = nil
		mut.Eval = it.eval.fn
	}
	return mut
}

// queueLen returns the number of queued items. Safe to call concurrently.
func (m *Machine) queueLen() int {
	m.qmu.Lock()
	defer m.qmu.Unlock()
	return len(m.queue) - m.qhead
}

// pushLocked appends it. Needs m.qmu.
func (m *Machine) pushLocked(it queueItem) uint64 {
	m.itemSeq++
	it.id = m.itemSeq
	if m.qhead > 0 && m.qhead == len(m.queue) {
		m.queue = m.queue[:0]
		m.qhead = 0
	}
	m.queue = append(m.queue, it)
	return it.id
}

// prependFor prepends an item caused by transition t (auto, Exception),
// making it part of t's root.
func (m *Machine) prependFor(t *Transition, it queueItem) uint64 {
	m.qmu.Lock()
	defer m.qmu.Unlock()
	if r := t.root; r != nil {
		it.root = r
		r.pending++
	}
	return m.prependLocked(it)
}

func (m *Machine) prependLocked(it queueItem) uint64 {
	m.itemSeq++
	it.id = m.itemSeq
	if m.qhead > 0 {
		m.qhead--
		m.queue[m.qhead] = it
		return it.id
	}
	m.queue = append(m.queue, queueItem{})
	copy(m.queue[1:], m.queue)
	m.queue[0] = it
	return it.id
}

// popLocked removes and returns the first item. Needs m.qmu and an item.
func (m *Machine) popLocked() queueItem {
	it := m.queue[m.qhead]
	m.queue[m.qhead] = queueItem{}
	m.qhead++
	if m.qhead == len(m.queue) {
		m.queue = m.queue[:0]
		m.qhead = 0
	}
	return it
}

// removeLocked removes the item with id; false if it's not queued.
func (m *Machine) removeLocked(id uint64) bool {
	for i := m.qhead; i < len(m.queue); i++ {
		if m.queue[i].id == id {
			copy(m.queue[i:], m.queue[i+1:])
			m.queue[len(m.queue)-1] = queueItem{}
			m.queue = m.queue[:len(m.queue)-1]
			return true
		}
	}
	return false
}

// completeItem reports a result for an item that didn't run.
func (m *Machine) completeItem(it *queueItem, res Result, err error) {
	m.itemDone(it.root, it.id, res, err)
}

// complete reports t's result for its item; the error is built only for a
// Mutate call waiting for it.
func (m *Machine) complete(t *Transition, res Result) {
	r := t.root
	t.root = nil
	var err error
	if r != nil && r.id == t.itemID && res != Executed {
		err = t.cancelErr()
	}
	m.itemDone(r, t.itemID, res, err)
}

// Add activates states, keeping the active ones. Returns Executed or
// Canceled when the queue was idle and this call processed it, Queued
// otherwise (always from handlers). Safe to call concurrently.
func (m *Machine) Add(states S, args A) Result {
	if states == nil {
		states = S{}
	}
	return m.enqueue(MutationAdd, "", states, args)
}

// Add1 is Add for one state.
func (m *Machine) Add1(state string, args A) Result {
	return m.enqueue(MutationAdd, state, nil, args)
}

// Remove deactivates states. See Add for results.
func (m *Machine) Remove(states S, args A) Result {
	if states == nil {
		states = S{}
	}
	return m.enqueue(MutationRemove, "", states, args)
}

// Remove1 is Remove for one state.
func (m *Machine) Remove1(state string, args A) Result {
	return m.enqueue(MutationRemove, state, nil, args)
}

// Set activates exactly states (and what relations imply). See Add for
// results.
func (m *Machine) Set(states S, args A) Result {
	if states == nil {
		states = S{}
	}
	return m.enqueue(MutationSet, "", states, args)
}

// checkStates validates the called states; on an unknown one it records the
// error (Err, Exception) and returns it.
func (m *Machine) checkStates(sch *schema, one string, states S) error {
	if states == nil {
		if sch.idx(one) >= 0 {
			return nil
		}
		return m.unknownState(one)
	}
	for _, s := range states {
		if sch.idx(s) < 0 {
			return m.unknownState(s)
		}
	}
	return nil
}

// unknownState records an ErrStateUnknown error and adds Exception.
func (m *Machine) unknownState(name string) error {
	err := fmt.Errorf("%w: %s", ErrStateUnknown, name)
	m.setErr(err)
	if m.logOn(LogChanges) {
		m.log(LogChanges, "[error] %s", err)
	}
	if m.sch.Load().idx(Exception) >= 0 {
		m.enqueue(MutationAdd, Exception, nil, A{"err": err, "err.trace": ""})
	}
	return err
}

// noneActive tells whether none of the named states is active.
func (m *Machine) noneActive(sch *schema, one string, states S) bool {
	if states == nil {
		return sch.ticks[sch.idx(one)].Load()%2 == 0
	}
	for _, s := range states {
		if sch.ticks[sch.idx(s)].Load()%2 == 1 {
			return false
		}
	}
	return true
}

// enqueue queues a mutation and, if the queue was idle, drains it.
func (m *Machine) enqueue(typ MutationType, one string, states S, args A) Result {
	if m.Disposed.Load() {
		return Canceled
	}
	sch := m.sch.Load()
	if m.checkStates(sch, one, states) != nil {
		return Canceled
	}
	// decided before locking: only the drainer itself can be inside user
	// code of m, and it stays the drainer meanwhile
	self := m.fromDrainer()
	m.qmu.Lock()
	qlen := len(m.queue) - m.qhead
	if typ == MutationRemove && !m.draining && qlen == 0 && m.noneActive(sch, one, states) {
		m.qmu.Unlock()
		return Executed
	}
	if m.QueueLimit > 0 && qlen >= m.QueueLimit {
		m.qmu.Unlock()
		if m.logOn(LogOps) {
			m.log(LogOps, "[queue:full] %s %s", typ, j(namesOf(one, states)))
		}
		return Canceled
	}
	it := queueItem{typ: typ, one: one, states: states, args: args}
	if m.draining {
		if len(args) == 0 && typ != MutationEval && m.isDuplicateLocked(&it) {
			m.qmu.Unlock()
			if m.logOn(LogOps) {
				m.log(LogOps, "[queue:skipped] Duplicate detected for [%s] %s", typ, j(it.names()))
			}
			return Queued
		}
		if self {
			m.attributeLocked(&it)
		}
		m.pushLocked(it)
		m.qmu.Unlock()
		if m.logOn(LogOps) {
			m.log(LogOps, "[queue:%s] %s", typ, j(it.names()))
			m.log(LogOps, "[postpone] queue running (%d item(s))", qlen+1)
		}
		return Queued
	}
	id := m.pushLocked(it)
	m.draining = true
	m.qmu.Unlock()
	if m.logOn(LogOps) {
		m.log(LogOps, "[queue:%s] %s", typ, j(it.names()))
	}
	return m.drain(id, nil)
}

func namesOf(one string, states S) S {
	if states == nil {
		return S{one}
	}
	return states
}

// isDuplicateLocked tells whether an arg-less mutation queued while the
// queue runs is redundant with one already queued, so it's skipped: an
// identical Add or Remove not followed by its opposite, or an identical Set
// (see below). Needs m.qmu.
func (m *Machine) isDuplicateLocked(it *queueItem) bool {
	if it.typ == MutationSet {
		// asyncmachine-go compatibility, kept on purpose: an identical
		// arg-less Set is a duplicate only if the earliest one is not the
		// queue's head, i.e. at index >= 1
		// of a queue of >= 2 items
		q := m.queue[m.qhead:]
		if len(q) < 2 {
			return false
		}
		for i := range q {
			if q[i].typ == MutationSet && len(q[i].args) == 0 && q[i].root == nil && q[i].cond == nil &&
				sameStates(&q[i], it) {
				return i >= 1
			}
		}
		return false
	}
	opposite := MutationRemove
	if it.typ == MutationRemove {
		opposite = MutationAdd
	}
	q := m.queue[m.qhead:]
	for i := range q {
		c := &q[i]
		// a conditional item may not run: it covers nothing
		if c.typ != it.typ || len(c.args) > 0 || c.auto || c.eval != nil || c.cond != nil || !sameStates(c, it) {
			continue
		}
		covered := false
		for k := i + 1; k < len(q); k++ {
			o := &q[k]
			if o.typ != opposite {
				continue
			}
			all := true
			for _, s := range it.names() {
				if !o.hasState(s) {
					all = false
					break
				}
			}
			if all {
				covered = true
				break
			}
		}
		if !covered {
			return true
		}
	}
	return false
}

// sameStates tells whether both items name the same set of states.
func sameStates(a, b *queueItem) bool {
	if a.stateCount() != b.stateCount() {
		return false
	}
	if b.states == nil {
		return a.hasState(b.one)
	}
	for _, s := range b.states {
		if !a.hasState(s) {
			return false
		}
	}
	return true
}

// handoffAfter is how many items of others a Mutate caller processes after
// its own work is done, before handing the queue over to a waiting Mutate
// caller. It bounds how long one caller can be kept draining.
var handoffAfter = 32

// process drains the queue on the calling goroutine and returns the result
// of the caller's own item. With a root (a Mutate call), once the root
// completed and handoffAfter more items were processed, it hands the
// draining role over to a waiting Mutate call, if any; otherwise it drains
// the whole queue. Only drain calls it, so that the goroutine carries the
// drain session's id on its stack.
func (m *Machine) process(own uint64, root *rootState) Result {
	res := Canceled
	started := false
	served := 0
	for {
		m.qmu.Lock()
		if len(m.queue) == m.qhead {
			m.qmu.Unlock()
			if started {
				m.passEnd()
			}
			m.qmu.Lock()
			if len(m.queue) == m.qhead {
				m.draining = false
				ends := m.queueEnds
				m.queueEnds = nil
				m.qmu.Unlock()
				closeEnds(ends)
				return res
			}
			m.qmu.Unlock()
			continue
		}
		if root != nil && root.pending == 0 {
			// done with our own work: serve others for a while (cheaper than
			// waking their goroutines), then pass the role on
			if served >= handoffAfter && m.handoffLocked() {
				m.qmu.Unlock()
				return res
			}
			served++
		}
		it := m.popLocked()
		m.qmu.Unlock()
		started = true
		if m.Disposed.Load() {
			m.completeItem(&it, Canceled, ErrDisposed)
			continue
		}
		if it.ctx != nil && it.ctx.Err() != nil {
			m.completeItem(&it, Canceled, it.ctx.Err())
			continue
		}
		if it.eval != nil {
			m.runEval(it.eval)
			continue
		}
		sch := m.sch.Load()
		if it.cond != nil {
			if err := it.cond.check(sch); err != nil {
				if m.logOn(LogOps) {
					m.log(LogOps, "[cancel:%s] %s: %s", it.typ, j(it.names()), err)
				}
				m.completeItem(&it, Canceled, err)
				continue
			}
		}
		m.curRoot.Store(it.root)
		t := m.startTransition(&it, sch)
		m.runTransition(t)
		m.curRoot.Store(nil)
		if it.id == own {
			res = t.result
		}
	}
}

// passEnd clears the current transition and notifies tracers and
// WhenQueueEnds waiters that a pass ended.
func (m *Machine) passEnd() {
	m.curT.Store(nil)
	if trs := m.tracerList(); len(trs) > 0 {
		m.inUser.Add(1)
		for _, tr := range trs {
			tr.QueueEnd(m)
		}
		m.inUser.Add(-1)
	}
	m.qmu.Lock()
	ends := m.queueEnds
	m.queueEnds = nil
	m.qmu.Unlock()
	closeEnds(ends)
}

func closeEnds(ends []*queueEndWaiter) {
	for _, w := range ends {
		w.close()
	}
}

// Queue returns a copy of the queued mutations. Safe to call concurrently.
func (m *Machine) Queue() []*Mutation {
	m.qmu.Lock()
	defer m.qmu.Unlock()
	out := make([]*Mutation, 0, len(m.queue)-m.qhead)
	for i := m.qhead; i < len(m.queue); i++ {
		out = append(out, m.queue[i].toMutation())
	}
	return out
}

// IsQueued returns the index of the first queued mutation at or after
// startIndex of type typ containing states (exactly them with
// statesStrictEqual), without args if withoutArgsOnly; or -1. Safe to call
// concurrently.
func (m *Machine) IsQueued(typ MutationType, states S, withoutArgsOnly, statesStrictEqual bool,
	startIndex int,
) int {
	m.qmu.Lock()
	defer m.qmu.Unlock()
	q := m.queue[m.qhead:]
	for i := max(startIndex, 0); i < len(q); i++ {
		it := &q[i]
		if it.typ != typ || it.eval != nil || (withoutArgsOnly && len(it.args) > 0) {
			continue
		}
		if statesStrictEqual && it.stateCount() != len(states) {
			continue
		}
		all := true
		for _, s := range states {
			if !it.hasState(s) {
				all = false
				break
			}
		}
		if all {
			return i
		}
	}
	return -1
}
