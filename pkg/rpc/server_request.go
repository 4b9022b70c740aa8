package rpc

import (
	"context"
	"maps"
	"slices"
	"sync"

	am "github.com/arpc-go/arpc/pkg/machine"
	"github.com/arpc-go/arpc/pkg/rpc2"
)

// maxAbandoned caps the tombstones of abandoned requests a server keeps;
// beyond it the oldest are forgotten first.
const maxAbandoned = 1 << 16

// serverRequests is the server's side of Request: the hub that watches its
// source for answers, made on the first request.
type serverRequests struct {
	mu  sync.Mutex
	hub *reqHub
}

// requestHub returns the server's hub, making it on first use.
func (s *Server) requestHub() *reqHub {
	s.req.mu.Lock()
	defer s.req.mu.Unlock()
	if s.req.hub == nil {
		h := &reqHub{
			NoOpTracer: &am.NoOpTracer{},
			mach:       s.source,
			max:        s.opts.maxRequests,
			ttl:        s.opts.abandonedTTL,
			maxTombs:   maxAbandoned,
			late:       s.opts.lateAnswer,
		}
		s.req.hub = h
		// unbound from the source when the server is disposed
		s.Mach.RegisterDisposalHandler(h.detach)
	}
	return s.req.hub
}

// hubIfAny returns the server's hub, or nil before the first request.
func (s *Server) hubIfAny() *reqHub {
	s.req.mu.Lock()
	defer s.req.mu.Unlock()
	return s.req.hub
}

// handleRequest registers the wait for a request's answer on the source,
// then runs its Add as a mutation of the session (exactly once, like
// Mutate). An answer given meanwhile goes into the update that precedes
// the reply; a later one into a later update.
func (s *Server) handleRequest(ctx context.Context, c *rpc2.Conn, m *msgRequest, resp *respResult) error {
	se, err := sessionOf(c)
	if err != nil {
		return err
	}
	for _, i := range []int{m.State, m.Until} {
		if i < 0 || i >= len(s.names) {
			return codeErr(CodeInvalidParams, "state index %d out of range [0, %d)", i, len(s.names))
		}
	}
	if m.ID == "" {
		return codeErr(CodeInvalidParams, "request without a correlation ID")
	}
	// its answer tells that Until was reached: the identity must see it
	if err := s.mayObserve(se, m.Until); err != nil {
		return err
	}
	hub := s.requestHub()
	// a retry of a request already seen (same request ID) has its wait, or
	// its answer, in the session already
	se.mu.Lock()
	_, retry := se.res.byID[m.ReqID]
	se.mu.Unlock()
	var e *reqEntry
	if !retry || m.ReqID == 0 {
		e = &reqEntry{id: m.ID, until: s.names[m.Until], se: se}
		if err := hub.register(e); err != nil {
			return err
		}
	}
	se.mu.Lock()
	se.appliedLocked(m.Applied)
	se.mu.Unlock()
	mm := msgMutate{Type: mutAdd, ReqID: m.ReqID, Ack: m.Ack, States: []int{m.State}, Args: m.Args}
	err = s.mutate(ctx, c, se, &mm, resp, true)
	if e == nil {
		return err
	}
	switch {
	case ctx.Err() != nil && c.Context().Err() == nil:
		// the caller gave up: its Add may have run, or may still run to
		// the end (the source's Mutate returns when ctx ends)
		s.giveUp(se, e)
	case err != nil || resp.result == am.Canceled:
		// it did not run, or failed: no answer is coming
		hub.release(e)
	}
	return err
}

// handleUnrequest releases the requests whose callers gave up, and reports
// the answers their clients received anyway.
func (s *Server) handleUnrequest(_ context.Context, c *rpc2.Conn, m *msgUnrequest, _ *Empty) error {
	se, err := sessionOf(c)
	if err != nil {
		return err
	}
	hub := s.hubIfAny()
	if hub == nil {
		return nil
	}
	for _, id := range m.ids {
		switch {
		case hub.abandonID(id, se):
		default:
			if e := se.takeAnswer(id); e != nil {
				// answered, its answer not sent yet: it reaches no one
				s.giveUp(se, e)
				continue
			}
			// answered and sent (the client will report the answer it
			// dropped), or never run: recognise it from now on
			hub.entombID(id, se)
		}
	}
	for i := range m.dropped {
		a := &m.dropped[i]
		if !hub.claimDropped(a.id, se) {
			// not a request this session gave up, or reported already
			continue
		}
		if a.err == nil {
			s.reportLost(a.id, a.args)
		}
	}
	return nil
}

// giveUp abandons e, whose caller gave up. An answer it already had is
// withdrawn if not sent yet, and reported: it reached no one.
func (s *Server) giveUp(se *session, e *reqEntry) {
	hub := s.hubIfAny()
	if hub == nil {
		return
	}
	if args, lost := hub.abandon(e); lost {
		se.takeAnswer(e.id)
		s.reportLost(e.id, args)
	}
}

// reportLost tells the application about an answer that reached no one.
func (s *Server) reportLost(id string, args am.A) {
	if fn := s.opts.lateAnswer; fn != nil {
		fn(id, maps.Clone(args))
	}
}

// requestsEnded abandons the requests of a session that ended: their
// callers are gone, and so are the answers not sent yet.
func (s *Server) requestsEnded(se *session) {
	hub := s.hubIfAny()
	if hub == nil {
		return
	}
	hub.abandonSession(se)
	se.mu.Lock()
	unsent := se.answers
	se.answers = nil
	se.mu.Unlock()
	for _, a := range unsent {
		if a.e == nil {
			continue
		}
		if args, lost := hub.abandon(a.e); lost {
			s.reportLost(a.e.id, args)
		}
	}
}

// Abandoned tells whether id is the correlation ID of a request whose
// caller gave up before getting its answer (its ctx ended, or its session
// ended), for the abandoned-request lifespan (WithAbandonedTTL). An
// answerer checks it to recognise a late answer, for example to compensate
// work whose result no one will receive. Safe to call concurrently.
func (s *Server) Abandoned(id string) bool {
	hub := s.hubIfAny()
	return hub != nil && hub.isAbandoned(id)
}

// PendingRequests returns how many requests of all sessions wait for their
// answers on the server now.
func (s *Server) PendingRequests() int {
	hub := s.hubIfAny()
	if hub == nil {
		return 0
	}
	return hub.pending()
}

// addAnswer queues the outcome of a request of this session for the next
// update, and schedules a push (while a mutation of the session is in
// flight, its reply carries it instead). args is encoded at once.
func (se *session) addAnswer(e *reqEntry, args am.A) {
	var w wireAnswer
	if e.err != nil {
		w = errAnswer(e.id, e.err)
	} else {
		w = newAnswer(e.id, args)
	}
	w.e = e
	se.mu.Lock()
	se.answers = append(se.answers, w)
	// while a mutation is in flight, the update that ends it carries the
	// answer
	busy := se.inflight > 0
	se.mu.Unlock()
	if !busy {
		se.signal()
	}
}

// takeAnswer withdraws the unsent answer of request id, if there is one.
func (se *session) takeAnswer(id string) *reqEntry {
	se.mu.Lock()
	defer se.mu.Unlock()
	i := slices.IndexFunc(se.answers, func(a wireAnswer) bool { return a.id == id })
	if i < 0 {
		return nil
	}
	e := se.answers[i].e
	se.answers = slices.Delete(se.answers, i, i+1)
	return e
}

// takeAnswersLocked moves the unsent answers into the update of version,
// and keeps them until the client has applied that version (a full resync
// does not replay updates). Needs se.mu.
func (se *session) takeAnswersLocked(version uint64) []wireAnswer {
	a := se.answers
	se.answers = nil
	for i := range a {
		a[i].version = version
	}
	se.sent = append(se.sent, a...)
	return a
}

// unappliedLocked returns the answers sent in updates after version. Needs
// se.mu.
func (se *session) unappliedLocked(version uint64) []wireAnswer {
	i := slices.IndexFunc(se.sent, func(a wireAnswer) bool { return a.version > version })
	if i < 0 {
		return nil
	}
	return slices.Clone(se.sent[i:])
}

// appliedLocked forgets the answers the client has applied (it applied
// every update up to version). Needs se.mu.
func (se *session) appliedLocked(version uint64) {
	i := slices.IndexFunc(se.sent, func(a wireAnswer) bool { return a.version > version })
	if i < 0 {
		se.sent = nil
		return
	}
	se.sent = slices.Delete(se.sent, 0, i)
}
