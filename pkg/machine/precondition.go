package machine

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// ErrPrecondition is returned, with Canceled, by MutateIf when the
// mutation's clock precondition did not hold when its turn in the queue
// came: the mutation changed nothing. It is distinct from ErrCanceled (a
// veto, a panic or relations), so a caller racing others for the same
// change can tell "someone else got there first" from a failure.
var ErrPrecondition = errors.New("precondition failed")

// Mutator is an Api whose mutations take a context and can carry a clock
// precondition. A local *Machine and an aRPC Worker implement it; Select's
// Send and Take cases use it. Implementations must be safe for concurrent
// use.
type Mutator interface {
	Api
	// Mutate runs a mutation and returns its result and this call's error;
	// see (*Machine).Mutate.
	Mutate(ctx context.Context, typ MutationType, states S, args A) (Result, error)
	// MutateIf is Mutate with a precondition on the source's clock; see
	// (*Machine).MutateIf.
	MutateIf(ctx context.Context, cond Clock, typ MutationType, states S, args A) (Result, error)
}

var _ Mutator = (*Machine)(nil)

// condTick is one entry of a precondition: the tick state must have.
type condTick struct {
	state string
	tick  uint64
}

// condition is a validated precondition, in name order (so its error names
// the first failing state deterministically).
type condition []condTick

// MutateIf is Mutate with a precondition: the mutation runs only if, when
// its turn in the queue comes, the tick of every state named in cond still
// equals the given value. The check and the transition happen on the
// goroutine draining the queue, one right after the other, so no other
// mutation can come in between: of many callers that read the same clock
// and race to change it with MutateIf, exactly one wins and the others fail.
// When the precondition does not hold, nothing changes (no handler runs, no
// tick moves) and MutateIf returns Canceled and an error wrapping
// ErrPrecondition that names the state and its tick.
//
// A typical use consumes a state exactly once among competing consumers:
//
//	tick := m.Tick("Job")
//	if am.IsActiveTick(tick) {
//		_, err := m.MutateIf(ctx, am.Clock{"Job": tick}, am.MutationRemove, am.S{"Job"}, nil)
//		// nil: this caller took the job; ErrPrecondition: another one did
//	}
//
// An empty cond is no precondition. A state in cond the machine doesn't
// have fails the call with an error wrapping ErrStateUnknown and nothing is
// queued (the machine's Err is not touched). The precondition is checked
// against mutations, not against Import or MockClock, which replace the
// clock outside the queue. Everything else is as for Mutate, including
// Queued, nil from the goroutine draining this machine (the precondition is
// then checked when the mutation's turn comes, and its outcome is not
// reported). Safe to call concurrently.
func (m *Machine) MutateIf(ctx context.Context, cond Clock, typ MutationType, states S, args A) (Result, error) {
	c, err := m.condition(cond)
	if err != nil {
		return Canceled, err
	}
	return m.mutate(ctx, c, typ, states, args)
}

// condition validates cond and copies it (the caller may reuse its map).
func (m *Machine) condition(cond Clock) (condition, error) {
	if len(cond) == 0 {
		return nil, nil
	}
	sch := m.sch.Load()
	c := make(condition, 0, len(cond))
	for name, tick := range cond {
		if sch.idx(name) < 0 {
			return nil, fmt.Errorf("%w: %s (in a precondition)", ErrStateUnknown, name)
		}
		c = append(c, condTick{state: name, tick: tick})
	}
	slices.SortFunc(c, func(a, b condTick) int { return strings.Compare(a.state, b.state) })
	return c, nil
}

// check tells whether the precondition holds on sch now: nil, or an error
// wrapping ErrPrecondition. Called by the drainer only, right before the
// mutation's transition, so the ticks can't move in between.
func (c condition) check(sch *schema) error {
	for _, e := range c {
		i := sch.idx(e.state)
		if i < 0 {
			// the schema changed and lost the state
			return fmt.Errorf("%w: %s is no longer a state", ErrPrecondition, e.state)
		}
		if got := sch.ticks[i].Load(); got != e.tick {
			return fmt.Errorf("%w: tick of %s is %d, not %d", ErrPrecondition, e.state, got, e.tick)
		}
	}
	return nil
}
