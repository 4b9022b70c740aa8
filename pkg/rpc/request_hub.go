package rpc

import (
	"errors"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	am "github.com/arpc-go/arpc/pkg/machine"
)

// reqHub hands answers to the requests waiting on one machine. It is a
// tracer of that machine: at the end of every accepted transition that
// enters a state with a correlation ID among its mutation's arguments, it
// looks the ID up and, if a request waits for that state, hands it the
// arguments. A request is registered before its Add is made, so an answer
// given inside the Add's own handlers is never missed; a transition costs
// one atomic load while nothing waits.
//
// A server keeps one hub for its source (it also keeps tombstones of
// abandoned requests, to recognise late answers); local requests share one
// hub per machine, bound while something waits.
type reqHub struct {
	*am.NoOpTracer
	mach *am.Machine
	// n counts entries, waiting or tombstones.
	n atomic.Int64

	mu    sync.Mutex
	byID  map[string]*reqEntry
	bound bool
	// local hubs are unbound and forgotten when nothing waits
	local bool

	// server hubs: requests waiting per session, tombstones, late answers
	waiting  map[*session]int
	max      int
	tombs    []*reqEntry // oldest first
	ttl      time.Duration
	maxTombs int
	late     func(id string, args am.A)
}

// reqEntry is one request waiting for its answer, or (tomb) the tombstone
// of one whose caller gave up. Fields are guarded by the hub's mutex.
type reqEntry struct {
	id    string
	until string
	// se is the session to answer (server); nil for a local waiter,
	// whose ch is closed once args or err is set.
	se   *session
	ch   chan struct{}
	args am.A
	err  error
	done bool

	// reported: its answer reached no one and was reported
	reported bool

	tomb     bool
	expires  time.Time
	lateSeen bool
}

var errDupID = errors.New("correlation ID in use")

// TransitionEnd hands an answer to the request it correlates with.
func (h *reqHub) TransitionEnd(tr *am.Transition) {
	if h.n.Load() == 0 || !tr.Accepted || len(tr.Enters) == 0 || tr.Mutation == nil {
		return
	}
	id, _ := tr.Mutation.Args[CorrelationKey].(string)
	if id == "" {
		return
	}
	h.mu.Lock()
	e := h.byID[id]
	// a tombstone made from an ID alone knows no until state: any state
	// entered with its ID is an answer
	if e == nil || (e.until != "" && !slices.Contains(tr.Enters, e.until)) {
		h.mu.Unlock()
		return
	}
	if e.tomb {
		late := h.late
		report := late != nil && !e.lateSeen && time.Now().Before(e.expires)
		e.lateSeen = true
		h.mu.Unlock()
		if report {
			late(id, maps.Clone(tr.Mutation.Args))
		}
		return
	}
	h.removeLocked(e)
	e.done = true
	if e.se != nil {
		// encoded at once; kept only to report the answer if it is lost
		e.args = tr.Mutation.Args
	} else {
		// copied: the caller gets a map nobody else writes
		e.args = maps.Clone(tr.Mutation.Args)
	}
	h.deliverLocked(e)
	h.mu.Unlock()
}

// MachineDispose fails every waiting request: no answer can come.
func (h *reqHub) MachineDispose(string) {
	h.mu.Lock()
	for _, e := range h.byID {
		if !e.tomb {
			e.err, e.done = am.ErrDisposed, true
			h.deliverLocked(e)
		}
	}
	clear(h.byID)
	clear(h.waiting)
	h.tombs = nil
	h.n.Store(0)
	// the machine drops its tracers
	h.bound = false
	h.mu.Unlock()
	if h.local {
		forgetLocal(h)
	}
}

// TransientTransitions promises the engine that the hub keeps no
// *Transition.
func (h *reqHub) TransientTransitions() bool { return true }

// deliverLocked hands a settled entry to its waiter: a session queues the
// answer for its client in the same critical section, so whoever gives up
// the request next finds it either waiting or among the unsent answers.
// Needs h.mu.
func (h *reqHub) deliverLocked(e *reqEntry) {
	if e.se != nil {
		e.se.addAnswer(e, e.args)
		return
	}
	close(e.ch)
}

// register adds a waiting entry, binding the hub to its machine first.
func (h *reqHub) register(e *reqEntry) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.byID == nil {
		h.byID = map[string]*reqEntry{}
		h.waiting = map[*session]int{}
	}
	h.pruneLocked(time.Now())
	if h.byID[e.id] != nil {
		return codeErr(CodeInvalidParams, "%v: %q", errDupID, e.id)
	}
	if e.se != nil && h.max > 0 && h.waiting[e.se] >= h.max {
		return codeErr(CodeTooManyRequests, "more than %d requests in flight in this session: not run", h.max)
	}
	if !h.bound {
		if err := h.mach.BindTracer(h); err != nil {
			return err
		}
		h.bound = true
	}
	h.byID[e.id] = e
	h.n.Add(1)
	if e.se != nil {
		h.waiting[e.se]++
	}
	return nil
}

// removeLocked drops an entry from the index. Needs h.mu.
func (h *reqHub) removeLocked(e *reqEntry) {
	delete(h.byID, e.id)
	h.n.Add(-1)
	if e.se != nil && !e.tomb {
		if h.waiting[e.se]--; h.waiting[e.se] <= 0 {
			delete(h.waiting, e.se)
		}
	}
}

// release drops e if it still waits (no answer is coming) and tells
// whether it did.
func (h *reqHub) release(e *reqEntry) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if e.tomb || e.done || h.byID[e.id] != e {
		return false
	}
	h.removeLocked(e)
	e.done = true
	return true
}

// settled returns e's answer if it was handed one, and marks it done
// otherwise (a late answer is then ignored).
func (h *reqHub) settled(e *reqEntry) (am.A, error, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if e.done {
		return e.args, e.err, true
	}
	if h.byID[e.id] == e {
		h.removeLocked(e)
	}
	e.done = true
	return nil, nil, false
}

// abandon turns a waiting entry into a tombstone: its caller gave up, so a
// late answer is recognised for the hub's TTL. If e had been answered
// already, its answer reached no one: abandon returns it, once per entry
// (true), so that it is reported exactly once.
func (h *reqHub) abandon(e *reqEntry) (am.A, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if e.tomb {
		return nil, false
	}
	if !e.done {
		if h.byID[e.id] == e {
			h.removeLocked(e)
		}
		e.done = true
		h.entombLocked(e)
		return nil, false
	}
	if e.err != nil || e.reported || e.args == nil {
		return nil, false
	}
	e.reported = true
	if h.byID != nil && h.byID[e.id] == nil {
		// keep the ID recognisable; its answer is reported already
		h.entombLocked(&reqEntry{id: e.id, until: e.until, se: e.se, lateSeen: true})
	}
	return e.args, true
}

// abandonID abandons the waiting request id of session se; it tells
// whether there was one.
func (h *reqHub) abandonID(id string, se *session) bool {
	h.mu.Lock()
	e := h.byID[id]
	ok := e != nil && e.se == se && !e.tomb && !e.done
	h.mu.Unlock()
	if !ok {
		return false
	}
	_, _ = h.abandon(e)
	return true
}

// entombID keeps id, of a request of se that is not waiting, recognisable
// as abandoned: its answer, if one was sent, is reported by its client
// (claimDropped), a later one by TransitionEnd.
func (h *reqHub) entombID(id string, se *session) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.byID == nil || h.byID[id] != nil {
		return
	}
	h.entombLocked(&reqEntry{id: id, se: se})
}

// claimDropped tells whether an answer that the client of se dropped is to
// be reported: id is a tombstone of that session whose answer was not seen
// yet. It is then marked seen.
func (h *reqHub) claimDropped(id string, se *session) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	e := h.byID[id]
	if e == nil || !e.tomb || e.se != se || e.lateSeen || !time.Now().Before(e.expires) {
		return false
	}
	e.lateSeen = true
	return true
}

// entombLocked adds e as a tombstone. Needs h.mu.
func (h *reqHub) entombLocked(e *reqEntry) {
	now := time.Now()
	h.pruneLocked(now)
	if h.ttl <= 0 || h.maxTombs <= 0 {
		return
	}
	e.tomb = true
	e.expires = now.Add(h.ttl)
	h.byID[e.id] = e
	h.n.Add(1)
	h.tombs = append(h.tombs, e)
	if len(h.tombs) > h.maxTombs {
		h.dropTombLocked()
	}
}

// pruneLocked drops expired tombstones. Needs h.mu.
func (h *reqHub) pruneLocked(now time.Time) {
	for len(h.tombs) > 0 && !now.Before(h.tombs[0].expires) {
		h.dropTombLocked()
	}
}

func (h *reqHub) dropTombLocked() {
	t := h.tombs[0]
	h.tombs[0] = nil
	h.tombs = h.tombs[1:]
	if h.byID[t.id] == t {
		delete(h.byID, t.id)
		h.n.Add(-1)
	}
	if len(h.tombs) == 0 {
		h.tombs = nil
	}
}

// abandonSession abandons every request of a session that ended.
func (h *reqHub) abandonSession(se *session) {
	h.mu.Lock()
	var gone []*reqEntry
	for _, e := range h.byID {
		if e.se == se && !e.tomb && !e.done {
			gone = append(gone, e)
		}
	}
	h.mu.Unlock()
	for _, e := range gone {
		_, _ = h.abandon(e)
	}
}

// isAbandoned tells whether id is the tombstone of a request whose caller
// gave up, within the TTL.
func (h *reqHub) isAbandoned(id string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	e := h.byID[id]
	return e != nil && e.tomb && time.Now().Before(e.expires)
}

// pending counts the requests waiting for an answer.
func (h *reqHub) pending() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, e := range h.byID {
		if !e.tomb {
			n++
		}
	}
	return n
}

// detach unbinds the hub from its machine.
func (h *reqHub) detach() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.bound {
		_ = h.mach.DetachTracer(h)
		h.bound = false
	}
}

// localHubs are the hubs of local machines with requests waiting.
var localHubs = struct {
	sync.Mutex
	m map[*am.Machine]*reqHub
}{m: map[*am.Machine]*reqHub{}}

// registerLocal registers a local request on m's hub.
func registerLocal(m *am.Machine, e *reqEntry) (*reqHub, error) {
	localHubs.Lock()
	defer localHubs.Unlock()
	h := localHubs.m[m]
	if h == nil {
		h = &reqHub{NoOpTracer: &am.NoOpTracer{}, mach: m, local: true}
		localHubs.m[m] = h
	}
	if err := h.register(e); err != nil {
		if h.n.Load() == 0 {
			delete(localHubs.m, m)
		}
		return nil, err
	}
	return h, nil
}

// releaseLocal drops a local request, and the hub once nothing waits.
func (h *reqHub) releaseLocal(e *reqEntry) {
	localHubs.Lock()
	defer localHubs.Unlock()
	h.release(e)
	if h.n.Load() == 0 && localHubs.m[h.mach] == h {
		h.detach()
		delete(localHubs.m, h.mach)
	}
}

// forgetLocal drops the hub of a disposed machine.
func forgetLocal(h *reqHub) {
	localHubs.Lock()
	defer localHubs.Unlock()
	if localHubs.m[h.mach] == h {
		delete(localHubs.m, h.mach)
	}
}
