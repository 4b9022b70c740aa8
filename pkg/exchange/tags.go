package exchange

import (
	"sync"
	"time"
)

// Tag marks a correlation id whose request was left unanswered when its
// exchange ended. While the tag lives, a response for that id is recognised as
// late (Respond and Fail return ErrRolledBack) instead of unknown.
type Tag struct {
	// ID is the correlation id.
	ID string
	// Request is the value registered with the request, so that a late
	// response can be compensated.
	Request any
	// Expires is when the tag is dropped.
	Expires time.Time
	// Late reports whether a late response for the id has arrived.
	Late bool
}

// tagStore holds the rollback tags: a map for lookups and a FIFO of ids for
// expiry. Every tag has the same lifespan, so the FIFO is also in order of
// expiry, and expired tags are dropped from its head by whichever call touches
// the store next: no timer or goroutine per tag, and at most max tags.
type tagStore struct {
	lifespan time.Duration
	max      int

	mu      sync.Mutex
	m       map[string]*tagEntry
	q       []string // q[head:] are the live ids, oldest first
	head    int
	evicted uint64
}

type tagEntry struct {
	req     any
	expires time.Time
	late    bool
}

// sweepLocked drops the expired tags. t.mu is held.
func (t *tagStore) sweepLocked(now time.Time) {
	for t.head < len(t.q) {
		id := t.q[t.head]
		if now.Before(t.m[id].expires) {
			break
		}
		t.dropHeadLocked()
	}
}

// dropHeadLocked drops the oldest tag and releases the memory of an emptied
// store. t.mu is held.
func (t *tagStore) dropHeadLocked() {
	delete(t.m, t.q[t.head])
	t.q[t.head] = ""
	t.head++
	switch {
	case t.head == len(t.q):
		// empty: let go of the backing arrays a burst may have grown
		t.q, t.m, t.head = nil, nil, 0
	case t.head >= 1024 && 2*t.head >= len(t.q):
		n := copy(t.q, t.q[t.head:])
		clear(t.q[n:])
		t.q, t.head = t.q[:n], 0
	}
}

// add tags the unanswered calls. Called with the exchange's lock held.
func (t *tagStore) add(calls []Call) {
	now := time.Now()
	exp := now.Add(t.lifespan)
	t.mu.Lock()
	defer t.mu.Unlock()
	t.sweepLocked(now)
	if t.m == nil {
		t.m = make(map[string]*tagEntry)
	}
	for i := range calls {
		if calls[i].Outcome != Unanswered {
			continue
		}
		for len(t.m) >= t.max {
			t.dropHeadLocked()
			t.evicted++
		}
		if t.m == nil {
			t.m = make(map[string]*tagEntry)
		}
		t.m[calls[i].ID] = &tagEntry{req: calls[i].Request, expires: exp}
		t.q = append(t.q, calls[i].ID)
	}
}

// has reports whether id has a live tag.
func (t *tagStore) has(id string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.sweepLocked(time.Now())
	_, ok := t.m[id]
	return ok
}

// get returns the live tag of id.
func (t *tagStore) get(id string) (Tag, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.sweepLocked(time.Now())
	e, ok := t.m[id]
	if !ok {
		return Tag{}, false
	}
	return Tag{ID: id, Request: e.req, Expires: e.expires, Late: e.late}, true
}

// markLate records a late response for id. It reports whether id has a live
// tag and whether this is the first late response for it.
func (t *tagStore) markLate(id string) (tagged, first bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.sweepLocked(time.Now())
	e, ok := t.m[id]
	if !ok {
		return false, false
	}
	first = !e.late
	e.late = true
	return true, first
}

// stats returns the number of live tags and of tags evicted so far.
func (t *tagStore) stats() (live int, evicted uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.sweepLocked(time.Now())
	return len(t.m), t.evicted
}

// footprint returns the lengths of the map and of the FIFO's backing array,
// for tests that check memory is released.
func (t *tagStore) footprint() (entries, queued int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.m), cap(t.q)
}
