package arpcnats

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

	am "github.com/arpc-go/arpc/pkg/machine"
	"github.com/nats-io/nats.go"
)

// onMutation runs one mutation request. NATS calls it from the
// subscription's goroutine, one at a time, which is also the order in
// which the source runs them. A request id seen before gets the first
// attempt's outcome and runs nothing.
func (s *Server) onMutation(t *term, msg *nats.Msg) {
	if msg.Reply == "" && msg.Subject != subjMutNS(s.id) {
		return // a publish on the request subject: nobody would learn the outcome
	}
	if !t.gate.enter() {
		_ = msg.Respond(errResp(codeNotLeader, "server stopping"))
		return
	}
	defer t.gate.exit()
	if len(msg.Data) > s.opts.maxRequest {
		_ = msg.Respond(errResp(codeInvalid, fmt.Sprintf("request of %d bytes over %d", len(msg.Data), s.opts.maxRequest)))
		return
	}
	var req mutReq
	dec := json.NewDecoder(bytes.NewReader(msg.Data))
	dec.UseNumber()
	if err := dec.Decode(&req); err != nil {
		_ = msg.Respond(errResp(codeInvalid, "malformed request: "+err.Error()))
		return
	}
	if req.ID == "" || len(req.ID) > maxRequestID {
		_ = msg.Respond(errResp(codeInvalid, "missing or oversized request id"))
		return
	}
	typ := am.MutationType(req.Type)
	if typ < am.MutationAdd || typ > am.MutationSet || len(req.States) == 0 {
		_ = msg.Respond(errResp(codeInvalid, fmt.Sprintf("mutation type %d with %d states", req.Type, len(req.States))))
		return
	}
	s.mu.Lock()
	if req.Lo > 0 {
		s.dedup.prune(req.ID, req.Lo)
	}
	if e, ok := s.dedup.get(req.ID); ok {
		s.mu.Unlock()
		s.reply(msg, e)
		return
	}
	s.mu.Unlock()
	for _, st := range req.States {
		if s.source.Index(st) < 0 {
			// a client's bad input stays its own: the shared source gets no
			// Exception
			s.record(msg, dedupEntry{ID: req.ID, Result: int(am.Canceled), Code: codeUnknownState, Msg: clip(st, maxOutcomeMsg)})
			return
		}
	}
	args := am.A(req.Args)
	for k, v := range args {
		args[k] = plainNumber(v)
	}
	var (
		res am.Result
		err error
	)
	switch {
	case req.HasErr:
		res = s.source.AddErrState(req.States[0], errors.New(req.Err), args)
	case len(req.Cond) > 0:
		res, err = s.source.MutateIf(t.ctx, am.Clock(req.Cond), typ, req.States, args)
	default:
		res, err = s.source.Mutate(t.ctx, typ, req.States, args)
	}
	if testHookMutated != nil {
		testHookMutated(s)
	}
	e := dedupEntry{ID: req.ID, Result: int(res), Code: codeOf(err)}
	if err != nil {
		e.Msg = clip(err.Error(), maxOutcomeMsg)
	}
	s.record(msg, e)
}

// testHookMutated, when set (by tests, before Serve), runs between a
// mutation and the recording of its outcome.
var testHookMutated func(*Server)

// plainNumber turns a JSON number into an int64 when it is one, else a
// float64, so args compare as the sender's ints did.
func plainNumber(v any) any {
	n, ok := v.(json.Number)
	if !ok {
		return v
	}
	if i, err := n.Int64(); err == nil {
		return int(i)
	}
	f, _ := n.Float64()
	return f
}

// record keeps the outcome for retries, at the version that contains it,
// and replies. The outcome is part of the stored state, so it makes a new
// version: a state write may already have taken the mutation's effect
// without it, and a reply held for that older version would acknowledge a
// mutation whose retry the next leader could not recognise.
func (s *Server) record(msg *nats.Msg, e dedupEntry) {
	s.mu.Lock()
	s.dirty = true
	e.Version = s.cutLocked()
	s.dedup.put(e)
	s.mu.Unlock()
	s.signal()
	s.reply(msg, e)
}

// reply answers a mutation: at once with the current state, or, with
// WithAckPersisted, once the state of e's version is persisted.
func (s *Server) reply(msg *nats.Msg, e dedupEntry) {
	if msg.Reply == "" {
		return // AddNS: nobody waits
	}
	if s.opts.ackPersisted {
		s.mu.Lock()
		if e.Version > s.persisted {
			s.pending = append(s.pending, pendingReply{msg: msg, entry: e})
			s.mu.Unlock()
			s.signal()
			return
		}
		upd := s.lastPersisted
		s.mu.Unlock()
		_ = msg.Respond(replyBytes(e, upd))
		return
	}
	et := s.errText()
	s.mu.Lock()
	u := s.snapshotLocked(et)
	s.mu.Unlock()
	_ = msg.Respond(replyBytes(e, appendUpdate(nil, u)))
}

// onGet answers a snapshot request with the current state (the last
// persisted one with WithAckPersisted).
func (s *Server) onGet(t *term, msg *nats.Msg) {
	if msg.Reply == "" || !t.gate.enter() {
		return
	}
	defer t.gate.exit()
	var b []byte
	if s.opts.ackPersisted {
		s.mu.Lock()
		b = s.lastPersisted
		s.mu.Unlock()
	} else {
		et := s.errText()
		s.mu.Lock()
		b = appendUpdate(nil, s.snapshotLocked(et))
		s.mu.Unlock()
	}
	_ = msg.Respond(b)
}
