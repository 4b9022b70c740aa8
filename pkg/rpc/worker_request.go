package rpc

import (
	"context"
	"errors"
	"fmt"
	"sync"

	am "github.com/arpc-go/arpc/pkg/machine"
	"github.com/arpc-go/arpc/pkg/rpc2"
)

// Request adds state on the remote machine with args plus a fresh
// correlation ID, and returns the args of the first activation of until
// that carries the same ID: the server side reads the ID with
// CorrelationID and answers by adding until with Correlated(id, ...), from
// state's handler or from any goroutine later.
//
// It takes one round trip when the answer is given while the Add is
// processed (in a handler): the server watches for the answer before it
// runs the Add, and the answer travels on the session's ordered update
// stream right before the Add's reply, with the clock that shows it. An
// answer given later arrives on the same stream. Either way, when Request
// returns the answer, the mirror already shows the transition that gave it.
//
// When ctx ends first, Request returns ctx.Err() at once and tells the
// server, which releases its wait (an Add not yet started is dropped, as
// with Mutate) and keeps the ID as abandoned for a while, so that a late
// answer is recognised (Server.Abandoned, WithLateAnswer). Other errors, as
// for Mutate: am.ErrStateUnknown for an unknown state or until (nothing is
// sent), ErrTooManyRequests when the client or its session has too many
// requests in flight (WithClientMaxRequests, WithMaxRequests; nothing ran),
// am.ErrCanceled when a handler vetoed the Add, ErrStopped, ErrNotReady,
// ErrNetwork, am.ErrDisposed. A session lost while waiting (the server
// restarted) fails the request with ErrNetwork, since no answer can come.
//
// Each request must activate state, and its answer must activate until:
// use Multi states, or states that are inactive in between. Safe to call
// concurrently; each request gets its own answer.
func (w *Worker) Request(ctx context.Context, state string, args am.A, until string) (am.A, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	if w.disposed.Load() {
		return nil, am.ErrDisposed
	}
	si, ui := w.Index(state), w.Index(until)
	for _, bad := range []struct {
		i    int
		name string
	}{{si, state}, {ui, until}} {
		if bad.i < 0 {
			return nil, fmt.Errorf("%w: %s", am.ErrStateUnknown, bad.name)
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	id := newCorrelationID()
	cr, err := w.reqs.add(id, w.c.opts.maxRequests)
	if err != nil {
		return nil, err
	}
	msg := &msgRequest{ID: id, State: si, Until: ui, Args: args}
	resp, err := w.roundTrip(ctx, func(reqID, ack uint64) (any, rpc2.Method) {
		msg.ReqID, msg.Ack, msg.Applied = reqID, ack, w.appliedVersion()
		return msg, mRequest
	})
	if err == nil {
		err = outcomeErr(resp.code, resp.errMsg)
		if err == nil && resp.result == am.Canceled {
			err = fmt.Errorf("%w: %s", am.ErrCanceled, state)
		}
		if err != nil {
			// the Add failed on the server, which released the request
			w.reqs.remove(id, cr)
			return nil, err
		}
	} else {
		// the server may hold the request (unless nothing was sent, or it
		// refused it): release it there
		tell := !errors.Is(err, ErrNotReady) && !errors.Is(err, ErrTooManyRequests) &&
			!errors.Is(err, ErrInvalidParams)
		if !w.reqs.abandon(id, cr, tell) {
			// answered before the call failed: the answer reached us
			return cr.args, cr.err
		}
		if tell {
			w.c.requestUnwatch()
		}
		return nil, err
	}
	w.reqs.mu.Lock()
	cr.replied = true
	w.reqs.mu.Unlock()
	select {
	case <-cr.ch:
		return cr.args, cr.err
	case <-ctx.Done():
	case <-w.ctx.Done():
	}
	if !w.reqs.abandon(id, cr, true) {
		// settled meanwhile: an answer that arrived wins
		return cr.args, cr.err
	}
	w.c.requestUnwatch()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return nil, am.ErrDisposed
}

// IsDisposed tells whether the Worker is disposed (am.Disposer), so that
// am.Wait can tell a wait released by disposal from one that held.
func (w *Worker) IsDisposed() bool { return w.disposed.Load() }

// workerRequests are a Worker's requests waiting for their answers, and
// what the server has not been told yet: the IDs of requests given up, and
// the answers that arrived for them anyway.
type workerRequests struct {
	mu sync.Mutex
	// session is the server's session of the last connection
	session string
	byID    map[string]*clientReq
	unsent  []string
	dropped []wireAnswer
}

// clientReq is one request waiting; ch is closed once args or err is set.
type clientReq struct {
	ch   chan struct{}
	args am.A
	err  error
	// replied: its Add's reply arrived, only the answer is awaited (guarded
	// by workerRequests.mu)
	replied bool
}

// add registers a request, or refuses it beyond max in flight.
func (r *workerRequests) add(id string, max int) (*clientReq, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.byID) >= max {
		return nil, fmt.Errorf("%w: %d requests in flight (WithClientMaxRequests)", ErrTooManyRequests, len(r.byID))
	}
	if r.byID == nil {
		r.byID = map[string]*clientReq{}
	}
	cr := &clientReq{ch: make(chan struct{})}
	r.byID[id] = cr
	return cr, nil
}

// remove drops a request that still waits and tells whether it did; false
// means it was settled (cr.ch is closed).
func (r *workerRequests) remove(id string, cr *clientReq) bool {
	return r.abandon(id, cr, false)
}

// abandon drops a request that still waits, and with tell queues its ID for
// the server in the same step, so that an answer dropped from now on is
// reported after it. It tells whether the request still waited.
func (r *workerRequests) abandon(id string, cr *clientReq, tell bool) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.byID[id] != cr {
		return false
	}
	delete(r.byID, id)
	if tell {
		r.unsent = append(r.unsent, id)
	}
	return true
}

// settle hands a waiting request its outcome. An answer to a request given
// up is kept for the server (dropped) and settle returns false.
func (r *workerRequests) settle(a *wireAnswer) bool {
	r.mu.Lock()
	cr := r.byID[a.id]
	if cr == nil {
		// bounded: a server that sends answers nobody asked for can't
		// make the client keep them
		if len(r.dropped) < maxDropped {
			r.dropped = append(r.dropped, *a)
		}
		r.mu.Unlock()
		return false
	}
	delete(r.byID, a.id)
	r.mu.Unlock()
	cr.args, cr.err = a.args, a.err
	close(cr.ch)
	return true
}

// failAll settles every waiting request with err.
func (r *workerRequests) failAll(err error) {
	r.mu.Lock()
	all := r.byID
	r.byID = nil
	r.unsent, r.dropped = nil, nil
	r.mu.Unlock()
	for _, cr := range all {
		cr.err = err
		close(cr.ch)
	}
}

// deliverAnswers hands the answers of an update to their requests. The
// update was applied first, so the mirror shows what answered them.
func (w *Worker) deliverAnswers(answers []wireAnswer) {
	dropped := false
	for i := range answers {
		if !w.reqs.settle(&answers[i]) {
			dropped = true
		}
	}
	if dropped {
		w.c.requestUnwatch()
	}
}

// requestsConnected settles what a connection to session means for the
// requests: in the same session as before they keep waiting (their answers
// come with the missed updates, replayed or resent with a full resync) and
// given-up IDs are sent once the link is live; in a new session the server
// lost them, so they fail.
func (w *Worker) requestsConnected(session string) {
	w.reqs.mu.Lock()
	lost := w.reqs.session != "" && w.reqs.session != session
	w.reqs.session = session
	w.reqs.mu.Unlock()
	if lost {
		w.reqs.failAll(fmt.Errorf("%w: the server lost the session, so the request can't be answered", ErrNetwork))
	}
}

// requestsDisconnected fails the waiting requests when the client won't
// reconnect.
func (w *Worker) requestsDisconnected() {
	if !w.c.opts.reconnect {
		w.reqs.failAll(fmt.Errorf("%w: disconnected, so the request can't be answered", ErrNetwork))
	}
}

// unrequestBatch caps the IDs, and the dropped answers, of one Unrequest
// message.
const unrequestBatch = 1024

// maxDropped caps the dropped answers a client keeps for the server.
const maxDropped = 4 * unrequestBatch

// sendUnrequests tells the server, from the housekeeping loop, about the
// requests given up and the answers dropped. What can't be sent now (no
// connection) is kept for the resumed session.
func (c *Client) sendUnrequests() {
	r := &c.Worker.reqs
	r.mu.Lock()
	ids, dropped := r.unsent, r.dropped
	r.unsent, r.dropped = nil, nil
	r.mu.Unlock()
	for len(ids) > 0 || len(dropped) > 0 {
		ni, nd := min(len(ids), unrequestBatch), min(len(dropped), unrequestBatch)
		for i := range dropped[:nd] {
			if dropped[i].body == nil {
				dropped[i].reencode()
			}
		}
		if err := c.notify(mUnrequest, &msgUnrequest{ids: ids[:ni], dropped: dropped[:nd]}); err != nil {
			r.mu.Lock()
			r.unsent = append(ids, r.unsent...)
			r.dropped = append(dropped, r.dropped...)
			r.mu.Unlock()
			return
		}
		ids, dropped = ids[ni:], dropped[nd:]
	}
}
