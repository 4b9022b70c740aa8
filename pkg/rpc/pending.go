package rpc

import "sync"

// pendingIDs hands out a client's request IDs and tracks which are still
// unsettled (their caller may send them again). The lowest unsettled ID is
// the acknowledgement sent with every mutation: the server may forget the
// results of every ID below it.
type pendingIDs struct {
	mu      sync.Mutex
	next    uint64
	order   []uint64        // unsettled IDs, ascending, with settled ones not yet popped
	settled map[uint64]bool // settled IDs still in order
}

// add returns a new ID and the acknowledgement to send with it.
func (p *pendingIDs) add() (id, ack uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.next++
	p.order = append(p.order, p.next)
	return p.next, p.order[0]
}

// ack returns the lowest unsettled ID (or the next one if none is).
func (p *pendingIDs) ack() uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.order) == 0 {
		return p.next + 1
	}
	return p.order[0]
}

// done settles id.
func (p *pendingIDs) done(id uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.order) > 0 && p.order[0] == id {
		p.order = p.order[1:]
	} else {
		if p.settled == nil {
			p.settled = map[uint64]bool{}
		}
		p.settled[id] = true
	}
	for len(p.order) > 0 && p.settled[p.order[0]] {
		delete(p.settled, p.order[0])
		p.order = p.order[1:]
	}
	if len(p.order) == 0 {
		p.order = nil
	}
}
