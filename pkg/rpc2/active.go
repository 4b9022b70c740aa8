package rpc2

import (
	"fmt"
	"sync"
	"sync/atomic"
)

// activeTable holds the contexts of the requests a connection has read and
// not finished, by seq, so that a cancel frame finds its request and the end
// of the connection cancels them all. The read loop adds, the workers remove.
//
// The common case takes no lock: a request goes into the slot seq&mask of a
// fixed table (a peer numbers its requests from a counter, so the requests in
// flight mostly fall into distinct slots); a request whose slot is taken
// goes into an overflow map under a mutex.
type activeTable struct {
	slots  []atomic.Pointer[handlerCtx]
	mask   uint64
	closed atomic.Bool // the connection has ended: contexts start canceled

	mu       sync.Mutex
	overflow map[uint64]*handlerCtx
	nover    atomic.Int32 // len(overflow), read without mu
}

// initActiveSlots is the table's size: requests beyond it in flight at once
// use the overflow map, so that an idle connection does not hold a table
// for its whole window.
const initActiveSlots = 32

func (t *activeTable) init(window int) {
	n := 1
	for n < window && n < initActiveSlots {
		n <<= 1
	}
	t.slots = make([]atomic.Pointer[handlerCtx], n)
	t.mask = uint64(n - 1)
}

// trackRequest registers the context of request seq. On a connection that
// has ended the context is canceled at once. A seq that is already in flight
// is a protocol violation.
func (c *Conn) trackRequest(seq uint64, h *handlerCtx) error {
	t := &c.active
	h.seq, h.tracked = seq, true
	if t.lookup(seq) != nil {
		h.cancel()
		return fmt.Errorf("%w: request seq %d is already in flight", ErrProtocol, seq)
	}
	if !t.slots[seq&t.mask].CompareAndSwap(nil, h) {
		t.mu.Lock()
		if t.overflow == nil {
			t.overflow = make(map[uint64]*handlerCtx)
		}
		t.overflow[seq] = h
		t.nover.Add(1)
		t.mu.Unlock()
	}
	// cancelActive sets closed before it looks at the table: either it
	// sees h, or this sees closed.
	if t.closed.Load() && !h.detached {
		h.cancel()
	}
	return nil
}

// untrackRequest removes the context of a finished request and cancels it:
// a request's context ends when its handler returns.
func (c *Conn) untrackRequest(h *handlerCtx) {
	t := &c.active
	if !t.slots[h.seq&t.mask].CompareAndSwap(h, nil) {
		t.mu.Lock()
		if t.overflow[h.seq] == h {
			delete(t.overflow, h.seq)
			t.nover.Add(-1)
		}
		t.mu.Unlock()
	}
	h.cancel()
}

// lookup returns the context of request seq, or nil. Read loop only (it is
// the only one that adds, so what it finds stays valid until it returns).
func (t *activeTable) lookup(seq uint64) *handlerCtx {
	if h := t.slots[seq&t.mask].Load(); h != nil && h.seq == seq {
		return h
	}
	if t.nover.Load() == 0 {
		return nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.overflow[seq]
}

// handleCancel cancels request seq if it is still queued or running;
// unknown and finished seqs are ignored.
func (c *Conn) handleCancel(seq uint64) {
	if h := c.active.lookup(seq); h != nil {
		h.cancel()
	}
}

// cancelActive cancels every tracked context (the connection has ended) and
// makes later ones start canceled.
func (c *Conn) cancelActive() {
	t := &c.active
	t.closed.Store(true)
	for i := range t.slots {
		if h := t.slots[i].Load(); h != nil && !h.detached {
			h.cancel()
		}
	}
	t.mu.Lock()
	over := t.overflow
	t.overflow = nil
	t.nover.Store(0)
	t.mu.Unlock()
	for _, h := range over {
		if !h.detached {
			h.cancel()
		}
	}
}
