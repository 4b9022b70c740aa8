package arpcnats

import (
	"errors"
	"fmt"

	am "github.com/arpc-go/arpc/pkg/machine"
)

// Local conditions. Every error a call returns wraps one of these (or an
// am error), so errors.Is works on both sides of the wire.
var (
	// ErrNoServer: no server is serving the machine id (NATS answered with
	// no responders). Nothing ran.
	ErrNoServer = errors.New("arpcnats: no server for this machine")
	// ErrClosed: the Server or Mirror is closed.
	ErrClosed = errors.New("arpcnats: closed")
	// ErrNotLeader: the server that got the call is not (or no longer) the
	// leader. Nothing ran, or what ran was not persisted and is void: the
	// call is safe to retry with the same request id.
	ErrNotLeader = errors.New("arpcnats: not the leader")
	// ErrInvalidID: a machine or wait id is not a NATS subject token of
	// letters, digits, '-' and '_'.
	ErrInvalidID = errors.New("arpcnats: invalid id")
	// ErrArgs: the mutation's args can't travel as JSON.
	ErrArgs = errors.New("arpcnats: args not serialisable")
	// ErrInvalidRequest: a peer sent bytes that don't decode.
	ErrInvalidRequest = errors.New("arpcnats: invalid request")
	// ErrSchemaMismatch: the stored state names other states than the
	// source machine.
	ErrSchemaMismatch = errors.New("arpcnats: stored state doesn't match the schema")
	// ErrWaitUnknown: no durable wait has that id (PollWait).
	ErrWaitUnknown = errors.New("arpcnats: unknown wait")
	// ErrTooLarge: the machine's stored state would not fit in one NATS
	// message; Server.Err reports what was left out to make it fit.
	ErrTooLarge = errors.New("arpcnats: state too large")
	// ErrTransport: the NATS request failed (timeout, connection lost);
	// the mutation may or may not have run. A retry with the same request
	// id (WithRetry) runs it at most once.
	ErrTransport = errors.New("arpcnats: transport")
)

// outcome codes of a mutation reply
const (
	codeOK           = ""
	codeCanceled     = "canceled"
	codeTimeout      = "handler_timeout"
	codeQueueFull    = "queue_full"
	codeDisposed     = "disposed"
	codePrecondition = "precondition"
	codeUnknownState = "unknown_state"
	codeInvalid      = "invalid"
	codeNotLeader    = "not_leader"
	codeError        = "error"
)

// codeOf maps the source's error to a reply code.
func codeOf(err error) string {
	switch {
	case err == nil:
		return codeOK
	case errors.Is(err, am.ErrPrecondition):
		return codePrecondition
	case errors.Is(err, am.ErrStateUnknown):
		return codeUnknownState
	case errors.Is(err, am.ErrHandlerTimeout):
		return codeTimeout
	case errors.Is(err, am.ErrQueueFull):
		return codeQueueFull
	case errors.Is(err, am.ErrDisposed):
		return codeDisposed
	case errors.Is(err, am.ErrCanceled):
		return codeCanceled
	case errors.Is(err, am.ErrInvalidArgs):
		return codeInvalid
	}
	return codeError
}

// RemoteError is an error of the source machine that has no sentinel here
// (or the source's Err(), as a mirror shows it): its text, as it was.
type RemoteError struct{ Msg string }

func (e *RemoteError) Error() string { return e.Msg }

// errOf turns a reply code back into the call's error.
func errOf(code, msg string) error {
	switch code {
	case codeOK:
		return nil
	case codeCanceled:
		return fmt.Errorf("%w: %s", am.ErrCanceled, msg)
	case codeTimeout:
		return fmt.Errorf("%w: %s", am.ErrHandlerTimeout, msg)
	case codeQueueFull:
		return fmt.Errorf("%w: %s", am.ErrQueueFull, msg)
	case codeDisposed:
		return fmt.Errorf("%w: %s", am.ErrDisposed, msg)
	case codePrecondition:
		return fmt.Errorf("%w: %s", am.ErrPrecondition, msg)
	case codeUnknownState:
		return fmt.Errorf("%w: %s", am.ErrStateUnknown, msg)
	case codeInvalid:
		return fmt.Errorf("%w: %s", ErrInvalidRequest, msg)
	case codeNotLeader:
		return fmt.Errorf("%w: %s", ErrNotLeader, msg)
	}
	return &RemoteError{Msg: msg}
}
