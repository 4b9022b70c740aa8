package rpc

import (
	"context"
	"sync"
	"sync/atomic"

	am "github.com/arpc-go/arpc/pkg/machine"
)

// Worker is the local mirror of a server's machine. Reads and waits (Is, Not,
// When, WhenTime, Time, Clock, NewStateCtx, String...) are answered locally
// by an am.Model, the engine's own read-and-wait model, which the client
// feeds with the server's versioned clock diffs, so they behave as on a
// local machine: a state activated and deactivated again between two
// updates counts for When as having been active, and for WhenNot and state
// contexts a passage through inactivity counts. Mutations (Add, Remove, Set,
// AddErr...) are sent to the server and return its result once the mirror
// reflects them. Worker implements am.Api. Methods are safe for concurrent
// use.
type Worker struct {
	// model answers the reads and waits; only the client's read loop moves
	// it, through mw, one update at a time and in version order
	*model
	mw *am.ModelWriter
	c  *Client

	ctx        context.Context
	cancel     context.CancelFunc
	disposed   atomic.Bool
	disposeMu  sync.Mutex
	disposedCh chan struct{}
	// cbs counts the ctx watchers of remote WhenArgs watches
	cbs sync.WaitGroup

	mu      sync.RWMutex
	id      string
	offset  []uint64 // mirrored tick minus the source's (after a source restart)
	version uint64
	err     error
	verWait []verWaiter
	// remote WhenArgs watches by ID, kept to be registered again on a new
	// session and released by the server's matches
	watches   map[uint64]*argsWatch
	watchSeq  uint64
	unwatches []uint64
	// reqs are the requests waiting for their answers
	reqs workerRequests
}

// model lets Worker embed am.Model under an unexported field name.
type model = am.Model

var _ am.Api = (*Worker)(nil)

// newWorker returns the mirror of the client's schema, at tick 0 until the
// handshake's updates arrive.
func newWorker(c *Client) (*Worker, error) {
	w := &Worker{
		c:          c,
		disposedCh: make(chan struct{}),
		offset:     make([]uint64, len(c.names)),
		watches:    map[uint64]*argsWatch{},
	}
	w.ctx, w.cancel = context.WithCancel(c.ctx)
	md, mw, err := am.NewModel(w.ctx, c.schema, c.names)
	if err != nil {
		w.cancel()
		return nil, err
	}
	w.model, w.mw = md, mw
	return w, nil
}

// connected notes a completed handshake: the updates before its reply
// brought the mirror to r.Version.
func (w *Worker) connected(r *respHandshake) {
	w.mu.Lock()
	w.id = r.MachineID
	w.mu.Unlock()
	w.requestsConnected(r.Session)
}

// connLost releases the waits for versions the lost connection won't bring;
// reads answer from the last known clock (possibly stale) until the next
// handshake.
func (w *Worker) connLost() {
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

// Export returns the remote machine's ID, the mirrored time and the names.
func (w *Worker) Export() *am.Serialized {
	return &am.Serialized{ID: w.ID(), Time: w.Time(nil), StateNames: w.StateNames()}
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

// Dispose releases the Worker: every pending wait is closed and every state
// context canceled; the ticks stay readable. It returns once the Worker's
// context watchers are gone. It does not stop the Client (see Client.Stop).
func (w *Worker) Dispose() {
	w.disposeMu.Lock()
	defer w.disposeMu.Unlock()
	if !w.disposed.CompareAndSwap(false, true) {
		return
	}
	w.cancel()
	w.mu.Lock()
	for id, aw := range w.watches {
		w.stopWatchLocked(aw)
		delete(w.watches, id)
	}
	for _, v := range w.verWait {
		close(v.ch)
	}
	w.verWait = nil
	w.mu.Unlock()
	w.mw.Close()
	w.cbs.Wait()
	close(w.disposedCh)
}

// WhenDisposed returns a channel closed once the Worker is disposed.
func (w *Worker) WhenDisposed() <-chan struct{} { return w.disposedCh }
