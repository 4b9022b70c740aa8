package rpc

import (
	"context"
	"errors"
	"fmt"
	"strings"

	am "github.com/arpc-go/arpc/pkg/machine"
	"github.com/arpc-go/arpc/pkg/rpc2"
)

// Mutate runs a mutation (Add, Remove or Set) on the remote machine and
// returns its result and this call's own error, like (*am.Machine).Mutate.
// It returns once the mirror reflects what the mutation caused.
//
// ctx bounds the whole call: when it ends first, Mutate returns Canceled and
// ctx.Err() within a few milliseconds, and the server is told, so a mutation
// that hasn't started there is dropped (one that already ran stays applied:
// the mirror shows its effect). Errors wrap, for errors.Is:
// am.ErrStateUnknown (nothing was sent), ErrNotReady (not connected: fails
// fast, nothing was sent), ErrStopped (the server is shutting down; the
// mutation did not run), ErrTooManyPending, am.ErrCanceled (a handler
// vetoed it), am.ErrHandlerTimeout, ErrNetwork (the connection failed; the
// outcome is unknown). With WithRetries, a call whose connection failed is
// sent again with the same request ID once the client has reconnected and
// resumed its session: the server runs it at most once and answers every
// attempt with that one outcome. Safe to call concurrently.
func (w *Worker) Mutate(ctx context.Context, typ am.MutationType, states am.S, args am.A) (am.Result, error) {
	if typ < am.MutationAdd || typ > am.MutationSet {
		return am.Canceled, fmt.Errorf("%w: mutation type %d", am.ErrInvalidArgs, typ)
	}
	return w.mutate(ctx, byte(typ), states, args, nil)
}

// legacy runs a mutation for the asyncmachine-compatible methods, which
// return only a Result: they are bounded by the client's call timeout, and
// their error (if any) also becomes this mirror's Err(), as on a local
// machine. Use Mutate for an error that belongs to the call alone.
func (w *Worker) legacy(typ byte, states am.S, args am.A, merr error) am.Result {
	res, err := w.mutate(context.Background(), typ, states, args, merr)
	if err != nil {
		w.setErr(err)
	}
	return res
}

// Add activates the states on the remote machine and returns the result of
// its transition once the mirror reflects it. The call is bounded by the
// client's call timeout (WithCallTimeout); a failure returns Canceled and
// sets Err (Mutate returns the error of the call instead). An unknown state
// fails the call locally: nothing is sent and the remote machine is not
// touched.
func (w *Worker) Add(states am.S, args am.A) am.Result {
	return w.legacy(mutAdd, states, args, nil)
}

// Add1 is Add for one state.
func (w *Worker) Add1(state string, args am.A) am.Result {
	return w.Add(am.S{state}, args)
}

// Remove deactivates the states on the remote machine.
func (w *Worker) Remove(states am.S, args am.A) am.Result {
	return w.legacy(mutRemove, states, args, nil)
}

// Remove1 is Remove for one state.
func (w *Worker) Remove1(state string, args am.A) am.Result {
	return w.Remove(am.S{state}, args)
}

// Set makes exactly the states active on the remote machine (relations
// permitting).
func (w *Worker) Set(states am.S, args am.A) am.Result {
	return w.legacy(mutSet, states, args, nil)
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
	return w.legacy(mutAddErr, am.S{state}, args, err)
}

// AddNS sends an Add without waiting for its result ("no sync"): it returns
// Queued once the request is written, and the change reaches the mirror with
// the server's next update (or call Sync). It returns Canceled when the
// request could not be sent.
func (w *Worker) AddNS(states am.S, args am.A) am.Result {
	idxs, err := w.stateIndexes(states)
	if err != nil {
		w.setErr(err)
		return am.Canceled
	}
	if w.disposed.Load() {
		return am.Canceled
	}
	reqID, ack := w.c.pend.add()
	// nothing waits for a notification's outcome: settle it at once
	w.c.pend.done(reqID)
	msg, method := mutationMsg(mutAdd, reqID, ack, idxs, args, nil, true)
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
	_ = w.c.notify(mLog, &wireString{s: strings.ReplaceAll(text, "\n", " ")})
}

// stateIndexes maps names to indexes; an unknown state is this call's error
// (nothing is sent, the remote machine is not touched).
func (w *Worker) stateIndexes(states am.S) ([]int, error) {
	idxs := make([]int, len(states))
	for i, s := range states {
		idxs[i] = w.Index(s)
		if idxs[i] < 0 {
			return nil, fmt.Errorf("%w: %s", am.ErrStateUnknown, s)
		}
	}
	return idxs, nil
}

// mutationMsg builds a mutation message in the binary form when every
// argument has one, otherwise in gob.
func mutationMsg(typ byte, reqID, ack uint64, idxs []int, args am.A, err error, ns bool) (any, rpc2.Method) {
	if binaryArgs(args) {
		m := &msgMutate{Type: typ, ReqID: reqID, Ack: ack, States: idxs, Args: args, Err: err}
		if ns {
			return m, mMutateNS
		}
		return m, mMutate
	}
	m := &MsgMutateGob{Type: typ, ReqID: reqID, Ack: ack, States: idxs, Args: args}
	if err != nil {
		m.HasErr, m.ErrMsg = true, err.Error()
	}
	if ns {
		return m, mMutateNSGob
	}
	return m, mMutateGob
}

// mutate sends one mutation and waits for its outcome; see Mutate.
func (w *Worker) mutate(ctx context.Context, typ byte, states am.S, args am.A, merr error) (am.Result, error) {
	if w.disposed.Load() {
		return am.Canceled, am.ErrDisposed
	}
	idxs, err := w.stateIndexes(states)
	if err != nil {
		return am.Canceled, err
	}
	resp, err := w.roundTrip(ctx, func(reqID, ack uint64) (any, rpc2.Method) {
		return mutationMsg(typ, reqID, ack, idxs, args, merr, false)
	})
	if err != nil {
		return am.Canceled, err
	}
	return resp.result, outcomeErr(resp.code, resp.errMsg)
}

// roundTrip sends a mutation-like call, built by msg for its request ID
// and acknowledgement, and returns its reply once the mirror has applied
// the update that precedes it. It retries as WithRetries allows; see Mutate.
func (w *Worker) roundTrip(ctx context.Context, msg func(reqID, ack uint64) (any, rpc2.Method)) (respResult, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	if err := ctx.Err(); err != nil {
		return respResult{result: am.Canceled}, err
	}
	reqID, ack := w.c.pend.add()
	defer w.c.pend.done(reqID)
	conn, link, err := w.c.liveLink()
	if err != nil {
		// not connected: nothing was sent
		return respResult{result: am.Canceled}, err
	}
	for try := 0; ; try++ {
		m, method := msg(reqID, ack)
		var resp respResult
		err = w.c.callOnLink(ctx, link, method, m, &resp)
		if err == nil {
			if resp.result == 0 {
				return respResult{result: am.Canceled}, fmt.Errorf("%w: mutation result 0", ErrInvalidResp)
			}
			w.waitVersion(ctx, resp.version, conn.Done())
			return resp, nil
		}
		if ctx.Err() != nil {
			return respResult{result: am.Canceled}, ctx.Err()
		}
		if try >= w.c.opts.retries || !(errors.Is(err, ErrNetwork) || errors.Is(err, ErrNetworkTimeout)) {
			return respResult{result: am.Canceled}, err
		}
		// Send again with the same ID, on this connection after a timeout,
		// or on the next one if it resumes this session: the server runs
		// it at most once. A new session (the server restarted) can't know
		// whether the first attempt ran, so don't guess.
		if link, err = w.c.awaitLink(ctx, link, errors.Is(err, ErrNetworkTimeout)); err != nil {
			return respResult{result: am.Canceled}, fmt.Errorf("%w (the mutation may or may not have run)", err)
		}
		conn = link.conn
		ack = w.c.pend.ack()
	}
}

// outcomeErr turns a reply's outcome code into this call's error.
func outcomeErr(code byte, msg string) error {
	switch code {
	case outOK:
		return nil
	case outCanceled:
		return fmt.Errorf("%w: %s", am.ErrCanceled, msg)
	case outHandlerTimeout:
		return fmt.Errorf("%w: %s", am.ErrHandlerTimeout, msg)
	case outQueueFull:
		return fmt.Errorf("%w: %s", am.ErrQueueFull, msg)
	case outDisposed:
		return fmt.Errorf("%w: %s", am.ErrDisposed, msg)
	case outInvalid:
		return fmt.Errorf("%w: %s", ErrInvalidParams, msg)
	case outPrecondition:
		return fmt.Errorf("%w: %s", am.ErrPrecondition, msg)
	}
	return &RemoteError{Msg: msg}
}
