package arpcnats

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	am "github.com/arpc-go/arpc/pkg/machine"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Mirror is a local mirror of a machine served over NATS, with the API of
// rpc.Worker: reads and waits (Is, Not, When, WhenNot, WhenTime, Time,
// Clock, NewStateCtx...) are answered locally by an am.Model fed with the
// leader's updates, and mutations (Mutate, MutateIf, Add, Remove, Set,
// AddErr...) are NATS requests to the leader that return once the mirror
// reflects them. Code written against rpc.Worker or am.Api runs on a
// Mirror unchanged. Many Mirrors, of one machine or of many, may share one
// *nats.Conn. Methods are safe for concurrent use.
type Mirror struct {
	*model
	mw   *am.ModelWriter
	nc   *nats.Conn
	id   string
	opts mirrorOpts
	n    int
	// multi marks the Multi states, whose re-entries the exit counters tell
	multi  []bool
	prefix string
	// flMu guards seq, the last request seq, and the seqs in flight
	flMu     sync.Mutex
	seq      uint64
	inflight map[uint64]struct{}
	hub      *hub

	ctx      context.Context
	cancel   context.CancelFunc
	disposed atomic.Bool
	doneOnce sync.Once
	doneCh   chan struct{}

	kvMu sync.Mutex
	kv   jetstream.KeyValue

	mu      sync.Mutex
	epoch   uint64
	version uint64
	time    []uint64
	exits   []uint64
	err     error
	srcErr  string
	// epochCtx ends when an update of another epoch (a new leader) arrives
	epochCtx    context.Context
	epochCancel context.CancelFunc
	bad         uint64
}

// model lets Mirror embed am.Model under an unexported field name.
type model = am.Model

var (
	_ am.Api     = (*Mirror)(nil)
	_ am.Mutator = (*Mirror)(nil)
)

// NewMirror returns a mirror of the machine served under machineID, with
// schema and the ordered state names names (every state, am.Exception
// included, in the server's order). It subscribes to the machine's
// updates, then asks the leader for the current state; with no leader it
// reads the stored state from JetStream, and with neither it starts at
// tick 0 and catches up with the first update (a mirror may start before
// its server). Mirrors of one machine on one connection share one
// subscription: NATS delivers each update once per connection. nc stays
// the caller's.
func NewMirror(ctx context.Context, nc *nats.Conn, machineID string, schema am.Struct, names am.S,
	opts ...MirrorOption,
) (*Mirror, error) {
	if nc == nil {
		return nil, fmt.Errorf("%w: nil connection", am.ErrInvalidArgs)
	}
	if !validID(machineID) {
		return nil, fmt.Errorf("%w: machine id %q", ErrInvalidID, machineID)
	}
	o := defaultMirrorOpts()
	for _, opt := range opts {
		opt(&o)
	}
	if err := o.validate(); err != nil {
		return nil, err
	}
	m := &Mirror{nc: nc, id: machineID, opts: o, prefix: randID(8), doneCh: make(chan struct{})}
	m.ctx, m.cancel = context.WithCancel(context.Background())
	md, mw, err := am.NewModel(m.ctx, schema, names)
	if err != nil {
		m.cancel()
		return nil, err
	}
	m.model, m.mw = md, mw
	m.n = len(md.StateNames())
	m.time, m.exits, m.multi = make([]uint64, m.n), make([]uint64, m.n), make([]bool, m.n)
	st := md.GetStruct()
	for i, n := range md.StateNames() {
		m.multi[i] = st[n].Multi
	}
	m.hub, err = joinHub(m)
	if err != nil {
		m.cancel()
		m.mw.Close()
		return nil, err
	}
	if err := m.Resync(ctx); err != nil && !errors.Is(err, ErrNoServer) {
		m.Dispose()
		return nil, err
	}
	return m, nil
}

// Sync brings the mirror up to date (for example after a batch of AddNS),
// bounded by WithCallTimeout, and returns the new time.
func (m *Mirror) Sync() am.Time {
	ctx, cancel := context.WithTimeout(m.ctx, m.opts.callTimeout)
	defer cancel()
	if err := m.Resync(ctx); err != nil {
		m.setErr(err)
	}
	return m.Time(nil)
}

// Resync brings the mirror up to date: from the leader, or, when there is
// none, from the state stored in JetStream. It returns ErrNoServer when
// neither has a state.
func (m *Mirror) Resync(ctx context.Context) error {
	resp, err := m.nc.RequestWithContext(ctx, subjGet(m.id), nil)
	if err == nil {
		u, derr := decodeUpdate(resp.Data, m.n)
		if derr != nil {
			return derr
		}
		m.apply(u)
		return nil
	}
	if !errors.Is(err, nats.ErrNoResponders) {
		return fmt.Errorf("%w: %v", ErrTransport, err)
	}
	kv, kerr := m.bucket(ctx)
	if kerr != nil {
		return fmt.Errorf("%w: %v", ErrNoServer, kerr)
	}
	doc, _, kerr := loadState(ctx, kv, m.id)
	if kerr != nil {
		return fmt.Errorf("%w: %v", ErrNoServer, kerr)
	}
	if len(doc.Time) != m.n || len(doc.Exits) != m.n {
		return fmt.Errorf("%w: %d stored states for %d", ErrSchemaMismatch, len(doc.Time), m.n)
	}
	m.apply(&update{Epoch: doc.Epoch, Version: doc.Version, Time: doc.Time, Exits: doc.Exits, Err: doc.Err})
	return nil
}

// bucket binds the KV bucket on first use.
func (m *Mirror) bucket(ctx context.Context) (jetstream.KeyValue, error) {
	m.kvMu.Lock()
	defer m.kvMu.Unlock()
	if m.kv != nil {
		return m.kv, nil
	}
	kv, err := openBucket(ctx, m.nc, m.opts.bucket, 1, false)
	if err != nil {
		return nil, err
	}
	m.kv = kv
	return kv, nil
}

// dropped counts an update that didn't decode.
func (m *Mirror) dropped() {
	m.mu.Lock()
	m.bad++
	m.mu.Unlock()
}

// apply moves the model to u if it is newer. Within an epoch ticks only
// grow and the difference to the mirror's vector is the diff (so a missed
// update loses nothing); a new epoch whose ticks went back (a leader that
// acknowledged before persisting died) replaces the vector.
func (m *Mirror) apply(u *update) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !u.newer(m.epoch, m.version) {
		return
	}
	back := false
	for i, v := range u.Time {
		if v < m.time[i] {
			back = true
			break
		}
	}
	if u.Err != m.srcErr {
		m.srcErr = u.Err
		if u.Err != "" {
			m.err = &RemoteError{Msg: u.Err}
		}
	}
	if back {
		_ = m.mw.SetTime(am.Time(u.Time))
	} else {
		var buf [16]am.TickDelta
		deltas := buf[:0]
		for i, v := range u.Time {
			d := v - m.time[i]
			if d == 0 {
				continue
			}
			exited := m.multi[i] && u.Exits[i] != m.exits[i]
			deltas = append(deltas, am.TickDelta{Index: i, Delta: d, Exited: exited})
		}
		m.mw.Apply(deltas)
	}
	if u.Epoch != m.epoch && m.epochCancel != nil {
		m.epochCancel()
		m.epochCtx, m.epochCancel = nil, nil
	}
	m.epoch, m.version = u.Epoch, u.Version
	copy(m.time, u.Time)
	copy(m.exits, u.Exits)
}

// leaderCtx returns a context that ends when a new leader shows up.
func (m *Mirror) leaderCtx() context.Context {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.epochCtx == nil {
		m.epochCtx, m.epochCancel = context.WithCancel(m.ctx)
	}
	return m.epochCtx
}

// Version returns the epoch and version of the state the mirror shows.
func (m *Mirror) Version() (epoch, version uint64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.epoch, m.version
}

// Dropped returns how many messages on the update subject didn't decode.
func (m *Mirror) Dropped() uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.bad
}

// ID returns the machine id.
func (m *Mirror) ID() string { return m.id }

// Ctx returns the mirror's context, canceled by Dispose.
func (m *Mirror) Ctx() context.Context { return m.ctx }

// Err returns the last error: the source's Err() as the last update
// showed it, or the failure of a call made through an
// asyncmachine-compatible method (Add, Remove...), whichever came last.
func (m *Mirror) Err() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.err
}

func (m *Mirror) setErr(err error) {
	m.mu.Lock()
	m.err = err
	m.mu.Unlock()
}

// Log does nothing: a mirror has no logger, and the source's is not
// reachable over NATS.
func (m *Mirror) Log(string, ...any) {}

// Export returns the machine id, the mirrored time and the names.
func (m *Mirror) Export() *am.Serialized {
	return &am.Serialized{ID: m.id, Time: m.Time(nil), StateNames: m.StateNames()}
}

// Close unsubscribes, releases every pending wait and cancels every state
// context; the ticks stay readable. It returns once no update is being
// applied. It doesn't close the connection. Idempotent.
func (m *Mirror) Close() error {
	m.Dispose()
	return nil
}

// Dispose is Close, for am.Api.
func (m *Mirror) Dispose() {
	m.doneOnce.Do(func() {
		m.disposed.Store(true)
		m.hub.leave(m)
		m.cancel()
		m.mw.Close()
		close(m.doneCh)
	})
}

// IsDisposed tells whether the mirror is disposed.
func (m *Mirror) IsDisposed() bool { return m.disposed.Load() }

// WhenDisposed returns a channel closed once the mirror is disposed.
func (m *Mirror) WhenDisposed() <-chan struct{} { return m.doneCh }
