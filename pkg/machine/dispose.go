package machine

// Dispose disposes the machine asynchronously, so it's safe to call from a
// handler; wait on WhenDisposed. A repeated call only logs.
func (m *Machine) Dispose() {
	if !m.disposing.CompareAndSwap(false, true) {
		if m.logOn(LogDecisions) {
			m.log(LogDecisions, "[dispose] already disposed")
		}
		return
	}
	go m.teardown()
}

// DisposeForce disposes the machine synchronously: disposal handlers have
// run when it returns. WhenDisposed closes once the machine's own goroutines
// have exited.
func (m *Machine) DisposeForce() {
	if !m.disposing.CompareAndSwap(false, true) {
		return
	}
	m.teardown()
}

// WhenDisposed returns a channel closed once disposal has finished and every
// goroutine the machine started has exited.
func (m *Machine) WhenDisposed() <-chan struct{} {
	return m.disposed
}

// RegisterDisposalHandler adds fn, run during disposal in registration
// order.
func (m *Machine) RegisterDisposalHandler(fn func()) {
	if fn == nil {
		return
	}
	m.disposeMu.Lock()
	m.disposeHandlers = append(m.disposeHandlers, fn)
	m.disposeMu.Unlock()
}

// onCtxDone disposes the machine when its context ends, whether or not
// handlers were ever bound (asyncmachine-go disposes only with handlers).
func (m *Machine) onCtxDone() {
	if m.disposing.CompareAndSwap(false, true) {
		m.teardown()
	}
}

// teardown runs disposal once.
func (m *Machine) teardown() {
	m.mu.Lock()
	m.Disposed.Store(true)
	m.mu.Unlock()
	for _, t := range m.tracerList() {
		t.MachineDispose(m.ID)
	}
	if m.logOn(LogChanges) {
		m.log(LogChanges, "[end] dispose")
	}
	if m.stopCtx != nil {
		m.stopCtx()
	}
	ctxErr := m.Ctx.Err()
	m.cancel()
	if ctxErr == nil {
		ctxErr = m.Ctx.Err()
	}
	m.setErrIfNil(ctxErr)
	m.hmu.Lock()
	m.unbound = true
	m.hmu.Unlock()
	m.rebindHandlers()
	m.logger.Store(nil)
	m.qmu.Lock()
	ends := m.queueEnds
	m.queueEnds = nil
	m.qmu.Unlock()
	closeEnds(ends)
	m.closeAllWaiters()
	m.trMu.Lock()
	m.tracers.Store(newTracerSet(nil))
	m.trMu.Unlock()
	m.clockCleared.Store(true)
	m.disposeMu.Lock()
	hs := m.disposeHandlers
	m.disposeHandlers = nil
	m.disposeMu.Unlock()
	for _, fn := range hs {
		m.runDisposalHandler(fn)
	}
	m.finishTeardown()
}

// finishTeardown waits for the machine's goroutines, flushes the queue and
// closes WhenDisposed. It's safe on the drainer (DisposeForce from a
// handler): the only goroutines it waits for are the timeout timer's
// callbacks, which never wait for the drainer; the drainer itself then
// cancels what is left in the queue.
func (m *Machine) finishTeardown() {
	m.wdStop()
	m.bg.closeAndWait()
	// flush what's queued if nobody drains
	m.qmu.Lock()
	var rest []queueItem
	if !m.draining {
		rest = append(rest, m.queue[m.qhead:]...)
		m.queue, m.qhead = nil, 0
	}
	m.qmu.Unlock()
	for i := range rest {
		m.completeItem(&rest[i], Canceled, ErrDisposed)
	}
	close(m.disposed)
}

func (m *Machine) runDisposalHandler(fn func()) {
	defer func() { _ = recover() }()
	fn()
}
