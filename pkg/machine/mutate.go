package machine

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// runEval runs an Eval function unless its caller gave up.
func (m *Machine) runEval(ev *evalItem) {
	if !ev.state.CompareAndSwap(0, 1) {
		return
	}
	defer close(ev.done)
	defer func() {
		if r := recover(); r != nil {
			if !m.PanicToException {
				panic(r)
			}
			m.AddErr(panicErr(r), nil)
		}
	}()
	m.inUser.Add(1)
	defer m.inUser.Add(-1)
	ev.fn()
}

// ErrDisposed is returned by Mutate on a disposed machine.
var ErrDisposed = errors.New("machine disposed")

// ErrQueueFull is returned by Mutate when the queue holds QueueLimit items.
var ErrQueueFull = errors.New("queue full")

// Mutate queues a mutation and blocks until this very mutation, and the
// mutations it caused (queued by its handlers, its auto and Exception
// mutations, transitively), have been processed, even when another
// goroutine drains the queue; it returns the mutation's own result. A caller
// that finds the queue idle drains it; once its own work is done it serves
// a bounded number of other items, then hands the queue over to another
// waiting Mutate caller, so no caller is kept draining forever. No goroutine
// is started.
//
// The error tells why a mutation wasn't executed: an error wrapping
// ErrCanceled when relations rejected it or a handler vetoed it or panicked
// (then it also wraps the panic's error); one wrapping ErrHandlerTimeout
// when one of its handlers overran HandlerTimeout (see the package doc: in
// the final phase its states stay applied); ErrDisposed when the machine
// was disposed before it ran. A mutation whose transition ran but left a
// called state unreached gives Canceled and ErrCanceled.
//
// From the goroutine draining this machine's queue (a handler, Eval
// function or tracer of this machine, at any depth) it returns Queued, nil
// at once: waiting there would wait for itself. A handler of another
// machine waits like any caller. If ctx ends first it returns Canceled and
// an error wrapping ctx.Err() (and ErrDropped when the item was still
// queued: it never runs). An unknown state gives Canceled and an error
// wrapping ErrStateUnknown (recorded like any mutation's), a disposed
// machine Canceled and ErrDisposed, a full queue Canceled and ErrQueueFull,
// MutationEval Canceled and ErrInvalidArgs. Safe to call concurrently.
func (m *Machine) Mutate(ctx context.Context, typ MutationType, states S, args A) (Result, error) {
	return m.mutate(ctx, nil, typ, states, args)
}

// mutate is Mutate with an optional precondition (see MutateIf).
func (m *Machine) mutate(ctx context.Context, cond condition, typ MutationType, states S, args A) (Result, error) {
	if m.Disposed.Load() {
		return Canceled, ErrDisposed
	}
	if typ < MutationAdd || typ > MutationSet {
		return Canceled, fmt.Errorf("%w: mutation type %d", ErrInvalidArgs, typ)
	}
	if ctx == nil {
		ctx = context.Background()
	}
	if err := ctx.Err(); err != nil {
		return Canceled, err
	}
	if states == nil {
		states = S{}
	}
	sch := m.sch.Load()
	if err := m.checkStates(sch, "", states); err != nil {
		return Canceled, err
	}
	// decided before locking: only the drainer itself can be inside user
	// code of m, and it stays the drainer meanwhile
	self := m.fromDrainer()
	m.qmu.Lock()
	qlen := len(m.queue) - m.qhead
	if typ == MutationRemove && cond == nil && !m.draining && qlen == 0 && m.noneActive(sch, "", states) {
		m.qmu.Unlock()
		return Executed, nil
	}
	if m.QueueLimit > 0 && qlen >= m.QueueLimit {
		m.qmu.Unlock()
		return Canceled, ErrQueueFull
	}
	it := queueItem{typ: typ, states: states, args: args, cond: cond}
	if !m.draining {
		root := &rootState{pending: 1}
		it.root = root
		root.id = m.pushLocked(it)
		m.draining = true
		m.qmu.Unlock()
		m.drain(root.id, root)
		return m.outcome(root)
	}
	if self {
		m.attributeLocked(&it)
		m.pushLocked(it)
		m.qmu.Unlock()
		return Queued, nil
	}
	root := &rootState{pending: 1, done: make(chan Result, 1)}
	it.root = root
	root.id = m.pushLocked(it)
	m.qmu.Unlock()
	if m.logOn(LogOps) {
		m.log(LogOps, "[queue:%s] %s", typ, j(states))
	}
	select {
	case res := <-root.done:
		if res == resultHandoff {
			m.drain(root.id, root)
			return m.outcome(root)
		}
		// written before the send
		return res, root.err()
	case <-ctx.Done():
		m.qmu.Lock()
		// a mutation still queued is dropped: it never runs
		err := ctx.Err()
		if m.removeLocked(root.id) {
			root.pending--
			err = fmt.Errorf("%w: %w", ErrDropped, err)
		}
		select {
		case res := <-root.done:
			if res == resultHandoff {
				// the draining role came with it: pass it on (or drain)
				m.qmu.Unlock()
				m.drain(0, root)
				return Canceled, err
			}
		default:
		}
		m.qmu.Unlock()
		return Canceled, err
	}
}

// Eval runs fn on the queue, prepended before other mutations, and returns
// true once it ran. It returns false when HandlerTimeout/2 elapses first (fn
// will then never run), when m.Ctx or ctx (nil means Background) ends, or
// when called from the goroutine draining this machine's queue (a handler,
// Eval function or tracer of this machine: fn doesn't run there). From a
// handler of another machine it waits like any caller. An empty source panics. Safe
// to call concurrently.
func (m *Machine) Eval(source string, fn func(), ctx context.Context) bool {
	if source == "" {
		panic("error: source of eval is required")
	}
	if m.Disposed.Load() || fn == nil {
		return false
	}
	if ctx == nil {
		ctx = context.Background()
	}
	if m.fromDrainer() {
		if m.logOn(LogOps) {
			m.log(LogOps, "[eval] %s: no Eval() within a handler", source)
		}
		return false
	}
	ev := &evalItem{fn: fn, source: source, done: make(chan struct{})}
	m.qmu.Lock()
	m.prependLocked(queueItem{typ: MutationEval, eval: ev, ctx: ctx})
	idle := !m.draining
	if idle {
		m.draining = true
	}
	m.qmu.Unlock()
	if idle {
		m.drain(0, nil)
	}
	select {
	case <-ev.done:
		return true
	default:
	}
	to := m.HandlerTimeout / 2
	var timeout <-chan time.Time
	if to > 0 {
		tm := time.NewTimer(to)
		defer tm.Stop()
		timeout = tm.C
	}
	giveUp := func() bool {
		if ev.state.CompareAndSwap(0, 2) {
			return false
		}
		select {
		case <-ev.done:
			return true
		default:
			return false
		}
	}
	select {
	case <-ev.done:
		return true
	case <-timeout:
		return giveUp()
	case <-m.Ctx.Done():
		return giveUp()
	case <-ctx.Done():
		return giveUp()
	}
}
