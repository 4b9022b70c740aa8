package rpc

import (
	"context"
	"fmt"
	"slices"

	am "github.com/arpc-go/arpc/pkg/machine"
	"github.com/arpc-go/arpc/pkg/rpc2"
)

var _ am.Mutator = (*Worker)(nil)

// MutateIf is Mutate with a precondition on the remote machine's clock, as
// (*am.Machine).MutateIf: the server runs the mutation only if, when its
// turn in the source's queue comes, every state named in cond has the tick
// given there; otherwise nothing changes and MutateIf returns Canceled and
// an error wrapping am.ErrPrecondition. The check is made by the source
// itself, atomically with the mutation, so of many clients that saw the
// same clock and race to change it, exactly one wins:
//
//	tick := w.Tick("Job")
//	_, err := w.MutateIf(ctx, am.Clock{"Job": tick}, am.MutationRemove, am.S{"Job"}, nil)
//	// nil: this client took the job; am.ErrPrecondition: another one did
//
// The ticks in cond are those this mirror shows (Tick, Clock, Time). After
// the server restarted, a mirror's ticks can be the source's plus a
// per-state offset (mirrored ticks never decrease); the offsets travel with
// the precondition, so it holds exactly when the mirror, brought up to date,
// would show the ticks in cond. The failure's reply carries the clock that
// made it fail: when MutateIf returns, the mirror shows it.
//
// Like every mutation it runs at most once, also when WithRetries resends
// it. A state unknown to the schema fails the call locally with
// am.ErrStateUnknown (nothing is sent); an empty cond is no precondition.
// Other errors are Mutate's. A server that predates preconditions refuses
// the mutation (ErrInvalidParams or ErrRpc) and runs nothing. Safe to call
// concurrently.
func (w *Worker) MutateIf(ctx context.Context, cond am.Clock, typ am.MutationType, states am.S,
	args am.A,
) (am.Result, error) {
	if typ < am.MutationAdd || typ > am.MutationSet {
		return am.Canceled, fmt.Errorf("%w: mutation type %d", am.ErrInvalidArgs, typ)
	}
	if len(cond) == 0 {
		return w.Mutate(ctx, typ, states, args)
	}
	if w.disposed.Load() {
		return am.Canceled, am.ErrDisposed
	}
	idxs, err := w.stateIndexes(states)
	if err != nil {
		return am.Canceled, err
	}
	want := make([]wireCond, 0, len(cond))
	for name, tick := range cond {
		i := w.Index(name)
		if i < 0 {
			return am.Canceled, fmt.Errorf("%w: %s (in a precondition)", am.ErrStateUnknown, name)
		}
		want = append(want, wireCond{idx: i, tick: tick})
	}
	slices.SortFunc(want, func(a, b wireCond) int { return a.idx - b.idx })
	resp, err := w.roundTrip(ctx, func(reqID, ack uint64) (any, rpc2.Method) {
		// the offsets of the link this attempt goes out on: its
		// handshake's updates were applied before the link went live, and
		// a later source (a restart) comes only with another link
		c := w.withOffsets(want)
		m, method := mutationMsg(byte(typ), reqID, ack, idxs, args, nil, false)
		switch m := m.(type) {
		case *msgMutate:
			m.Cond = c
		case *MsgMutateGob:
			m.Type |= condFlag
			m.Cond = make([]uint64, 0, 3*len(c))
			for _, e := range c {
				m.Cond = append(m.Cond, uint64(e.idx), e.tick, e.offset)
			}
		}
		return m, method
	})
	if err != nil {
		return am.Canceled, err
	}
	return resp.result, outcomeErr(resp.code, resp.errMsg)
}

// withOffsets returns a copy of c with the mirror's current offsets.
func (w *Worker) withOffsets(c []wireCond) []wireCond {
	out := slices.Clone(c)
	w.mu.RLock()
	defer w.mu.RUnlock()
	for k := range out {
		out[k].offset = w.offset[out[k].idx]
	}
	return out
}
