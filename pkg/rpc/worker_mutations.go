package rpc

import (
	"context"
	"errors"
	"fmt"
	"strings"

	am "github.com/arpc-go/arpc/pkg/machine"
	"github.com/arpc-go/arpc/pkg/rpc2"
)

// Add activates the states on the remote machine and returns the result of
// its transition once the mirror reflects it. A transport failure returns
// Canceled and sets Err.
func (w *Worker) Add(states am.S, args am.A) am.Result {
	return w.mutate(mutAdd, states, args, nil)
}

// Add1 is Add for one state.
func (w *Worker) Add1(state string, args am.A) am.Result {
	return w.mutate(mutAdd, am.S{state}, args, nil)
}

// Remove deactivates the states on the remote machine.
func (w *Worker) Remove(states am.S, args am.A) am.Result {
	return w.mutate(mutRemove, states, args, nil)
}

// Remove1 is Remove for one state.
func (w *Worker) Remove1(state string, args am.A) am.Result {
	return w.mutate(mutRemove, am.S{state}, args, nil)
}

// Set makes exactly the states active on the remote machine (relations
// permitting).
func (w *Worker) Set(states am.S, args am.A) am.Result {
	return w.mutate(mutSet, states, args, nil)
}

// AddErr adds Exception on the remote machine with err, whose message reaches
// the remote machine's Err() as a *RemoteError.
func (w *Worker) AddErr(err error, args am.A) am.Result {
	return w.AddErrState(am.Exception, err, args)
}

// AddErrState adds state and Exception on the remote machine with err.
func (w *Worker) AddErrState(state string, err error, args am.A) am.Result {
	if err == nil {
		err = errors.New("nil error")
	}
	w.setErr(err)
	return w.mutate(mutAddErr, am.S{state}, args, err)
}

// AddNS sends an Add without waiting for its result ("no sync"): it returns
// Queued once the request is written, and the change reaches the mirror with
// the server's next push (or call Sync).
func (w *Worker) AddNS(states am.S, args am.A) am.Result {
	msg, method, ok := w.mutation(mutAdd, states, args, nil, true)
	if !ok {
		return am.Canceled
	}
	if err := w.c.notify(method, msg); err != nil {
		w.setErr(err)
		return am.Canceled
	}
	return am.Queued
}

// Add1NS is AddNS for one state.
func (w *Worker) Add1NS(state string, args am.A) am.Result {
	return w.AddNS(am.S{state}, args)
}

// Log logs msg on the remote machine's logger, prefixed with the client ID.
// It doesn't wait for the server.
func (w *Worker) Log(msg string, args ...any) {
	text := fmt.Sprintf(msg, args...)
	if err := w.c.notify(mLog, &wireString{s: strings.ReplaceAll(text, "\n", " ")}); err != nil {
		w.setErr(err)
	}
}

// mutation builds a mutation message; ok is false (and Err set) for unknown
// states.
func (w *Worker) mutation(typ byte, states am.S, args am.A, err error, ns bool) (any, rpc2.Method, bool) {
	idxs := make([]int, len(states))
	for i, s := range states {
		idxs[i] = w.idx(s)
		if idxs[i] < 0 {
			w.unknownState(s)
			return nil, 0, false
		}
	}
	if w.disposed.Load() {
		return nil, 0, false
	}
	reqID := w.c.reqID.Add(1)
	if binaryArgs(args) {
		m := &msgMutate{Type: typ, ReqID: reqID, States: idxs, Args: args, Err: err}
		if ns {
			return m, mMutateNS, true
		}
		return m, mMutate, true
	}
	m := &MsgMutateGob{Type: typ, ReqID: reqID, States: idxs, Args: args}
	if err != nil {
		m.HasErr, m.ErrMsg = true, err.Error()
	}
	if ns {
		return m, mMutateNSGob, true
	}
	return m, mMutateGob, true
}

// mutate sends a mutation, retrying timeouts with the same request ID, and
// applies the reply's clock diff.
func (w *Worker) mutate(typ byte, states am.S, args am.A, err error) am.Result {
	msg, method, ok := w.mutation(typ, states, args, err, false)
	if !ok {
		return am.Canceled
	}
	var resp respResult
	var cerr error
	// timedOut: an attempt's reply, and the clock diff it carried, was lost
	timedOut := false
	for try := 0; try <= w.c.opts.retries; try++ {
		// the connection bounds the call; a ctx that never ends is the
		// fast path (see Client.call)
		cerr = w.c.call(context.Background(), method, msg, &resp)
		if cerr == nil || !errors.Is(cerr, ErrNetworkTimeout) {
			break
		}
		timedOut = true
	}
	if cerr != nil {
		if timedOut {
			w.markGap()
		}
		w.setErr(cerr)
		return am.Canceled
	}
	if resp.result == 0 {
		w.setErr(fmt.Errorf("%w: mutation result 0", ErrInvalidResp))
		return am.Canceled
	}
	if err := w.applyReply(&resp.upd); err != nil {
		w.setErr(err)
	} else if timedOut {
		// the retry's reply has no diff: the first attempt's carried it
		_ = w.Resync(w.ctx)
	}
	if resp.errMsg != "" {
		w.setErr(&RemoteError{Msg: resp.errMsg})
	}
	return resp.result
}

// argsWatch is a remote WhenArgs, resolved by the server's push.
type argsWatch struct {
	ch    chan struct{}
	stop  func() bool
	local bool
	done  bool
}

func (a *argsWatch) close() {
	if a.done {
		return
	}
	a.done = true
	close(a.ch)
	if a.stop != nil {
		a.stop()
	}
}

// WhenArgs returns a channel closed once state is activated (its final
// handler runs on the remote machine) with arguments that include args (==
// compared). The server watches for it; the channel closes after the mirror
// reflects that transition, or when ctx ends or the Worker is disposed. If
// the server can't be asked, the channel stays open until ctx ends and Err
// tells why.
func (w *Worker) WhenArgs(state string, args am.A, ctx context.Context) <-chan struct{} {
	if w.disposed.Load() {
		return closedCh
	}
	i := w.idx(state)
	if i < 0 {
		w.setErr(fmt.Errorf("%w: %s", am.ErrStateUnknown, state))
		return w.never(ctx)
	}
	w.mu.Lock()
	w.watchSeq++
	id := w.watchSeq
	aw := &argsWatch{ch: make(chan struct{})}
	w.watches[id] = aw
	w.mu.Unlock()

	if ctx == nil {
		ctx = w.ctx
	}
	err := w.c.call(ctx, mWatchArgs, &MsgWatchArgs{ID: id, State: i, Args: args}, &Empty{})
	w.mu.Lock()
	defer w.mu.Unlock()
	if err != nil {
		w.err = err
	}
	if aw.done {
		return aw.ch
	}
	aw.stop = context.AfterFunc(ctx, func() {
		w.mu.Lock()
		if w.watches[id] == aw {
			delete(w.watches, id)
			aw.close()
			if err == nil {
				w.unwatches = append(w.unwatches, id)
				w.c.requestUnwatch()
			}
		}
		w.mu.Unlock()
	})
	return aw.ch
}

// unknownState handles a mutation naming a state the machine doesn't have, as
// the engine does: nothing of it is sent, Exception is added on the remote
// machine with the error, and Err() wraps am.ErrStateUnknown.
func (w *Worker) unknownState(state string) {
	err := fmt.Errorf("%w: %s", am.ErrStateUnknown, state)
	if !w.disposed.Load() {
		w.mutate(mutAddErr, am.S{am.Exception}, nil, err)
	}
	w.setErr(err)
}
