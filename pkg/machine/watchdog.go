package machine

import (
	"fmt"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// watchdog enforces HandlerTimeout without a goroutine hand-off. Handlers
// run inline on the goroutine draining the queue, one at a time. Each call
// records its start time and publishes an invocation number; one reusable
// timer per machine, armed lazily, checks the running invocation when it
// fires. If it is overdue, the timer marks it timed out with a CAS, logs it
// and releases a Mutate caller waiting on another goroutine for that very
// transition. Nothing else happens until the handler returns: then the
// drainer sees its own CAS fail, cancels the transition and goes on with
// the queue. So handlers of one machine never overlap, even after a
// timeout; an overdue handler delays the queue until it returns.
type watchdog struct {
	once    sync.Once
	timer   *time.Timer
	armed   atomic.Bool
	running atomic.Uint64
	start   atomic.Int64
	seq     atomic.Uint64

	// mu is held by the timer while it handles a timed-out invocation; the
	// drainer takes it once after a failed CAS, so it never touches t again
	// before the timer is done with it
	mu sync.Mutex
	// the running invocation, written before running is published and read
	// by the timer only while running still holds its number
	t    *Transition
	name string
	// cur is the running handler's name, readable by any goroutine
	cur atomic.Pointer[string]
}

// now returns monotonic nanoseconds since the machine's creation.
func (m *Machine) now() int64 { return int64(time.Since(m.epoch)) }

// wdBegin publishes a handler invocation and arms the timer.
func (m *Machine) wdBegin(t *Transition, h *hRef) uint64 {
	w := &m.wd
	inv := w.seq.Add(1)
	w.t, w.name = t, h.name
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

// wdEnd ends an invocation; false means it timed out.
func (m *Machine) wdEnd(inv uint64) bool {
	w := &m.wd
	w.cur.Store(nil)
	if w.running.CompareAndSwap(inv, 0) {
		return true
	}
	// wait for the timer to be done with this invocation
	w.mu.Lock()
	//lint:ignore SA2001 the timer holds mu while it handles this invocation: taking it waits for that
	w.mu.Unlock()
	return false
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
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.running.CompareAndSwap(inv, 0) {
		return
	}
	// the drainer is still inside the handler and won't touch t before mu
	// is released
	t := w.t
	if m.logOn(LogOps) {
		m.log(LogOps, "[cancel] (%s) by timeout: %s still running", j(t.TargetStates), w.name)
	}
	m.releaseTimedOut(t, w.name)
}

// releaseTimedOut releases a Mutate caller waiting on another goroutine for
// t's own item: its outcome is decided (canceled by the timeout) although
// the handler still runs. Other callers wait for the queue as usual.
func (m *Machine) releaseTimedOut(t *Transition, name string) {
	r := t.root
	if r == nil || r.id != t.itemID || r.done == nil {
		return
	}
	m.qmu.Lock()
	r.res, r.fail, r.released = int16(Canceled), &errBox{handlerTimeoutErr(name)}, true
	m.qmu.Unlock()
	select {
	case r.done <- Canceled:
	default:
	}
}

// handlerTimeoutErr is the error of a transition canceled by the timeout of
// handler name.
func handlerTimeoutErr(name string) error {
	return fmt.Errorf("%w: %s", ErrHandlerTimeout, name)
}

// wdStop stops the timer (disposal).
func (m *Machine) wdStop() {
	w := &m.wd
	w.once.Do(func() {})
	if w.timer != nil {
		w.timer.Stop()
	}
}

// panicInfo is a recovered handler panic.
type panicInfo struct {
	val   any
	stack string
}

// callHandler calls one handler method inline, under the watchdog. A
// recovered panic is returned with hsPanic, for the caller to handle once
// the handler's step is recorded.
func (m *Machine) callHandler(t *Transition, h *hRef, e *Event) (hStatus, *panicInfo) {
	inv := m.wdBegin(t, h)
	trs := m.tracersFor(t)
	m.inUser.Add(1)
	for _, tr := range trs {
		tr.HandlerStart(t, h.em.name, h.name)
	}
	var ok bool
	var p *panicInfo
	if m.PanicToException {
		ok, p = invokeSafe(h, e)
	} else {
		ok = invoke(h, e)
	}
	timedOut := !m.wdEnd(inv)
	for _, tr := range trs {
		tr.HandlerEnd(t, h.em.name, h.name)
	}
	m.inUser.Add(-1)
	switch {
	case timedOut:
		t.cancelBy(causeTimeout, h.name, nil)
		return hsTimeout, nil
	case p != nil:
		return hsPanic, p
	case !ok || m.Ctx.Err() != nil:
		return hsFalse, nil
	}
	return hsTrue, nil
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

// recoverPanic handles a handler panic: the transition is canceled, the
// error recorded and, unless the panicking mutation itself called
// Exception, Exception is prepended with the panic's details. In the final
// phase the states after the panicking one are rolled back.
func (m *Machine) recoverPanic(t *Transition, h *hRef, ph hPhase, p *panicInfo) {
	err := panicErr(p.val)
	t.cancelBy(causePanic, h.name, err)
	if m.Ctx.Err() != nil {
		return
	}
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

// finalFixup undoes the final states after the panicking one, without
// duplicating states in the active list.
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
