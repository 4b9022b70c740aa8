package rpc

import (
	"context"
	"fmt"

	am "github.com/arpc-go/arpc/pkg/machine"
)

// sourceMutate runs a mutation on the source, with its precondition if it
// has one (see Worker.MutateIf).
func (s *Server) sourceMutate(ctx context.Context, m *msgMutate, names am.S) (am.Result, error) {
	typ := am.MutationType(m.Type)
	if m.Cond == nil {
		return s.source.Mutate(ctx, typ, names, m.Args)
	}
	cond, err := s.sourceCond(m.Cond)
	if err != nil {
		return am.Canceled, err
	}
	return s.source.MutateIf(ctx, cond, typ, names, m.Args)
}

// sourceCond translates a precondition from the client's mirror to the
// source's ticks. An entry whose tick is below its offset can't hold: the
// mirror shows at least the offset for that state.
func (s *Server) sourceCond(c []wireCond) (am.Clock, error) {
	cond := make(am.Clock, len(c))
	for _, e := range c {
		if e.idx < 0 || e.idx >= len(s.names) {
			return nil, fmt.Errorf("%w: precondition state index %d out of range [0, %d)",
				am.ErrInvalidArgs, e.idx, len(s.names))
		}
		name := s.names[e.idx]
		if e.tick < e.offset {
			return nil, fmt.Errorf("%w: tick %d of %s is below the mirror's offset %d",
				am.ErrPrecondition, e.tick, name, e.offset)
		}
		want := e.tick - e.offset
		if have, dup := cond[name]; dup && have != want {
			return nil, fmt.Errorf("%w: %s named twice, with ticks %d and %d", am.ErrPrecondition, name, have, want)
		}
		cond[name] = want
	}
	return cond, nil
}
