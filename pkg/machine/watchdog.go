package machine

import (
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// watchdog enforces HandlerTimeout without a goroutine hand-off. Handlers
// run inline on the goroutine draining the queue. Each call records its
// start time and publishes an invocation number; one reusable timer per
// machine, armed lazily, checks the running invocation when it fires. If it
// is overdue, the watchdog abandons it with a CAS and, on the timer's
// goroutine, finishes the transition as canceled and keeps draining the
// queue. The abandoned handler's goroutine sees its CAS fail when the
// handler returns, and returns Canceled without touching the machine.
type watchdog struct {
	once    sync.Once
	timer   *time.Timer
	armed   atomic.Bool
	running atomic.Uint64
	start   atomic.Int64
	seq     atomic.Uint64

	// the running invocation, written before running is published and read
	// only by whoever wins the CAS on running
	t     *Transition
	name  string
	phase hPhase
	// cur is the running handler's name, readable by any goroutine
	cur atomic.Pointer[string]
}

// now returns monotonic nanoseconds since the machine's creation.
func (m *Machine) now() int64 { return int64(time.Since(m.epoch)) }

// begin publishes a handler invocation and arms the timer.
func (m *Machine) wdBegin(t *Transition, h *hRef, ph hPhase) uint64 {
	w := &m.wd
	inv := w.seq.Add(1)
	w.t, w.name, w.phase = t, h.name, ph
	w.cur.Store(&h.name)
	w.start.Store(m.now())
	w.running.Store(inv)
	if to := m.HandlerTimeout; to > 0 && !w.armed.Load() && w.armed.CompareAndSwap(false, true) {
		w.once.Do(func() {
			w.timer = time.AfterFunc(time.Hour, m.wdFire)
		})
		w.timer.Reset(to)
	}
	return inv
}

// wdEnd ends an invocation; false means it was abandoned.
func (m *Machine) wdEnd(inv uint64) bool {
	return m.wd.running.CompareAndSwap(inv, 0)
}

// wdFire runs on the timer's goroutine.
func (m *Machine) wdFire() {
	if !m.bg.enter() {
		return
	}
	defer m.bg.exit()
	w := &m.wd
	w.armed.Store(false)
	inv := w.running.Load()
	if inv == 0 {
		return
	}
	to := m.HandlerTimeout
	if to <= 0 {
		return
	}
	elapsed := time.Duration(m.now() - w.start.Load())
	if elapsed < to {
		if w.armed.CompareAndSwap(false, true) {
			w.timer.Reset(to - elapsed)
		}
		// a new invocation could've started meanwhile; it re-checks armed
		return
	}
	if !w.running.CompareAndSwap(inv, 0) {
		return
	}
	m.takeover()
}

// wdStop stops the timer (disposal).
func (m *Machine) wdStop() {
	w := &m.wd
	w.once.Do(func() {})
	if w.timer != nil {
		w.timer.Stop()
	}
}

// takeover finishes the abandoned invocation's transition as canceled by
// timeout and keeps draining the queue, on the calling goroutine.
//
//go:noinline
func (m *Machine) takeover() {
	w := &m.wd
	t, ph := w.t, w.phase
	if m.logOn(LogOps) {
		m.log(LogOps, "[cancel] (%s) by timeout", j(t.TargetStates))
	}
	var abandoned bool
	switch ph {
	case phNegotiation:
		t.canceled = true
		abandoned = m.afterNegotiation(t)
	case phAnyAny:
		m.abortAnyAny(t)
	case phFinal:
		t.canceled = true
		m.finish(t)
	}
	if abandoned {
		return
	}
	m.process(0, nil)
}

// panicInfo is a recovered handler panic.
type panicInfo struct {
	val   any
	stack string
}

// callHandler calls one handler method inline, under the watchdog.
func (m *Machine) callHandler(t *Transition, h *hRef, e *Event, ph hPhase) hStatus {
	inv := m.wdBegin(t, h, ph)
	trs := m.tracersFor(t)
	for _, tr := range trs {
		tr.HandlerStart(t, h.em.name, h.name)
	}
	m.inUser.Add(1)
	var ok bool
	var p *panicInfo
	if m.PanicToException {
		ok, p = invokeSafe(h, e)
	} else {
		ok = invoke(h, e)
	}
	m.inUser.Add(-1)
	if !m.wdEnd(inv) {
		return hsAbandoned
	}
	for _, tr := range trs {
		tr.HandlerEnd(t, h.em.name, h.name)
	}
	if p != nil {
		m.recoverPanic(t, h, ph, p)
		return hsPanic
	}
	if !ok || m.Ctx.Err() != nil {
		return hsFalse
	}
	return hsTrue
}

func invoke(h *hRef, e *Event) bool {
	if h.dB != nil {
		return h.dB(h.recv, e)
	}
	if h.dV != nil {
		h.dV(h.recv, e)
		return true
	}
	if h.fnB != nil {
		return h.fnB(e)
	}
	h.fnV(e)
	return true
}

func invokeSafe(h *hRef, e *Event) (ok bool, p *panicInfo) {
	defer func() {
		if r := recover(); r != nil {
			p = &panicInfo{val: r, stack: string(debug.Stack())}
		}
	}()
	return invoke(h, e), nil
}

// recoverPanic handles a handler panic (§10.2, U13/U14/U16 fixed).
func (m *Machine) recoverPanic(t *Transition, h *hRef, ph hPhase, p *panicInfo) {
	t.canceled = true
	if m.Ctx.Err() != nil {
		return
	}
	err := panicErr(p.val)
	if t.isCalled(t.sch.idx(Exception)) {
		if m.logOn(LogOps) {
			m.log(LogOps, "[cancel] (%s) by recover: %s", j(t.TargetStates), err)
		}
		m.setErr(err)
		return
	}
	m.setErr(err)
	if ph == phFinal {
		m.finalFixup(t, h)
	}
	if m.logOn(LogOps) {
		m.log(LogOps, "[cancel] (%s) by recover", j(t.TargetStates))
	}
	if t.sch.idx(Exception) < 0 {
		return
	}
	t.expose()
	var last *Step
	if len(t.Steps) > 0 {
		last = t.Steps[len(t.Steps)-1]
	}
	stack := ""
	if m.LogStackTrace {
		stack = p.stack
	}
	args := A{
		"err": err,
		"panic": &ExceptionArgsPanic{
			CalledStates: t.mut.CalledStates,
			StatesBefore: t.StatesBefore,
			Transition:   t,
			LastStep:     last,
			StackTrace:   stack,
		},
	}
	if m.LogStackTrace {
		args["err.trace"] = stack
	}
	m.prependFor(t, queueItem{typ: MutationAdd, one: Exception, args: args})
}

// finalFixup undoes the final states after the panicking one (U16: no
// duplicates).
func (m *Machine) finalFixup(t *Transition, h *hRef) {
	sch := t.sch
	isState := strings.HasSuffix(h.name, "State")
	// find the panicking state's position
	var from []int
	var exitsFrom []int
	if isState {
		for k, x := range t.enters {
			if sch.names[x]+"State" == h.name {
				from = t.enters[k:]
				break
			}
		}
	} else {
		for k, x := range t.exits {
			if sch.names[x]+"End" == h.name {
				exitsFrom = t.exits[k:]
				break
			}
		}
	}
	if len(from) == 0 && len(exitsFrom) == 0 {
		return
	}
	m.mu.Lock()
	if m.sch.Load() != sch {
		m.mu.Unlock()
		return
	}
	m.seq.Add(1)
	for _, x := range from {
		if sch.ticks[x].Load()%2 == 1 {
			sch.ticks[x].Add(1)
			if !slices_contains(t.changed, x) {
				t.changed = append(t.changed, x)
			}
		}
		m.active = removeInt(m.active, x)
	}
	for _, x := range exitsFrom {
		if sch.ticks[x].Load()%2 == 0 {
			sch.ticks[x].Add(1)
			m.active = append(m.active, x)
		}
	}
	m.seq.Add(1)
	active := sch.namesOf(nil, m.active)
	m.mu.Unlock()
	if m.logOn(LogOps) {
		m.log(LogOps, "[recover] partial final states as (%s)", j(active))
	}
}

func slices_contains(l []int, x int) bool {
	for _, v := range l {
		if v == x {
			return true
		}
	}
	return false
}

func removeInt(l []int, x int) []int {
	for i, v := range l {
		if v == x {
			return append(l[:i], l[i+1:]...)
		}
	}
	return l
}
