package arpcnats

// dedupTable keeps the outcomes of the last n mutations by request id, in
// arrival order, so a retry gets the first attempt's outcome. It is
// persisted with the state, so a new leader answers retries of mutations
// its predecessor ran. Guarded by Server.mu.
type dedupTable struct {
	max   int
	byID  map[string]int // index into ring
	ring  []dedupEntry
	start int
}

func newDedup(max int) *dedupTable {
	return &dedupTable{max: max, byID: map[string]int{}}
}

func (d *dedupTable) get(id string) (dedupEntry, bool) {
	i, ok := d.byID[id]
	if !ok {
		return dedupEntry{}, false
	}
	return d.ring[i], true
}

func (d *dedupTable) put(e dedupEntry) {
	if _, ok := d.byID[e.ID]; ok {
		return
	}
	if len(d.ring) < d.max {
		d.byID[e.ID] = len(d.ring)
		d.ring = append(d.ring, e)
		return
	}
	old := d.ring[d.start]
	delete(d.byID, old.ID)
	d.ring[d.start] = e
	d.byID[e.ID] = d.start
	d.start = (d.start + 1) % d.max
}

// list returns the entries, oldest first.
func (d *dedupTable) list() []dedupEntry {
	out := make([]dedupEntry, 0, len(d.ring))
	out = append(out, d.ring[d.start:]...)
	return append(out, d.ring[:d.start]...)
}

// load replaces the table with entries, oldest first.
func (d *dedupTable) load(entries []dedupEntry) {
	d.byID, d.ring, d.start = map[string]int{}, nil, 0
	for _, e := range entries {
		d.put(e)
	}
}
