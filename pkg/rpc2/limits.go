package rpc2

import (
	"fmt"
	"time"
)

// limits are the options that protect a connection from its peer.
type limits struct {
	gate         GateFunc
	gateTimeout  time.Duration
	idleTimeout  time.Duration
	writeTimeout time.Duration
}

// GateFunc admits or refuses a request or notification that arrives on a
// gated connection (see WithGate), before anything of its body is decoded.
// It runs on the connection's read loop, so it must be cheap and must not
// block. It returns nil to admit the message, or the error to answer it
// with: an *Error keeps its Code, any other error is sent as CodeRefused.
type GateFunc func(c *Conn, m Method) error

// WithGate makes connections start gated: until Conn.Ungate is called, every
// request and notification the peer sends is first passed to fn with its
// method, and refused unless fn admits it; and no body is passed to the
// codec at all, so a peer that has not been let in (for example, not
// authenticated yet) can't make the connection decode anything but raw
// bodies of admitted methods. A refused request is answered with an error
// frame; a refused notification is dropped; in both cases the body is
// skipped unread. A codec body, even of an admitted method, is refused with
// CodeRefused: after that the codec's stream state is unknown, so the next
// codec body the peer sends ends the connection with ErrDesync. Replies to
// this end's calls are delivered; one with a codec body fails its call with
// ErrDecode. Ungate lifts the gate; a connection never returns to it. Works
// for Server connections and NewConn alike.
func WithGate(fn GateFunc) Option {
	return Option{func(c *config) error {
		if fn == nil {
			return fmt.Errorf("%w: WithGate(nil)", ErrInvalid)
		}
		c.limits.gate = fn
		return nil
	}}
}

// WithGateTimeout ends a gated connection (see WithGate) that is still gated
// d after it started, with an error wrapping ErrConnLost and ErrGateTimeout:
// a peer gets d to be let in, however slowly it sends. 0 (the default) means
// no limit.
func WithGateTimeout(d time.Duration) Option {
	return Option{func(c *config) error {
		if d < 0 {
			return fmt.Errorf("%w: WithGateTimeout(%s): negative", ErrInvalid, d)
		}
		c.limits.gateTimeout = d
		return nil
	}}
}

// WithIdleTimeout ends a connection from which no whole frame has arrived for
// d, with an error wrapping ErrConnLost and ErrIdle. Unlike the keepalive,
// which any byte satisfies, it catches a peer that trickles bytes without
// ever completing a frame. A healthy idle peer answers the keepalive's pings
// with whole frames, so d must exceed the keepalive interval (WithKeepalive)
// for such a peer to stay connected; with keepalive off, a peer that sends
// nothing for d is closed too. The connection's timers check every
// d/4, so the end comes between d and 1.25×d. 0 (the default) means no
// limit; d must be 0 or at least 1 ms.
func WithIdleTimeout(d time.Duration) Option {
	return Option{func(c *config) error {
		if d < 0 || (d > 0 && d < time.Millisecond) {
			return fmt.Errorf("%w: WithIdleTimeout(%s): want 0 (off) or at least 1ms", ErrInvalid, d)
		}
		c.limits.idleTimeout = d
		return nil
	}}
}

// WithWriteTimeout ends a connection whose peer does not read, with an error
// wrapping ErrConnLost and ErrSlowPeer, once either
//
//   - a write to the transport has been blocked for d: the peer's receive
//     window and the socket buffers are full (writes are at most 64 KiB, so
//     a peer that reads slowly but steadily is not affected), or
//   - a sender has waited d for flow-control credit: the peer has not
//     finished any of the requests and notifications of a whole window (see
//     WithRequestWindow), which a peer that reads nothing never does.
//
// Until then senders to that peer wait (for credit, or for room in the write
// buffer, which holds at most 1 MiB), each bounded by its context; no other
// connection is affected. Set it where the peer's handlers are quick (a
// server pushing to clients), not where they may legitimately hold a whole
// window for d. It is checked every d/4, so the end comes between d and
// 1.25×d. 0 (the default) means no limit; d must be 0 or at least 1 ms.
func WithWriteTimeout(d time.Duration) Option {
	return Option{func(c *config) error {
		if d < 0 || (d > 0 && d < time.Millisecond) {
			return fmt.Errorf("%w: WithWriteTimeout(%s): want 0 (off) or at least 1ms", ErrInvalid, d)
		}
		c.limits.writeTimeout = d
		return nil
	}}
}
