package arpcnats

import (
	"testing"
	"time"
)

// PersistBeforeRecord makes the servers started by t write the state
// after each mutation ran and before its outcome is recorded: the
// interleaving where a state write holds a mutation's effect but not yet
// its outcome. Call it before Serve.
func PersistBeforeRecord(t testing.TB) {
	t.Helper()
	testHookMutated = func(s *Server) {
		deadline := time.NewTimer(10 * time.Second)
		defer deadline.Stop()
		for {
			s.mu.Lock()
			done := !s.dirty && s.persisted == s.version
			ch := s.persistWait
			s.mu.Unlock()
			if done {
				return
			}
			s.signal()
			select {
			case <-ch:
			case <-deadline.C:
				t.Error("the state was not persisted within 10s")
				return
			}
		}
	}
	// cleanups run last in, first out: the servers started after this
	// call are closed before the hook goes
	t.Cleanup(func() { testHookMutated = nil })
}

// WithMaxWaits bounds the durable waits a leader resolves at a time
// (10,000 otherwise), so tests reach the bound.
func WithMaxWaits(n int) Option { return func(o *serverOpts) { o.maxWaits = n } }
