package rpc

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	am "github.com/arpc-go/arpc/pkg/machine"
)

// Worker is the local mirror of a server's machine. Reads and waits (Is, Not,
// When, WhenTime, Time, Clock, NewStateCtx...) are answered locally from a
// mirrored clock, which the server keeps current with versioned diffs;
// mutations (Add, Remove, Set, AddErr...) are sent to the server and return its
// result once the mirror reflects them. Worker implements am.Api. Methods are
// safe for concurrent use.
type Worker struct {
	c      *Client
	names  am.S
	index  map[string]int
	schema am.Struct
	multi  []bool

	ctx        context.Context
	cancel     context.CancelFunc
	ready      atomic.Bool
	disposed   atomic.Bool
	disposeMu  sync.Mutex
	disposedCh chan struct{}

	mu      sync.RWMutex
	id      string
	time    am.Time
	offset  []uint64 // mirrored tick minus the source's (after a source restart)
	version uint64
	err     error
	// bindings of When*, WhenTime* and state contexts, by state index
	byState   [][]*binding
	verWait   []verWaiter
	watches   map[uint64]*argsWatch
	watchSeq  uint64
	unwatches []uint64
	// reqs are the requests waiting for their answers
	reqs workerRequests
}

var _ am.Api = (*Worker)(nil)

func newWorker(c *Client) *Worker {
	w := &Worker{
		c:          c,
		names:      c.names,
		index:      make(map[string]int, len(c.names)),
		schema:     cleanSchema(c.schema),
		multi:      make([]bool, len(c.names)),
		disposedCh: make(chan struct{}),
		time:       make(am.Time, len(c.names)),
		offset:     make([]uint64, len(c.names)),
		byState:    make([][]*binding, len(c.names)),
		watches:    map[uint64]*argsWatch{},
	}
	w.ctx, w.cancel = context.WithCancel(c.ctx)
	for i, n := range w.names {
		w.index[n] = i
		w.multi[i] = w.schema[n].Multi
	}
	return w
}

// cleanSchema returns the schema as the engine keeps it (relations to itself
// dropped, Remove without what Add names), so GetStruct and Inspect match the
// server's machine.
func cleanSchema(s am.Struct) am.Struct {
	m := am.New(context.Background(), s, nil)
	defer m.Dispose()
	return m.GetStruct()
}

// connected notes a completed handshake: the updates before its reply
// brought the mirror to r.Version.
func (w *Worker) connected(r *respHandshake) {
	w.mu.Lock()
	w.id = r.MachineID
	w.mu.Unlock()
	w.requestsConnected(r.Session)
	w.ready.Store(true)
}

// connLost marks the mirror as no longer connected: mutations fail fast with
// ErrNotReady, reads answer from the last known clock (possibly stale).
func (w *Worker) connLost() {
	w.ready.Store(false)
	w.mu.Lock()
	for _, v := range w.verWait {
		close(v.ch)
	}
	w.verWait = nil
	w.mu.Unlock()
	w.requestsDisconnected()
}

// appliedVersion returns the version of the last update applied.
func (w *Worker) appliedVersion() uint64 {
	w.mu.RLock()
	defer w.mu.RUnlock()
	return w.version
}

// ID returns the ID of the remote machine, known after the handshake.
func (w *Worker) ID() string {
	w.mu.RLock()
	defer w.mu.RUnlock()
	return w.id
}

// Ctx returns the Worker's context, canceled when it is disposed.
func (w *Worker) Ctx() context.Context { return w.ctx }

// idx returns the index of state, or -1.
func (w *Worker) idx(state string) int {
	if i, ok := w.index[state]; ok {
		return i
	}
	return -1
}

func (w *Worker) activeLocked(state string) bool {
	i, ok := w.index[state]
	return ok && w.time[i]%2 == 1
}

// Is tells whether all the states are active. An unknown state is inactive.
func (w *Worker) Is(states am.S) bool {
	w.mu.RLock()
	defer w.mu.RUnlock()
	for _, s := range states {
		if !w.activeLocked(s) {
			return false
		}
	}
	return true
}

// Is1 tells whether the state is active.
func (w *Worker) Is1(state string) bool {
	w.mu.RLock()
	defer w.mu.RUnlock()
	return w.activeLocked(state)
}

// Not tells whether none of the states is active.
func (w *Worker) Not(states am.S) bool {
	w.mu.RLock()
	defer w.mu.RUnlock()
	for _, s := range states {
		if w.activeLocked(s) {
			return false
		}
	}
	return true
}

// Not1 tells whether the state is inactive.
func (w *Worker) Not1(state string) bool { return !w.Is1(state) }

// Any tells whether some group of states is fully active.
func (w *Worker) Any(states ...am.S) bool {
	for _, s := range states {
		if w.Is(s) {
			return true
		}
	}
	return false
}

// Any1 tells whether some of the states is active.
func (w *Worker) Any1(states ...string) bool {
	w.mu.RLock()
	defer w.mu.RUnlock()
	for _, s := range states {
		if w.activeLocked(s) {
			return true
		}
	}
	return false
}

// IsErr tells whether Exception is active.
func (w *Worker) IsErr() bool { return w.Is1(am.Exception) }

// Has tells whether the machine has all the states.
func (w *Worker) Has(states am.S) bool {
	for _, s := range states {
		if w.idx(s) < 0 {
			return false
		}
	}
	return true
}

// Has1 tells whether the machine has the state.
func (w *Worker) Has1(state string) bool { return w.idx(state) >= 0 }

// Index returns the position of state in StateNames, or -1.
func (w *Worker) Index(state string) int { return w.idx(state) }

// Switch returns the first of the states that is active, or "".
func (w *Worker) Switch(states ...string) string {
	w.mu.RLock()
	defer w.mu.RUnlock()
	for _, s := range states {
		if w.activeLocked(s) {
			return s
		}
	}
	return ""
}

// StateNames returns a copy of the ordered state names.
func (w *Worker) StateNames() am.S { return slices.Clone(w.names) }

// ActiveStates returns the active states, in StateNames order.
func (w *Worker) ActiveStates() am.S {
	w.mu.RLock()
	defer w.mu.RUnlock()
	ret := am.S{}
	for i, n := range w.names {
		if w.time[i]%2 == 1 {
			ret = append(ret, n)
		}
	}
	return ret
}

// Tick returns the tick of state; 0 for an unknown state.
func (w *Worker) Tick(state string) uint64 {
	w.mu.RLock()
	defer w.mu.RUnlock()
	if i := w.idx(state); i >= 0 {
		return w.time[i]
	}
	return 0
}

// Time returns the ticks of the states, or of all states for nil, in order.
func (w *Worker) Time(states am.S) am.Time {
	w.mu.RLock()
	defer w.mu.RUnlock()
	return w.timeLocked(states)
}

func (w *Worker) timeLocked(states am.S) am.Time {
	if states == nil {
		return slices.Clone(w.time)
	}
	t := make(am.Time, len(states))
	for i, s := range states {
		if j := w.idx(s); j >= 0 {
			t[i] = w.time[j]
		}
	}
	return t
}

// Clock returns the ticks of the states, or of all states for nil, by name.
func (w *Worker) Clock(states am.S) am.Clock {
	if states == nil {
		states = w.names
	}
	w.mu.RLock()
	defer w.mu.RUnlock()
	c := make(am.Clock, len(states))
	for _, s := range states {
		if j := w.idx(s); j >= 0 {
			c[s] = w.time[j]
		} else {
			c[s] = 0
		}
	}
	return c
}

// TimeSum returns the sum of the ticks of the states, or of all for nil.
func (w *Worker) TimeSum(states am.S) uint64 {
	var sum uint64
	for _, t := range w.Time(states) {
		sum += t
	}
	return sum
}

// IsTime tells whether the ticks of the states (all for nil) still equal t.
func (w *Worker) IsTime(t am.Time, states am.S) bool {
	now := w.Time(states)
	if len(t) > len(now) {
		return false
	}
	for i := range t {
		if t[i] != now[i] {
			return false
		}
	}
	return true
}

// IsClock tells whether every tick of clock still matches.
func (w *Worker) IsClock(clock am.Clock) bool {
	w.mu.RLock()
	defer w.mu.RUnlock()
	for s, t := range clock {
		var now uint64
		if j := w.idx(s); j >= 0 {
			now = w.time[j]
		}
		if now != t {
			return false
		}
	}
	return true
}

// Export returns the remote machine's ID, the mirrored time and the names.
func (w *Worker) Export() *am.Serialized {
	w.mu.RLock()
	defer w.mu.RUnlock()
	return &am.Serialized{ID: w.id, Time: slices.Clone(w.time), StateNames: slices.Clone(w.names)}
}

// GetStruct returns a copy of the schema.
func (w *Worker) GetStruct() am.Struct { return maps.Clone(w.schema) }

// String returns the active states with their ticks, like "(A:1 B:3)".
func (w *Worker) String() string {
	w.mu.RLock()
	defer w.mu.RUnlock()
	var b strings.Builder
	b.WriteByte('(')
	first := true
	for i, n := range w.names {
		if w.time[i]%2 == 1 {
			if !first {
				b.WriteByte(' ')
			}
			first = false
			b.WriteString(n + ":" + strconv.FormatUint(w.time[i], 10))
		}
	}
	b.WriteByte(')')
	return b.String()
}

// StringAll returns all states with their ticks, inactive ones in brackets:
// "(A:1)[B:0 C:2]".
func (w *Worker) StringAll() string {
	w.mu.RLock()
	defer w.mu.RUnlock()
	var act, inact []string
	for i, n := range w.names {
		s := n + ":" + strconv.FormatUint(w.time[i], 10)
		if w.time[i]%2 == 1 {
			act = append(act, s)
		} else {
			inact = append(inact, s)
		}
	}
	return "(" + strings.Join(act, " ") + ")[" + strings.Join(inact, " ") + "]"
}

// Inspect returns a multi-line description of the states (all for nil):
// activity, tick and relations, in the engine's format.
func (w *Worker) Inspect(states am.S) string {
	if states == nil {
		states = w.names
	}
	w.mu.RLock()
	defer w.mu.RUnlock()
	var b strings.Builder
	rel := func(label string, l am.S) {
		if l != nil {
			fmt.Fprintf(&b, "  %-9s%s\n", label+":", strings.Join(l, " "))
		}
	}
	for _, n := range states {
		i := w.idx(n)
		if i < 0 {
			continue
		}
		st := w.schema[n]
		fmt.Fprintf(&b, "%s:\n  State:   %t %d\n", n, w.time[i]%2 == 1, w.time[i])
		if st.Auto {
			b.WriteString("  Auto:    true\n")
		}
		if st.Multi {
			b.WriteString("  Multi:   true\n")
		}
		rel("Add", st.Add)
		rel("Require", st.Require)
		rel("Remove", st.Remove)
		rel("After", st.After)
		b.WriteByte('\n')
	}
	return b.String()
}

// Err returns the last error: the remote machine's Err(), or a local failure
// of a remote call made through this Worker, whichever came last.
func (w *Worker) Err() error {
	w.mu.RLock()
	defer w.mu.RUnlock()
	return w.err
}

func (w *Worker) setErr(err error) {
	w.mu.Lock()
	w.err = err
	w.mu.Unlock()
}

// Dispose releases the Worker: every pending wait is closed and its context
// canceled. It does not stop the Client (see Client.Stop).
func (w *Worker) Dispose() {
	w.disposeMu.Lock()
	defer w.disposeMu.Unlock()
	if !w.disposed.CompareAndSwap(false, true) {
		return
	}
	w.cancel()
	w.mu.Lock()
	for i := range w.byState {
		for _, b := range w.byState[i] {
			b.fire()
		}
		w.byState[i] = nil
	}
	for id, aw := range w.watches {
		aw.close()
		delete(w.watches, id)
	}
	for _, v := range w.verWait {
		close(v.ch)
	}
	w.verWait = nil
	w.mu.Unlock()
	close(w.disposedCh)
}

// WhenDisposed returns a channel closed once the Worker is disposed.
func (w *Worker) WhenDisposed() <-chan struct{} { return w.disposedCh }
