package machine

import (
	"context"
)

type stateCtxEntry struct {
	ctx    context.Context
	cancel context.CancelFunc
}

// NewStateCtx returns a child of the model's context (a Machine's Ctx)
// canceled after the first update that leaves state inactive, even for a
// moment, or by disposal. It's already canceled if the state is inactive now
// (or unknown, or the model disposed). Multi re-entry doesn't cancel it.
// Contexts of one activation are shared.
func (m *Model) NewStateCtx(state string) context.Context {
	m.mu.Lock()
	sch := m.sch.Load()
	i := sch.idx(state)
	if i < 0 || m.closed.Load() || sch.ticks[i].Load()%2 == 0 {
		m.mu.Unlock()
		ctx, cancel := context.WithCancel(m.ctx)
		cancel()
		return ctx
	}
	e := m.stateCtx[i]
	if e.cancel == nil {
		e.ctx, e.cancel = context.WithCancel(m.ctx)
		m.stateCtx[i] = e
		m.nWatch.Add(1)
	}
	m.mu.Unlock()
	return e.ctx
}
