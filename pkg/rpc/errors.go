package rpc

import "errors"

// Sentinel errors of aRPC. Errors returned by this package wrap one of them, so
// errors.Is tells the kind of failure.
var (
	// ErrInvalidParams is a request the peer refused as malformed: an unknown
	// state index, a nil state list, an undecodable argument.
	ErrInvalidParams = errors.New("rpc: invalid params")
	// ErrInvalidResp is a reply that could not be understood.
	ErrInvalidResp = errors.New("rpc: invalid response")
	// ErrInvalidMsg is a binary message that could not be decoded.
	ErrInvalidMsg = errors.New("rpc: invalid message")
	// ErrRpc is a protocol failure.
	ErrRpc = errors.New("rpc: protocol error")
	// ErrSchemaMismatch is a handshake refused because the client's ordered
	// state names or schema differ from the server's machine.
	ErrSchemaMismatch = errors.New("rpc: schema mismatch")
	// ErrNetwork is a network failure: dial, read, write or a lost peer.
	ErrNetwork = errors.New("rpc: network error")
	// ErrNetworkTimeout is a call that did not complete within its timeout.
	ErrNetworkTimeout = errors.New("rpc: network timeout")
	// ErrNotReady is a remote call attempted before the handshake completed
	// or after the client stopped.
	ErrNotReady = errors.New("rpc: client not ready")
	// ErrNoGetter is a Get on a server that has no getter function.
	ErrNoGetter = errors.New("rpc: no getter")
	// ErrUnknownClient is a SendPayload to a client ID with no session.
	ErrUnknownClient = errors.New("rpc: unknown client")
	// ErrStopped is an operation on a stopped server or client. A mutation
	// that fails with it did not run.
	ErrStopped = errors.New("rpc: stopped")
	// ErrTooManyPending is a mutation refused because the client has too
	// many unsettled mutations on the server (see WithMaxPending); it did
	// not run.
	ErrTooManyPending = errors.New("rpc: too many pending mutations")
	// ErrNotRun is a retried mutation whose first attempt was canceled
	// before it ran; it did not run and may be sent again.
	ErrNotRun = errors.New("rpc: mutation not run")
)

// RemoteError is an error that crossed the wire: only its message survives.
// Errors given to Worker.AddErr reach the server's machine as a RemoteError,
// and the source machine's Err() reaches Worker.Err() as one.
type RemoteError struct {
	// Msg is the original error's message.
	Msg string
}

// Error implements error.
func (e *RemoteError) Error() string { return e.Msg }

// Is reports whether target is a RemoteError with the same message, so two
// transports of the same error compare equal with errors.Is.
func (e *RemoteError) Is(target error) bool {
	t, ok := target.(*RemoteError)
	return ok && t.Msg == e.Msg
}
