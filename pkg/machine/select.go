package machine

import (
	"context"
	"errors"
	"math/rand/v2"
	"reflect"
	"time"
)

// Selected tells which case Select chose and what it saw.
type Selected struct {
	// Index is the chosen case's position in the cases, or -1 when Select
	// failed before choosing one (invalid cases, ctx ended).
	Index int
	// Clock is, for OnActive, OnInactive, OnArgs and OnTime, the ticks of
	// the case's states when it was chosen; for Take, the tick it consumed
	// (which identifies the activation taken); for Send, its precondition.
	// Nil for Timer and Default.
	Clock Clock
	// Result is the mutation's result for Send and Take, else 0.
	Result Result
	// Conflicts counts the Send and Take cases that were chosen during this
	// call but lost their precondition on the source to someone else (and
	// changed nothing), so Select went on.
	Conflicts int
}

// caseState is what Select knows of one case while it runs.
type caseState struct {
	// fired: a receive case's condition held while Select waited, or a
	// Timer's time came
	fired bool
	// dead: a Send whose precondition can no longer hold
	dead bool
	// conflicted is the tick of the activation a Take lost
	conflicted uint64
	// ch is the registered wait, nil when none is, on waitStates
	ch         <-chan struct{}
	waitStates S
	timer      *time.Timer
}

// selector is the state of one Select call.
type selector struct {
	cases []SelectCase
	st    []caseState
	sel   Selected
	ready []int
}

// Select waits until one of the cases is ready, chooses one of the ready
// cases uniformly at random, as Go's select statement does, and returns
// which. Cases are built at run time, over any number of machines, local
// (*Machine) or remote (an aRPC Worker) alike, the way reflect.Select
// works for channels:
//
//	sel, err := am.Select(ctx,
//		am.Take(jobs, "Job", nil),          // consume a job: one taker wins
//		am.OnActive(control, "Shutdown"),   // or stop
//		am.Timer(time.Second),              // or time out
//	)
//
// Receive cases (OnActive, OnInactive, OnArgs, OnTime) are ready when their
// condition holds; Send and Take perform a mutation, and only the chosen one
// does. Both carry a precondition on the source's clock (see MutateIf) when
// they need one, so their effect is exact even across processes: a Take
// removes the activation of the state it saw, or nothing. When the chosen
// Send or Take loses its precondition to another caller, nothing changed;
// Select counts a conflict and goes on as if that case had not been ready,
// choosing among the others or waiting again. So of N processes selecting
// on Take of the same remote state, exactly one takes each activation and
// the others wait for the next one.
//
// With a Default case, Select doesn't wait: it chooses among the cases
// ready now, or Default. Without one it waits, on every case at once,
// without goroutines of its own, until a case is chosen or ctx ends (then
// it returns ctx.Err() and Index -1). When every case can no longer be
// ready and there is no Timer, it waits for ctx alone, as a Go select on
// nil channels blocks.
//
// A chosen Send or Take returns its mutation's result and error: an error
// other than ErrPrecondition (a veto, ErrNetwork, ctx ending during the
// mutation...) is returned with that case's Index. A machine disposed while
// Select waits on it gives ErrDisposed with that case's Index. Invalid
// cases give an error wrapping ErrInvalidArgs or ErrStateUnknown, and
// Index -1.
//
// Select registers its waits with a context that ends when it returns, so
// nothing of it is left behind: no goroutine, no timer, no wait. Don't call
// it from a handler of a machine it waits on (the wait would wait for
// itself). Safe to call concurrently.
func Select(ctx context.Context, cases ...SelectCase) (Selected, error) {
	s := &selector{cases: cases, st: make([]caseState, len(cases)), sel: Selected{Index: -1}}
	if ctx == nil {
		ctx = context.Background()
	}
	if err := validateCases(cases); err != nil {
		return s.sel, err
	}
	if err := ctx.Err(); err != nil {
		return s.sel, err
	}
	def := -1
	for i := range cases {
		c := &cases[i]
		switch {
		case c.kind == caseDefault:
			def = i
		case c.kind == caseTimer && c.d <= 0:
			s.st[i].fired = true
		case c.kind == caseTimer:
			s.st[i].timer = time.NewTimer(c.d)
		case isDisposed(c.mach):
			return Selected{Index: i}, ErrDisposed
		}
	}
	defer s.stopTimers()
	if def >= 0 {
		if done, err := s.try(ctx); done {
			return s.sel, err
		}
		s.sel.Index = def
		return s.sel, nil
	}
	// the waits end with this call, or with ctx: a wait closing while ctx
	// is live means its condition held (or its machine was disposed)
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer s.releaseWaits()
	for {
		if done, err := s.try(ctx); done {
			return s.sel, err
		}
		s.arm(wctx)
		i := s.wait(ctx)
		if err := ctx.Err(); err != nil {
			s.sel.Index, s.sel.Clock, s.sel.Result = -1, nil, 0
			return s.sel, err
		}
		if i < 0 {
			continue
		}
		c, st := &cases[i], &s.st[i]
		if c.kind == caseTimer {
			st.fired = true
			continue
		}
		st.ch = nil
		if isDisposed(c.mach) {
			return Selected{Index: i, Conflicts: s.sel.Conflicts}, ErrDisposed
		}
		switch c.kind {
		case caseActive, caseInactive, caseArgs, caseTime:
			st.fired = true
		}
	}
}

// try chooses, uniformly at random, among the cases ready now. A Send or
// Take that loses its precondition is passed over. It tells whether a case
// was chosen, with the error to return.
func (s *selector) try(ctx context.Context) (bool, error) {
	s.ready = s.ready[:0]
	for i := range s.cases {
		if s.isReady(i) {
			s.ready = append(s.ready, i)
		}
	}
	rand.Shuffle(len(s.ready), func(a, b int) { s.ready[a], s.ready[b] = s.ready[b], s.ready[a] })
	for _, i := range s.ready {
		c, st := &s.cases[i], &s.st[i]
		switch c.kind {
		case caseTimer:
			s.sel.Index = i
			return true, nil
		case caseSend:
			var res Result
			var err error
			if len(c.cond) == 0 {
				res, err = c.mut.Mutate(ctx, c.typ, c.states, c.args)
			} else {
				res, err = c.mut.MutateIf(ctx, c.cond, c.typ, c.states, c.args)
			}
			if errors.Is(err, ErrPrecondition) {
				s.sel.Conflicts++
				st.dead = true
				continue
			}
			s.sel.Index, s.sel.Clock, s.sel.Result = i, c.cond, res
			return true, err
		case caseTake:
			tick := c.mach.Tick(c.states[0])
			if !IsActiveTick(tick) || tick == st.conflicted {
				// gone since isReady
				continue
			}
			cond := Clock{c.states[0]: tick}
			res, err := c.mut.MutateIf(ctx, cond, MutationRemove, c.states, c.args)
			if errors.Is(err, ErrPrecondition) {
				s.sel.Conflicts++
				st.conflicted = tick
				continue
			}
			s.sel.Index, s.sel.Clock, s.sel.Result = i, cond, res
			return true, err
		default:
			s.sel.Index, s.sel.Clock = i, c.mach.Clock(c.states)
			return true, nil
		}
	}
	return false, nil
}

// isReady tells whether case i is ready now.
func (s *selector) isReady(i int) bool {
	c, st := &s.cases[i], &s.st[i]
	switch c.kind {
	case caseActive:
		return st.fired || c.mach.Is(c.states)
	case caseInactive:
		return st.fired || c.mach.Not(c.states)
	case caseArgs:
		return st.fired
	case caseTime:
		if st.fired {
			return true
		}
		now := c.mach.Time(c.states)
		for k, t := range c.times {
			if now[k] < t {
				return false
			}
		}
		return true
	case caseSend:
		if st.dead {
			return false
		}
		for state, want := range c.cond {
			switch got := c.mach.Tick(state); {
			case got > want:
				// ticks never decrease
				st.dead = true
				return false
			case got < want:
				return false
			}
		}
		return true
	case caseTake:
		tick := c.mach.Tick(c.states[0])
		return IsActiveTick(tick) && tick != st.conflicted
	case caseTimer:
		if !st.fired && st.timer != nil {
			select {
			case <-st.timer.C:
				st.fired = true
			default:
			}
		}
		return st.fired
	}
	return false
}

// arm registers the waits of the cases that need one and have none.
func (s *selector) arm(ctx context.Context) {
	for i := range s.cases {
		c, st := &s.cases[i], &s.st[i]
		if st.ch != nil || st.fired || st.dead {
			continue
		}
		switch c.kind {
		case caseTimer, caseDefault:
			continue
		}
		var tick uint64
		if c.kind == caseTake {
			tick = c.mach.Tick(c.states[0])
		}
		st.ch, st.waitStates = c.register(ctx, tick, st.conflicted)
	}
}

// wait blocks until ctx ends (-1), a timer fires or a registered wait
// closes, and returns that case's index.
func (s *selector) wait(ctx context.Context) int {
	rc := make([]reflect.SelectCase, 1, len(s.cases)+1)
	rc[0] = reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(ctx.Done())}
	idx := make([]int, 1, len(s.cases)+1)
	idx[0] = -1
	for i := range s.st {
		st := &s.st[i]
		switch {
		case st.timer != nil && !st.fired:
			rc = append(rc, reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(st.timer.C)})
		case st.ch != nil:
			rc = append(rc, reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(st.ch)})
		default:
			continue
		}
		idx = append(idx, i)
	}
	chosen, _, _ := reflect.Select(rc)
	return idx[chosen]
}

// stopTimers stops the Timer cases' timers.
func (s *selector) stopTimers() {
	for i := range s.st {
		if t := s.st[i].timer; t != nil {
			t.Stop()
		}
	}
}

// waitReleaser is implemented by the Api implementations built on a Model
// (a *Machine, a mirror embedding one): Select releases its waits through
// it when it returns, at once, rather than through their context's
// callback, which runs a moment later.
type waitReleaser interface {
	releaseWait(states S, ch <-chan struct{})
}

// releaseWaits releases the waits still registered.
func (s *selector) releaseWaits() {
	for i := range s.st {
		st := &s.st[i]
		if st.ch == nil {
			continue
		}
		if r, ok := s.cases[i].mach.(waitReleaser); ok {
			r.releaseWait(st.waitStates, st.ch)
		}
		st.ch = nil
	}
}

// releaseWait releases the binding of a When, WhenNot, WhenTime or WhenArgs
// wait on states whose channel is ch, if it is still registered.
func (m *Model) releaseWait(states S, ch <-chan struct{}) {
	var rel []*binding
	take := func(l []*binding) bool {
		for _, b := range l {
			if !b.done && b.ch == ch {
				m.unindexLocked(b)
				rel = append(rel, b)
				return true
			}
		}
		return false
	}
	m.mu.Lock()
	sch := m.sch.Load()
	found := false
	for _, s := range states {
		if i := sch.idx(s); i >= 0 && i < len(m.byState) {
			if found = take(m.byState[i]) || take(m.byArgs[i]); found {
				break
			}
		}
	}
	if !found {
		take(m.orphans)
	}
	m.mu.Unlock()
	m.release(rel)
}
