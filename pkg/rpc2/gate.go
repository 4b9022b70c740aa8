package rpc2

import (
	"context"
	"errors"
	"fmt"
	"io"
)

// A gated connection (WithGate) admits each request and notification by
// method before reading its body, and decodes no codec body until Ungate.

// Ungate opens the connection's gate (see WithGate): from now on requests
// and notifications are handled without asking the gate function, and codec
// bodies are decoded. A handler that lets the peer in (for example, an
// authentication handshake) calls it before it returns, so that the peer's
// next messages, sent after it reads the reply, are admitted. Safe for
// concurrent use; calling it again, or on a connection without a gate, does
// nothing.
func (c *Conn) Ungate() { c.gated.Store(false) }

// Gated reports whether the connection's gate is still closed.
func (c *Conn) Gated() bool { return c.gated.Load() }

// admit asks the gate about a request or notification, on the read loop. It
// returns the code and message to refuse it with, or 0.
func (c *Conn) admit(f frame) (Code, string) {
	if f.method > 0xffff {
		return CodeUnknownMethod, fmt.Sprintf("method %d", f.method)
	}
	if err := c.cfg.limits.gate(c, Method(f.method)); err != nil {
		var e *Error
		if errors.As(err, &e) {
			return e.Code, e.Message
		}
		return CodeRefused, err.Error()
	}
	if codecBody(f) {
		return CodeRefused, fmt.Sprintf("method %d: codec body before the connection was admitted", f.method)
	}
	return 0, ""
}

// codecBody reports whether f carries a body for the codec.
func codecBody(f frame) bool {
	return !f.raw && (len(f.body) > 0 || f.stream != nil)
}

// skipBody drops f's body unread. A codec body skipped leaves the codec's
// stream state unknown: the next codec body ends the connection.
func (c *Conn) skipBody(f frame) error {
	if f.stream != nil {
		if _, err := io.CopyN(io.Discard, f.stream, int64(f.stream.left)); err != nil {
			return err
		}
	}
	if codecBody(f) {
		c.codecSkipped = true
	}
	return nil
}

// Shutdown ends this connection gracefully, as Server.Shutdown does for each
// of its connections: requests already read finish and send their replies
// (new ones get CodeUnavailable), everything queued is written, the write
// side is half-closed where the transport can, and the connection ends when
// the peer closes in turn. If ctx ends first, it closes the connection at
// once and returns ctx's error. It returns once the connection has ended;
// like Close, it must not be called from one of the connection's handlers.
// The end error matches ErrClosed.
func (c *Conn) Shutdown(ctx context.Context) error {
	c.drain(fmt.Errorf("%w: shut down", ErrClosed))
	select {
	case <-c.done:
		return nil
	case <-ctx.Done():
	}
	c.abort(ErrClosed)
	<-c.done
	return ctx.Err()
}
