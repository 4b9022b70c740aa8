package arpcnats

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	am "github.com/arpc-go/arpc/pkg/machine"
	"github.com/nats-io/nats.go"
)

// Mutate runs a mutation (Add, Remove or Set) on the leader and returns its
// result and this call's own error, like (*am.Machine).Mutate. It returns
// once the mirror reflects what the mutation caused (the reply carries the
// state). Args travel as JSON: args that don't marshal fail the call with
// ErrArgs, and numbers arrive as int when integral, else float64.
//
// Errors wrap, for errors.Is: am.ErrStateUnknown (nothing was sent),
// ErrArgs, ErrNoServer (no server: at once, nothing ran), ErrNotLeader,
// ErrTransport (the outcome is unknown), ErrClosed (the connection is
// closed), am.ErrDisposed (the mirror is), am.ErrCanceled (a handler
// vetoed it), am.ErrHandlerTimeout, am.ErrPrecondition (MutateIf), or
// ctx.Err(). Each call has its own request id; with WithRetry the calls
// that can be retried are sent again with it until ctx ends, and the
// leader runs it at most once. What an acknowledged (nil error) call
// guarantees depends on the server's WithAckPersisted. Safe to call
// concurrently.
func (m *Mirror) Mutate(ctx context.Context, typ am.MutationType, states am.S, args am.A) (am.Result, error) {
	return m.MutateIf(ctx, nil, typ, states, args)
}

// MutateIf is Mutate with a precondition on the source's clock, as
// (*am.Machine).MutateIf: the leader runs the mutation only if every state
// named in cond has the tick given there, atomically with it; otherwise
// it returns Canceled and an error wrapping am.ErrPrecondition.
func (m *Mirror) MutateIf(ctx context.Context, cond am.Clock, typ am.MutationType, states am.S, args am.A) (am.Result, error) {
	if typ < am.MutationAdd || typ > am.MutationSet {
		return am.Canceled, fmt.Errorf("%w: mutation type %d", am.ErrInvalidArgs, typ)
	}
	for n := range cond {
		if m.Index(n) < 0 {
			return am.Canceled, fmt.Errorf("%w: %s (in a precondition)", am.ErrStateUnknown, n)
		}
	}
	req := &mutReq{Type: int(typ), States: states, Args: args}
	if len(cond) > 0 {
		req.Cond = cond
	}
	return m.send(ctx, req)
}

// send validates, encodes and sends a mutation; see Mutate.
func (m *Mirror) send(ctx context.Context, req *mutReq) (am.Result, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	if m.disposed.Load() {
		return am.Canceled, am.ErrDisposed
	}
	if len(req.States) == 0 {
		return am.Canceled, fmt.Errorf("%w: no states", am.ErrInvalidArgs)
	}
	for _, s := range req.States {
		if m.Index(s) < 0 {
			return am.Canceled, fmt.Errorf("%w: %s", am.ErrStateUnknown, s)
		}
	}
	seq := m.begin()
	defer m.end(seq)
	req.ID = m.prefix + "." + strconv.FormatUint(seq, 36)
	req.Lo = m.lowest()
	body, err := json.Marshal(req)
	if err != nil {
		return am.Canceled, fmt.Errorf("%w: %v", ErrArgs, err)
	}
	backoff := 10 * time.Millisecond
	for {
		resp, err := m.attempt(ctx, body)
		if err == nil && resp.Code == codeNotLeader {
			err = errOf(resp.Code, resp.Msg)
		}
		if err == nil {
			if len(resp.Update) > 0 {
				if u, derr := decodeUpdate(resp.Update, m.n); derr == nil {
					m.apply(u)
				}
			}
			cerr := errOf(resp.Code, resp.Msg)
			if cerr == nil && am.Result(resp.Result) == am.Executed && req.Type != int(am.MutationRemove) {
				for _, s := range req.States {
					m.mw.MatchArgs(s, req.Args)
				}
			}
			return am.Result(resp.Result), cerr
		}
		if ctx.Err() != nil {
			return am.Canceled, fmt.Errorf("%w (%v)", ctx.Err(), err)
		}
		if !m.opts.retry || !(errors.Is(err, ErrNoServer) || errors.Is(err, ErrNotLeader) || errors.Is(err, ErrTransport)) {
			return am.Canceled, err
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return am.Canceled, fmt.Errorf("%w (%v)", ctx.Err(), err)
		case <-m.ctx.Done():
			t.Stop()
			return am.Canceled, am.ErrDisposed
		case <-t.C:
		}
		backoff = min(2*backoff, 250*time.Millisecond)
	}
}

// begin takes the next request seq and notes it in flight.
func (m *Mirror) begin() uint64 {
	m.flMu.Lock()
	defer m.flMu.Unlock()
	m.seq++
	if m.inflight == nil {
		m.inflight = map[uint64]struct{}{}
	}
	m.inflight[m.seq] = struct{}{}
	return m.seq
}

func (m *Mirror) end(seq uint64) {
	m.flMu.Lock()
	delete(m.inflight, seq)
	m.flMu.Unlock()
}

// lowest returns the lowest seq in flight: the server may forget the
// outcomes below it.
func (m *Mirror) lowest() uint64 {
	m.flMu.Lock()
	defer m.flMu.Unlock()
	lo := m.seq
	for s := range m.inflight {
		lo = min(lo, s)
	}
	return lo
}

// attempt sends one request.
func (m *Mirror) attempt(ctx context.Context, body []byte) (*mutResp, error) {
	actx, cancel := context.WithTimeout(ctx, m.opts.attempt)
	defer cancel()
	if m.opts.retry {
		// a new leader won't answer what was sent to the old one: send it
		// again at once rather than at the attempt's timeout
		stop := context.AfterFunc(m.leaderCtx(), cancel)
		defer stop()
	}
	msg, err := m.nc.RequestMsgWithContext(actx, &nats.Msg{Subject: subjMut(m.id), Data: body})
	switch {
	case err == nil:
	case errors.Is(err, nats.ErrNoResponders):
		return nil, fmt.Errorf("%w: %s", ErrNoServer, m.id)
	case ctx.Err() != nil:
		return nil, ctx.Err()
	case errors.Is(err, nats.ErrConnectionClosed):
		return nil, fmt.Errorf("%w: %v", ErrClosed, err)
	default:
		return nil, fmt.Errorf("%w: %v (the mutation may or may not have run)", ErrTransport, err)
	}
	resp, err := decodeReply(msg.Data)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrTransport, err)
	}
	return resp, nil
}

// legacy runs a mutation for the asyncmachine-compatible methods: bounded
// by WithCallTimeout, its error becomes the mirror's Err().
func (m *Mirror) legacy(req *mutReq) am.Result {
	ctx, cancel := context.WithTimeout(m.ctx, m.opts.callTimeout)
	defer cancel()
	res, err := m.send(ctx, req)
	if err != nil {
		m.setErr(err)
	}
	return res
}

// Add activates the states on the source and returns the result once the
// mirror reflects it. A failure returns Canceled and sets Err (Mutate
// returns the call's own error instead).
func (m *Mirror) Add(states am.S, args am.A) am.Result {
	return m.legacy(&mutReq{Type: int(am.MutationAdd), States: states, Args: args})
}

// Add1 is Add for one state.
func (m *Mirror) Add1(state string, args am.A) am.Result { return m.Add(am.S{state}, args) }

// Remove deactivates the states on the source.
func (m *Mirror) Remove(states am.S, args am.A) am.Result {
	return m.legacy(&mutReq{Type: int(am.MutationRemove), States: states, Args: args})
}

// Remove1 is Remove for one state.
func (m *Mirror) Remove1(state string, args am.A) am.Result { return m.Remove(am.S{state}, args) }

// Set makes exactly the states active on the source (relations permitting).
func (m *Mirror) Set(states am.S, args am.A) am.Result {
	return m.legacy(&mutReq{Type: int(am.MutationSet), States: states, Args: args})
}

// AddErr adds Exception on the source with err, whose text becomes the
// source's Err().
func (m *Mirror) AddErr(err error, args am.A) am.Result {
	return m.AddErrState(am.Exception, err, args)
}

// AddErrState adds state and Exception on the source with err.
func (m *Mirror) AddErrState(state string, err error, args am.A) am.Result {
	if err == nil {
		err = errors.New("nil error")
	}
	return m.legacy(&mutReq{Type: int(am.MutationAdd), States: am.S{state}, Args: args, HasErr: true, Err: err.Error()})
}

// AddNS sends an Add without waiting for its result ("no sync"): it
// returns Queued once the request is published, and the change reaches the
// mirror with the next update (or call Sync). It returns Canceled when the
// request could not be sent (unknown state, args not serialisable, closed
// connection). Nothing answers it, so nothing retries it.
func (m *Mirror) AddNS(states am.S, args am.A) am.Result {
	if m.disposed.Load() {
		return am.Canceled
	}
	for _, s := range states {
		if m.Index(s) < 0 {
			m.setErr(fmt.Errorf("%w: %s", am.ErrStateUnknown, s))
			return am.Canceled
		}
	}
	seq := m.begin()
	m.end(seq)
	body, err := json.Marshal(&mutReq{ID: m.prefix + "." + strconv.FormatUint(seq, 36), Lo: m.lowest(),
		Type: int(am.MutationAdd), States: states, Args: args})
	if err != nil {
		m.setErr(fmt.Errorf("%w: %v", ErrArgs, err))
		return am.Canceled
	}
	if err := m.nc.Publish(subjMutNS(m.id), body); err != nil {
		m.setErr(fmt.Errorf("%w: %v", ErrTransport, err))
		return am.Canceled
	}
	return am.Queued
}

// Add1NS is AddNS for one state.
func (m *Mirror) Add1NS(state string, args am.A) am.Result { return m.AddNS(am.S{state}, args) }

// WhenArgs returns a channel closed once state is activated with args
// that include args. A Mirror doesn't see other callers' args: it matches
// the mutations made through this Mirror.
func (m *Mirror) WhenArgs(state string, args am.A, ctx context.Context) <-chan struct{} {
	return m.model.WhenArgs(state, args, ctx)
}
