package rpc2

import (
	"context"
	"errors"
	"fmt"
	"strconv"
)

// Sentinel errors for local conditions. They are compared with errors.Is;
// most are returned wrapped with details (sizes, causes).
var (
	// ErrClosed reports that the connection (or server) was closed locally.
	ErrClosed = errors.New("rpc2: connection closed")
	// ErrConnLost reports that the connection ended for a reason other than a
	// local Close: the peer went away, the transport failed, or the peer sent
	// something that made the stream unusable. It wraps the cause.
	ErrConnLost = errors.New("rpc2: connection lost")
	// ErrKeepalive reports a peer that sent nothing (not even a pong) for
	// twice the keepalive interval (see WithKeepalive). The connection ends
	// with an error wrapping both ErrConnLost and ErrKeepalive.
	ErrKeepalive = errors.New("rpc2: peer silent")
	// ErrWouldBlock is returned where a send would have to wait for the peer
	// (for flow-control credit or for room in the write buffer) and must not:
	// by TryNotify, and by Queue called from an Inline handler (the read loop
	// that runs the handler is the one that would read the peer's answer).
	// Nothing is sent.
	ErrWouldBlock = errors.New("rpc2: would block")
	// ErrTooLarge reports a frame over the configured maximum message size,
	// outgoing (an error for that call) or incoming (the connection closes).
	ErrTooLarge = errors.New("rpc2: message too large")
	// ErrTimeout reports a call that got no reply within the connection's
	// WithCallTimeout. It is returned wrapped with context.DeadlineExceeded.
	ErrTimeout = errors.New("rpc2: call timeout")
	// ErrServerClosed is returned by Server.Serve and Server.ServeConn after
	// Shutdown or Close, and wrapped into the end error of the server's
	// connections.
	ErrServerClosed = errors.New("rpc2: server closed")
	// ErrEncode reports an argument or reply that could not be encoded.
	// Nothing is sent for such a call.
	ErrEncode = errors.New("rpc2: cannot encode")
	// ErrDecode reports an argument or reply that could not be decoded. For a
	// single bad body it fails that call only; if the codec's stream state is
	// lost (see ErrDesync) the connection closes with it.
	ErrDecode = errors.New("rpc2: cannot decode")
	// ErrDesync is returned (wrapped) by a Codec whose stream state is lost,
	// so that no further body can be decoded. The connection then closes.
	ErrDesync = errors.New("rpc2: codec stream out of sync")
	// ErrProtocol reports bytes from the peer that do not form valid frames.
	// The connection closes with it.
	ErrProtocol = errors.New("rpc2: protocol violation")
	// ErrGateTimeout reports a gated connection (see WithGate) that was not
	// ungated within WithGateTimeout. It is wrapped with ErrConnLost.
	ErrGateTimeout = errors.New("rpc2: not admitted in time")
	// ErrIdle reports a peer from which no whole frame arrived within
	// WithIdleTimeout. It is wrapped with ErrConnLost.
	ErrIdle = errors.New("rpc2: peer idle")
	// ErrSlowPeer reports a peer that stopped reading: a write to it was
	// blocked for WithWriteTimeout. It is wrapped with ErrConnLost.
	ErrSlowPeer = errors.New("rpc2: peer not reading")
	// ErrInvalid reports a bad argument to an rpc2 function: method 0, a
	// malformed handler, an invalid option, an unbuffered Done channel.
	ErrInvalid = errors.New("rpc2: invalid argument")
)

// Code classifies an Error. Codes 0-99 are reserved for rpc2; layers above
// may use larger codes for their own errors. Codes travel as uvarints.
type Code uint32

// Error codes defined by rpc2. The numbers are part of the wire protocol.
const (
	// CodeUnknown is an error of no particular class.
	CodeUnknown Code = 0
	// CodeApplication is a plain error returned by a handler.
	CodeApplication Code = 1
	// CodeUnknownMethod means the peer has no handler for the method.
	CodeUnknownMethod Code = 2
	// CodeBadRequest means the arguments did not decode into the handler's type.
	CodeBadRequest Code = 3
	// CodeInternal means the handler panicked or its reply could not be encoded.
	CodeInternal Code = 4
	// CodeCanceled means the handler returned context.Canceled.
	CodeCanceled Code = 5
	// CodeDeadlineExceeded means the handler returned context.DeadlineExceeded.
	CodeDeadlineExceeded Code = 6
	// CodeUnavailable means the peer is shutting down and takes no new requests.
	CodeUnavailable Code = 7
	// CodeTooLarge means the reply exceeded the peer's maximum message size.
	CodeTooLarge Code = 8
	// CodeRefused means the receiver's gate refused the request before
	// decoding it (see WithGate): for example, the peer is not
	// authenticated yet, or sent a codec body before it was let in.
	CodeRefused Code = 9
)

var codeNames = [...]string{
	CodeUnknown:          "unknown",
	CodeApplication:      "application error",
	CodeUnknownMethod:    "unknown method",
	CodeBadRequest:       "bad request",
	CodeInternal:         "internal error",
	CodeCanceled:         "canceled",
	CodeDeadlineExceeded: "deadline exceeded",
	CodeUnavailable:      "unavailable",
	CodeTooLarge:         "message too large",
	CodeRefused:          "refused",
}

// String returns a short lower-case name of the code, or "code N".
func (c Code) String() string {
	if int(c) < len(codeNames) {
		return codeNames[c]
	}
	return "code " + strconv.FormatUint(uint64(c), 10)
}

// Error is the one error type that crosses the wire: what a remote handler
// returned (or what the remote rpc2 layer reported about the request), with
// a Code and a Message. Use errors.As to get it from a Call's error.
// A handler that returns an *Error (possibly wrapped) keeps its Code; any
// other error reaches the caller as CodeApplication with err.Error() as the
// Message.
type Error struct {
	Code    Code
	Message string
}

// Error formats the error as "rpc2: <code name>: <message>".
func (e *Error) Error() string {
	if e.Message == "" {
		return "rpc2: " + e.Code.String()
	}
	return "rpc2: " + e.Code.String() + ": " + e.Message
}

// Is reports whether target is an *Error with the same Code and either the
// same Message or an empty one, so errors.Is(err, &Error{Code: CodeUnknownMethod})
// matches any unknown-method error.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	if !ok || t == nil {
		return false
	}
	return t.Code == e.Code && (t.Message == "" || t.Message == e.Message)
}

// Errorf returns an *Error with the given code and a formatted message. It is
// a convenience for handlers that want to return a specific code.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// toWireError converts a handler's error into the code and message sent.
func toWireError(err error) (Code, string) {
	var e *Error
	switch {
	case errors.As(err, &e):
		return e.Code, e.Message
	case errors.Is(err, context.Canceled):
		return CodeCanceled, err.Error()
	case errors.Is(err, context.DeadlineExceeded):
		return CodeDeadlineExceeded, err.Error()
	}
	return CodeApplication, err.Error()
}

// lostError builds the end error of a connection that ended for cause.
func lostError(cause error) error {
	if cause == nil {
		return ErrConnLost
	}
	return fmt.Errorf("%w: %w", ErrConnLost, cause)
}
