package arpcnats

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	am "github.com/arpc-go/arpc/pkg/machine"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// WaitCase is one condition of a durable wait, on the served machine.
type WaitCase struct {
	// Kind is "active" (every state in States is active), "inactive" (none
	// is) or "time" (the tick of each state in States reaches the value at
	// the same position in Times).
	Kind   string   `json:"kind"`
	States []string `json:"states"`
	Times  []uint64 `json:"times,omitempty"`
}

// OnActive is a WaitCase ready when all the states are active.
func OnActive(states ...string) WaitCase { return WaitCase{Kind: "active", States: states} }

// OnInactive is a WaitCase ready when none of the states is active.
func OnInactive(states ...string) WaitCase { return WaitCase{Kind: "inactive", States: states} }

// OnTime is a WaitCase ready when the ticks of states reach times.
func OnTime(states []string, times []uint64) WaitCase {
	return WaitCase{Kind: "time", States: states, Times: times}
}

// DurableWait is a wait registered on the server side and kept in
// JetStream (key <id>.wait.<ID> of the bucket): a select of its cases, as
// am.Select does it, run by whichever server leads. It survives restarts
// of the process that registered it and of the servers; once a case is
// ready its result is stored with it (kept until DeleteWait) and, if
// Reply is set, published there.
type DurableWait struct {
	// ID is chosen by the caller (letters, digits, '-', '_'); registering
	// the same ID again is a no-op.
	ID    string     `json:"id"`
	Cases []WaitCase `json:"cases"`
	// Reply is a subject to publish the WaitResult (JSON) to, or empty to
	// poll it (PollWait).
	Reply string `json:"reply,omitempty"`
	// Result is set by the server once a case was chosen.
	Result *WaitResult `json:"result,omitempty"`
}

// WaitResult is the outcome of a durable wait.
type WaitResult struct {
	ID string `json:"id"`
	// Index is the chosen case's position in Cases.
	Index int `json:"index"`
	// Clock holds the ticks of the case's states when it was chosen.
	Clock map[string]uint64 `json:"clock,omitempty"`
}

// waitRegResp answers a registration: an error (code and text, as a
// mutation's), or the wait's result if it has one.
type waitRegResp struct {
	Code   string      `json:"code,omitempty"`
	Error  string      `json:"error,omitempty"`
	Result *WaitResult `json:"result,omitempty"`
}

// waitSet runs the durable waits of one term, one goroutine each.
type waitSet struct {
	s       *Server
	t       *term
	mu      sync.Mutex
	running map[string]bool
}

func newWaitSet(s *Server, t *term) *waitSet {
	return &waitSet{s: s, t: t, running: map[string]bool{}}
}

// validate checks w's cases against the schema.
func (ws *waitSet) validate(w *DurableWait) error {
	if !validID(w.ID) {
		return fmt.Errorf("%w: wait id %q", ErrInvalidID, w.ID)
	}
	if w.Reply != "" && !validSubject(w.Reply) {
		return fmt.Errorf("%w: reply subject %q", ErrInvalidID, w.Reply)
	}
	if len(w.Cases) == 0 || len(w.Cases) > 64 {
		return fmt.Errorf("%w: %d cases", am.ErrInvalidArgs, len(w.Cases))
	}
	for _, c := range w.Cases {
		if len(c.States) == 0 {
			return fmt.Errorf("%w: a case without states", am.ErrInvalidArgs)
		}
		for _, st := range c.States {
			if ws.s.source.Index(st) < 0 {
				return fmt.Errorf("%w: %s", am.ErrStateUnknown, st)
			}
		}
		switch c.Kind {
		case "active", "inactive":
		case "time":
			if len(c.Times) != len(c.States) {
				return fmt.Errorf("%w: %d times for %d states", am.ErrInvalidArgs, len(c.Times), len(c.States))
			}
		default:
			return fmt.Errorf("%w: case kind %q", am.ErrInvalidArgs, c.Kind)
		}
	}
	return nil
}

// onRegister stores a new wait and starts resolving it.
func (ws *waitSet) onRegister(msg *nats.Msg) {
	s, t := ws.s, ws.t
	if msg.Reply == "" || !t.gate.enter() {
		return
	}
	defer t.gate.exit()
	respond := func(r waitRegResp) {
		b, _ := json.Marshal(r)
		_ = msg.Respond(b)
	}
	var w DurableWait
	if len(msg.Data) > s.opts.maxRequest || json.Unmarshal(msg.Data, &w) != nil {
		respond(waitRegResp{Code: codeInvalid, Error: "malformed wait"})
		return
	}
	w.Result = nil
	if err := ws.validate(&w); err != nil {
		respond(waitRegResp{Code: codeInvalid, Error: err.Error()})
		return
	}
	// claim a resolver before storing: a stored wait that no resolver
	// runs would never resolve
	claimed, running := ws.claim(w.ID)
	if !claimed && !running {
		respond(waitRegResp{Code: codeQueueFull, Error: fmt.Sprintf("%d durable waits pending", s.opts.maxWaits)})
		return
	}
	ctx, cancel := context.WithTimeout(t.ctx, s.opts.lease)
	defer cancel()
	b, _ := json.Marshal(&w)
	rev, err := s.kv.Create(ctx, keyWait(s.id, w.ID), b)
	if err == nil {
		respond(waitRegResp{})
		ws.launch(claimed, &w, rev)
		return
	}
	// stored before (a registration again), or not stored at all
	e, gerr := s.kv.Get(ctx, keyWait(s.id, w.ID))
	var old DurableWait
	switch {
	case gerr != nil:
		respond(waitRegResp{Code: codeError, Error: "storing the wait: " + err.Error()})
	case json.Unmarshal(e.Value(), &old) != nil:
		respond(waitRegResp{Code: codeError, Error: "stored wait is malformed"})
	case old.Result != nil:
		respond(waitRegResp{Result: old.Result})
	default:
		respond(waitRegResp{})
		ws.launch(claimed, &old, e.Revision())
		return
	}
	if claimed {
		ws.release(w.ID)
	}
}

// load starts the stored waits that have no result yet.
func (ws *waitSet) load(ctx context.Context) error {
	s := ws.s
	lister, err := s.kv.ListKeysFiltered(ctx, keyWaitFilter(s.id))
	if err != nil {
		return err
	}
	var keys []string
	for k := range lister.Keys() {
		keys = append(keys, k)
	}
	_ = lister.Stop()
	skipped := 0
	for _, k := range keys {
		e, err := s.kv.Get(ctx, k)
		if err != nil {
			continue
		}
		var w DurableWait
		if json.Unmarshal(e.Value(), &w) != nil || w.Result != nil || ws.validate(&w) != nil {
			continue
		}
		claimed, running := ws.claim(w.ID)
		if !claimed && !running {
			skipped++
			continue
		}
		ws.launch(claimed, &w, e.Revision())
	}
	if skipped > 0 {
		return fmt.Errorf("%w: %d stored durable waits over %d not resumed", am.ErrQueueFull, skipped, s.opts.maxWaits)
	}
	return nil
}

// claim reserves a resolver for the wait id: claimed when it got one,
// running when one already resolves that id; neither when the set is
// full.
func (ws *waitSet) claim(id string) (claimed, running bool) {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	switch {
	case ws.running[id]:
		return false, true
	case len(ws.running) >= ws.s.opts.maxWaits:
		return false, false
	}
	ws.running[id] = true
	return true, false
}

// launch runs w, until a case is ready or the term ends, if a resolver
// was claimed for it (otherwise one already runs it).
func (ws *waitSet) launch(claimed bool, w *DurableWait, rev uint64) {
	if !claimed {
		return
	}
	ws.t.wg.Add(1)
	go ws.resolve(w, rev)
}

// release gives back the resolver claimed for the wait id.
func (ws *waitSet) release(id string) {
	ws.mu.Lock()
	delete(ws.running, id)
	ws.mu.Unlock()
}

func (ws *waitSet) resolve(w *DurableWait, rev uint64) {
	s, t := ws.s, ws.t
	defer t.wg.Done()
	released := false
	defer func() {
		if !released {
			ws.release(w.ID)
		}
	}()
	cases := make([]am.SelectCase, len(w.Cases))
	for i, c := range w.Cases {
		switch c.Kind {
		case "active":
			cases[i] = am.OnActive(s.source, c.States...)
		case "inactive":
			cases[i] = am.OnInactive(s.source, c.States...)
		default:
			cases[i] = am.OnTime(s.source, c.States, c.Times)
		}
	}
	sel, err := am.Select(t.ctx, cases...)
	if err != nil {
		return
	}
	w.Result = &WaitResult{ID: w.ID, Index: sel.Index, Clock: sel.Clock}
	b, _ := json.Marshal(w)
	// store the result (a compare-and-set: a wait deleted meanwhile stays
	// deleted), retrying while JetStream is unavailable, then publish it
	for backoff := 20 * time.Millisecond; ; backoff = min(2*backoff, time.Second) {
		ctx, cancel := context.WithTimeout(t.ctx, s.opts.lease)
		_, err = s.kv.Update(ctx, keyWait(s.id, w.ID), b, rev)
		cancel()
		if err == nil {
			break
		}
		if errors.Is(err, jetstream.ErrKeyRevisionMismatch) || errors.Is(err, jetstream.ErrKeyExists) {
			return
		}
		s.logf(slog.LevelWarn, "arpcnats: storing a wait result", "wait", w.ID, "err", err)
		timer := time.NewTimer(backoff)
		select {
		case <-t.ctx.Done():
			timer.Stop()
			return
		case <-timer.C:
		}
	}
	// stored: the wait needs no resolver any more, so one is free for
	// whoever learns of the result
	ws.release(w.ID)
	released = true
	if w.Reply != "" {
		rb, _ := json.Marshal(w.Result)
		_ = s.nc.Publish(w.Reply, rb)
	}
}
