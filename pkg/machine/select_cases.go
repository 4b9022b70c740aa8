package machine

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"
)

// caseKind is the kind of a SelectCase.
type caseKind uint8

const (
	caseNone caseKind = iota
	caseActive
	caseInactive
	caseArgs
	caseTime
	caseSend
	caseTake
	caseTimer
	caseDefault
)

// SelectCase is one case of Select. Build it with OnActive, OnInactive,
// OnArgs, OnTime (receive cases: a condition of a machine), Send, Take (a
// mutation performed only if its case is chosen), Timer or Default. The zero
// value is invalid. A SelectCase holds no resources: the same one can be
// passed to any number of Select calls.
type SelectCase struct {
	kind   caseKind
	mach   Api
	mut    Mutator
	states S
	args   A
	times  Time
	cond   Clock
	typ    MutationType
	d      time.Duration
}

// OnActive is a receive case ready when all the states are active on mach,
// or were at some moment while Select waited (as When reports it).
func OnActive(mach Api, states ...string) SelectCase {
	return SelectCase{kind: caseActive, mach: mach, states: slices.Clone(states)}
}

// OnInactive is a receive case ready when none of the states is active on
// mach, or that was so at some moment while Select waited (as WhenNot).
func OnInactive(mach Api, states ...string) SelectCase {
	return SelectCase{kind: caseInactive, mach: mach, states: slices.Clone(states)}
}

// OnArgs is a receive case ready when state is activated on mach with
// arguments that include args (as WhenArgs), after Select registered its
// wait. It is an event, not a condition: it is never ready at once, so a
// Select with a Default case never chooses it.
func OnArgs(mach Api, state string, args A) SelectCase {
	return SelectCase{kind: caseArgs, mach: mach, states: S{state}, args: maps.Clone(args)}
}

// OnTime is a receive case ready when the tick of every state reaches the
// matching value of times (as WhenTime).
func OnTime(mach Api, states S, times Time) SelectCase {
	return SelectCase{kind: caseTime, mach: mach, states: slices.Clone(states), times: slices.Clone(times)}
}

// Send is a send case: the mutation, performed only if this case is chosen.
// Without cond it is always ready. With cond, a precondition on mach's
// clock (see MutateIf), it is ready when mach shows exactly those ticks,
// and once chosen the precondition is checked again, atomically, on the
// source: if it no longer holds, the mutation changed nothing, the case is
// dropped from this Select (the ticks won't come back), and Select goes on
// with the other cases. Its Selected.Clock is cond.
func Send(mach Mutator, cond Clock, typ MutationType, states S, args A) SelectCase {
	return SelectCase{kind: caseSend, mach: mach, mut: mach, cond: maps.Clone(cond), typ: typ,
		states: slices.Clone(states), args: args}
}

// Take is a receive case that consumes what it receives: ready when state
// is active on mach, and once chosen it removes state (with args) on
// condition that its tick is still the one Select saw (see MutateIf). Of
// any number of Selects, in any processes, taking the same activation of a
// state, exactly one succeeds; the others count a conflict in
// Selected.Conflicts and go back to waiting, for the next activation of the
// state or another case. Its Selected.Clock holds the tick it consumed,
// which identifies the activation taken.
func Take(mach Mutator, state string, args A) SelectCase {
	return SelectCase{kind: caseTake, mach: mach, mut: mach, states: S{state}, args: args}
}

// Timer is a case ready once d has elapsed since Select began (at once for
// d <= 0), like a receive from time.After(d). Its timer is stopped when
// Select returns.
func Timer(d time.Duration) SelectCase {
	return SelectCase{kind: caseTimer, d: d}
}

// Default is the case chosen when no other case is ready at once, as in a
// Go select with a default clause. At most one per Select.
func Default() SelectCase {
	return SelectCase{kind: caseDefault}
}

// validate checks the cases: the error names the first bad one.
func validateCases(cases []SelectCase) error {
	defaults := 0
	for i := range cases {
		c := &cases[i]
		switch c.kind {
		case caseNone:
			return fmt.Errorf("%w: case %d: zero SelectCase", ErrInvalidArgs, i)
		case caseDefault:
			defaults++
			if defaults > 1 {
				return fmt.Errorf("%w: case %d: more than one Default", ErrInvalidArgs, i)
			}
			continue
		case caseTimer:
			continue
		}
		if c.mach == nil || (c.kind == caseSend || c.kind == caseTake) && c.mut == nil {
			return fmt.Errorf("%w: case %d: nil machine", ErrInvalidArgs, i)
		}
		if c.kind == caseTime && len(c.states) != len(c.times) {
			return fmt.Errorf("%w: case %d: %d states, %d times", ErrInvalidArgs, i, len(c.states), len(c.times))
		}
		if c.kind == caseSend && (c.typ < MutationAdd || c.typ > MutationSet) {
			return fmt.Errorf("%w: case %d: mutation type %d", ErrInvalidArgs, i, c.typ)
		}
		for _, s := range c.states {
			if !c.mach.Has1(s) {
				return fmt.Errorf("%w: case %d: %s", ErrStateUnknown, i, s)
			}
		}
		for s := range c.cond {
			if !c.mach.Has1(s) {
				return fmt.Errorf("%w: case %d: %s (in a precondition)", ErrStateUnknown, i, s)
			}
		}
	}
	return nil
}

// condTimes splits a precondition into states and ticks for WhenTime.
func condTimes(cond Clock) (S, Time) {
	states := slices.Sorted(maps.Keys(cond))
	times := make(Time, len(states))
	for i, s := range states {
		times[i] = cond[s]
	}
	return states, times
}

// register registers the wait of case c with ctx and returns its channel
// and the states it waits on, or nil when the case needs none (it is ready,
// or can't become ready). tick is, for Take, its state's tick now;
// conflicted the tick it lost.
func (c *SelectCase) register(ctx context.Context, tick, conflicted uint64) (<-chan struct{}, S) {
	switch c.kind {
	case caseActive:
		return c.mach.When(c.states, ctx), c.states
	case caseInactive:
		return c.mach.WhenNot(c.states, ctx), c.states
	case caseArgs:
		return c.mach.WhenArgs(c.states[0], c.args, ctx), c.states
	case caseTime:
		return c.mach.WhenTime(c.states, c.times, ctx), c.states
	case caseSend:
		if len(c.cond) == 0 {
			return nil, nil
		}
		states, times := condTimes(c.cond)
		return c.mach.WhenTime(states, times, ctx), states
	case caseTake:
		if IsActiveTick(tick) && tick == conflicted {
			// lost this activation: wait for the state to move on
			return c.mach.WhenTime(c.states, Time{tick + 1}, ctx), c.states
		}
		return c.mach.When(c.states, ctx), c.states
	}
	return nil, nil
}
