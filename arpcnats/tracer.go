package arpcnats

import (
	am "github.com/arpc-go/arpc/pkg/machine"
)

// tracer records the source's clock into the Server at the end of every
// transition and wakes the publisher and the persister once per queue
// pass. Its hooks only copy a vector and signal channels, so the cost of
// a transition does not depend on how many mirrors there are: NATS fans
// the update out.
type tracer struct {
	*am.NoOpTracer
	s *Server
}

// TransitionEnd records the clock after a transition.
func (t *tracer) TransitionEnd(tr *am.Transition) {
	s := t.s
	after := tr.TimeAfter
	if len(after) != len(s.names) {
		return
	}
	before := tr.TimeBefore
	s.mu.Lock()
	for i, v := range after {
		if v == s.time[i] {
			continue
		}
		s.dirty = true
		if len(before) == len(after) {
			if v%2 == 1 && v != before[i] {
				s.args[i] = tr.Args()
			} else if v%2 == 0 {
				s.args[i] = nil
			}
			if s.multi[i] && before[i]%2 == 1 && v%2 == 1 && v-before[i] >= 2 {
				// a Multi state re-entered: deactivated in between
				s.exits[i]++
			}
		}
		s.time[i] = v
	}
	s.mu.Unlock()
}

// QueueEnd publishes (through the publisher) once per queue pass.
func (t *tracer) QueueEnd(*am.Machine) {
	t.s.signal()
}

// TransientTransitions promises the engine that the tracer keeps no
// *Transition.
func (t *tracer) TransientTransitions() bool { return true }
