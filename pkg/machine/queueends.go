package machine

import (
	"context"
	"slices"
	"sync"
)

// queueEndWaiter is one WhenQueueEnds channel.
type queueEndWaiter struct {
	once sync.Once
	ch   chan struct{}
	stop func() bool
	m    *Machine
}

func (w *queueEndWaiter) close() {
	w.once.Do(func() {
		if w.stop != nil && w.stop() {
			w.m.cbs.Done()
		}
		close(w.ch)
	})
}

// WhenQueueEnds returns a channel closed when the current queue pass ends,
// at once if the queue is idle or the machine disposed, or when ctx ends.
func (m *Machine) WhenQueueEnds(ctx context.Context) <-chan struct{} {
	if m.Disposed.Load() || (ctx != nil && ctx.Err() != nil) {
		return closedCh
	}
	m.qmu.Lock()
	if !m.draining {
		m.qmu.Unlock()
		return closedCh
	}
	w := &queueEndWaiter{ch: make(chan struct{}), m: m}
	m.queueEnds = append(m.queueEnds, w)
	if ctx != nil && ctx.Done() != nil {
		m.mu.Lock()
		if m.Disposed.Load() {
			m.mu.Unlock()
			m.qmu.Unlock()
			w.close()
			return w.ch
		}
		m.cbs.Add(1)
		m.mu.Unlock()
		w.stop = context.AfterFunc(ctx, func() {
			defer m.cbs.Done()
			m.qmu.Lock()
			for k, v := range m.queueEnds {
				if v == w {
					m.queueEnds = slices.Delete(m.queueEnds, k, k+1)
					break
				}
			}
			m.qmu.Unlock()
			w.once.Do(func() { close(w.ch) })
		})
	}
	m.qmu.Unlock()
	return w.ch
}
