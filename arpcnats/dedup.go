package arpcnats

import (
	"strconv"
	"strings"
)

// dedupTable keeps the outcomes of recent mutations by request id, so a
// retry gets the first attempt's outcome instead of running again. It is
// persisted with the state, so a new leader answers retries of mutations
// its predecessor ran.
//
// A request id is "<client>.<seq>", and every request carries the lowest
// seq its client still waits for (lo): the client will never retry below
// it, so the table drops that client's older entries. It then holds about
// the calls in flight, not the history, which keeps every state write
// small. Entries of clients that went away are evicted oldest first past
// max. Guarded by Server.mu.
type dedupTable struct {
	max     int
	n       int
	clients map[string]map[uint64]dedupEntry
	// order lists entries by arrival for eviction (stale refs are skipped)
	order []dedupRef
}

type dedupRef struct {
	client string
	seq    uint64
}

func newDedup(max int) *dedupTable {
	return &dedupTable{max: max, clients: map[string]map[uint64]dedupEntry{}}
}

// splitID parses "<client>.<seq>" (ok); other ids are a client of their
// own, with seq 0, that no lo prunes.
func splitID(id string) (client string, seq uint64, ok bool) {
	if i := strings.LastIndexByte(id, '.'); i > 0 {
		if seq, err := strconv.ParseUint(id[i+1:], 36, 64); err == nil {
			return id[:i], seq, true
		}
	}
	return id, 0, false
}

func (d *dedupTable) get(id string) (dedupEntry, bool) {
	c, seq, _ := splitID(id)
	e, ok := d.clients[c][seq]
	return e, ok
}

// prune drops the entries of id's client below lo. An id without a seq
// carries no lo that could apply to it: its entry stays until evicted by
// size, so that its retry still finds it.
func (d *dedupTable) prune(id string, lo uint64) {
	c, _, ok := splitID(id)
	if !ok {
		return
	}
	es := d.clients[c]
	for seq := range es {
		if seq < lo {
			delete(es, seq)
			d.n--
		}
	}
	if len(es) == 0 {
		delete(d.clients, c)
	}
}

func (d *dedupTable) put(e dedupEntry) {
	c, seq, _ := splitID(e.ID)
	es := d.clients[c]
	if es == nil {
		es = map[uint64]dedupEntry{}
		d.clients[c] = es
	}
	if _, ok := es[seq]; ok {
		return
	}
	es[seq] = e
	d.n++
	d.order = append(d.order, dedupRef{c, seq})
	for d.n > d.max && len(d.order) > 0 {
		r := d.order[0]
		d.order = d.order[1:]
		if es := d.clients[r.client]; es != nil {
			if _, ok := es[r.seq]; ok {
				delete(es, r.seq)
				d.n--
				if len(es) == 0 {
					delete(d.clients, r.client)
				}
			}
		}
	}
	if len(d.order) > 2*d.max+64 {
		// drop the refs of pruned entries
		live := d.order[:0]
		for _, r := range d.order {
			if _, ok := d.clients[r.client][r.seq]; ok {
				live = append(live, r)
			}
		}
		d.order = append([]dedupRef(nil), live...)
	}
}

// evictOldest forgets the k oldest entries.
func (d *dedupTable) evictOldest(k int) {
	for k > 0 && len(d.order) > 0 {
		r := d.order[0]
		d.order = d.order[1:]
		es := d.clients[r.client]
		if _, ok := es[r.seq]; !ok {
			continue
		}
		delete(es, r.seq)
		d.n--
		k--
		if len(es) == 0 {
			delete(d.clients, r.client)
		}
	}
}

// list returns the entries, oldest first.
func (d *dedupTable) list() []dedupEntry {
	out := make([]dedupEntry, 0, d.n)
	for _, r := range d.order {
		if e, ok := d.clients[r.client][r.seq]; ok {
			out = append(out, e)
		}
	}
	return out
}

// load replaces the table with entries, oldest first.
func (d *dedupTable) load(entries []dedupEntry) {
	d.n, d.clients, d.order = 0, map[string]map[uint64]dedupEntry{}, nil
	for _, e := range entries {
		d.put(e)
	}
}
