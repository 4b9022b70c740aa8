package rpc2

import (
	"fmt"
	"io"
	"sync/atomic"
	"time"
)

// Keepalive (PROTOCOL.md, "Keepalive"): an end that has read nothing for
// the keepalive interval sends a ping; the peer answers with a pong from its
// read loop. Any bytes read prove the peer alive; an end that has read
// nothing for twice the interval ends the connection with ErrKeepalive.

// DefaultKeepalive is the default keepalive interval.
const DefaultKeepalive = 10 * time.Second

// countReader counts the transport reads that returned bytes, so that the
// timers see whether the peer is alive without a clock read per
// frame.
type countReader struct {
	r io.Reader
	n *atomic.Uint64
}

func (r countReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if n > 0 {
		r.n.Add(1)
	}
	return n, err
}

// keepalive is the keepalive state, owned by the timers (one tick at a time).
type keepalive struct {
	c        *Conn
	reads    uint64    // c.reads at the last change
	lastRead time.Time // when the timer saw the last change
	pinged   bool      // a ping was sent since lastRead
	pings    uint64    // opaque value of the last ping
}

func newKeepalive(c *Conn) *keepalive {
	return &keepalive{c: c, reads: c.reads.Load(), lastRead: time.Now()}
}

// tick checks the peer's silence: it pings after one interval, and ends the
// connection after two (then it returns false).
func (k *keepalive) tick() bool {
	now := time.Now()
	if r := k.c.reads.Load(); r != k.reads {
		k.reads, k.lastRead, k.pinged = r, now, false
		return true
	}
	silent := now.Sub(k.lastRead)
	interval := k.c.cfg.keepalive
	switch {
	case silent >= 2*interval:
		k.c.fail(lostError(fmt.Errorf("%w for %s (keepalive %s)", ErrKeepalive, silent.Round(time.Millisecond), interval)))
		return false
	case silent >= interval && !k.pinged:
		k.pings++
		k.pinged = true
		k.c.sendControl(kindPing, k.pings, true)
	}
	return true
}
