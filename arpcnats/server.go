package arpcnats

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	am "github.com/arpc-go/arpc/pkg/machine"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Server serves one source machine over NATS under a machine id. Several
// Servers (in one process or many) may serve the same id: one leads, the
// others stand by and take over when its lease lapses. Only the leader
// answers mutations and publishes updates. Methods are safe for concurrent
// use.
type Server struct {
	nc       *nats.Conn
	kv       jetstream.KeyValue
	source   *am.Machine
	id       string
	names    am.S
	multi    []bool
	opts     serverOpts
	instance string
	tr       *tracer

	// mu guards the recorded state of the source below
	mu       sync.Mutex
	time     []uint64
	exits    []uint64
	args     []am.A
	dirty    bool
	epoch    uint64
	version  uint64
	dedup    *dedupTable
	stateRev uint64
	// persisted is the last version JetStream acknowledged
	persisted uint64
	// lastPersisted is that version's update, encoded
	lastPersisted []byte
	pending       []pendingReply
	// persistWait is closed (and replaced) after each state write
	persistWait chan struct{}
	lastErr     error
	leadCh      chan struct{}
	term        *term

	pubSig     chan struct{}
	persistSig chan struct{}

	ctx        context.Context
	cancel     context.CancelFunc
	wg         sync.WaitGroup
	shutdownCh chan shutdownReq
	leading    atomic.Bool
	intake     chan struct{}
	intakeOnce sync.Once
	closeOnce  sync.Once
	done       chan struct{}
}

// pendingReply is a reply held until its version is persisted.
type pendingReply struct {
	msg   *nats.Msg
	entry dedupEntry
}

type shutdownReq struct {
	ctx  context.Context
	done chan error
}

// Serve starts serving source under machineID (letters, digits, '-', '_')
// on nc, using the JetStream KV bucket of WithBucket (created if missing).
// It returns at once: the Server leads when it gets the lease (at once if
// no other server holds it; see WaitLeader), otherwise it stands by. When
// it leads, a state stored by an earlier leader is restored into source
// (its clock is set with Import: no handlers run), so source must be a
// verified machine nobody else mutates while it stands by. nc stays the
// caller's: Close doesn't close it.
func Serve(ctx context.Context, nc *nats.Conn, source *am.Machine, machineID string, opts ...Option) (*Server, error) {
	if nc == nil || source == nil {
		return nil, fmt.Errorf("%w: nil connection or source", am.ErrInvalidArgs)
	}
	if !validID(machineID) {
		return nil, fmt.Errorf("%w: machine id %q", ErrInvalidID, machineID)
	}
	o := defaultServerOpts()
	for _, opt := range opts {
		opt(&o)
	}
	if err := o.validate(); err != nil {
		return nil, err
	}
	if o.instance == "" {
		o.instance = randID(8)
	}
	kv, err := openBucket(ctx, nc, o.bucket, o.replicas, true)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrTransport, err)
	}
	names := source.StateNames()
	st := source.GetStruct()
	s := &Server{
		nc: nc, kv: kv, source: source, id: machineID, names: names, opts: o,
		instance: o.instance,
		multi:    make([]bool, len(names)),
		exits:    make([]uint64, len(names)),
		args:     make([]am.A, len(names)),
		dedup:    newDedup(o.dedup),
		leadCh:   make(chan struct{}),
		pubSig:   make(chan struct{}, 1), persistSig: make(chan struct{}, 1),
		shutdownCh:  make(chan shutdownReq),
		intake:      make(chan struct{}),
		done:        make(chan struct{}),
		persistWait: make(chan struct{}),
	}
	for i, n := range names {
		s.multi[i] = st[n].Multi
	}
	s.tr = &tracer{NoOpTracer: &am.NoOpTracer{}, s: s}
	s.mu.Lock()
	s.time = source.Time(nil)
	s.mu.Unlock()
	if err := source.BindTracer(s.tr); err != nil {
		return nil, err
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.wg.Add(1)
	go s.run()
	return s, nil
}

// openBucket binds (and, for a server, creates) the KV bucket.
func openBucket(ctx context.Context, nc *nats.Conn, bucket string, replicas int, create bool) (jetstream.KeyValue, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	if !create {
		return js.KeyValue(ctx, bucket)
	}
	kv, err := js.KeyValue(ctx, bucket)
	if err == nil {
		return kv, nil
	}
	kv, err = js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: bucket, Replicas: replicas,
		Description: "aRPC machine states, leases and durable waits"})
	if err != nil {
		// another server created it meanwhile
		if kv2, err2 := js.KeyValue(ctx, bucket); err2 == nil {
			return kv2, nil
		}
		return nil, fmt.Errorf("arpcnats: bucket %s: %w", bucket, err)
	}
	return kv, nil
}

func randID(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// ID returns the machine id.
func (s *Server) ID() string { return s.id }

// Instance returns this server's instance name (see WithInstance).
func (s *Server) Instance() string { return s.instance }

// IsLeader tells whether this server leads now.
func (s *Server) IsLeader() bool { return s.leading.Load() }

// Err returns the last error of leadership: a failed takeover, a stored
// state that doesn't match the schema, a write that failed.
func (s *Server) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastErr
}

func (s *Server) setErr(err error) {
	s.mu.Lock()
	s.lastErr = err
	s.mu.Unlock()
	s.logf(slog.LevelWarn, "arpcnats: server", "err", err)
}

func (s *Server) logf(l slog.Level, msg string, args ...any) {
	if s.opts.log != nil {
		s.opts.log.Log(context.Background(), l, msg, append([]any{"machine", s.id, "instance", s.instance}, args...)...)
	}
}

// WaitLeader waits until this server leads, or ctx ends, or it is closed.
func (s *Server) WaitLeader(ctx context.Context) error {
	s.mu.Lock()
	ch := s.leadCh
	s.mu.Unlock()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-s.done:
		return ErrClosed
	}
}

// Version returns the epoch (leadership term) and version of the last
// recorded state.
func (s *Server) Version() (epoch, version uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.epoch, s.version
}

// IntakeStopped returns a channel closed once Shutdown has stopped taking
// new requests (the subscriptions are drained and closed by NATS).
func (s *Server) IntakeStopped() <-chan struct{} { return s.intake }

// Shutdown stops gracefully: it stops the intake of new mutations (the
// subscriptions are drained), reports that through IntakeStopped, lets
// the mutations in flight finish and be persisted, answers them, releases
// the lease at once (a standby takes over without waiting for it to
// lapse), and stops every goroutine. When ctx ends first it stops
// abruptly, like Close, and returns ctx.Err(): mutations then unanswered
// were not acknowledged. A Close meanwhile cuts it short the same way, and
// it returns ErrClosed, as do later calls.
func (s *Server) Shutdown(ctx context.Context) error {
	req := shutdownReq{ctx: ctx, done: make(chan error, 1)}
	select {
	case s.shutdownCh <- req:
	case <-s.done:
		return ErrClosed
	case <-ctx.Done():
		// the elector is busy (taking over, renewing): stop it abruptly
		s.closeOnce.Do(s.finish)
		return ctx.Err()
	}
	err := <-req.done
	s.closeOnce.Do(s.finish)
	return err
}

// Close stops at once: subscriptions end, pending replies fail with
// ErrNotLeader, the lease is left to lapse. It returns once every
// goroutine of the Server is gone. Idempotent.
func (s *Server) Close() error {
	s.closeOnce.Do(s.finish)
	return nil
}

func (s *Server) finish() {
	s.cancel()
	s.wg.Wait()
	_ = s.source.DetachTracer(s.tr)
	s.intakeOnce.Do(func() { close(s.intake) })
	close(s.done)
}

// signal wakes the publisher and the persister (coalescing).
func (s *Server) signal() {
	select {
	case s.pubSig <- struct{}{}:
	default:
	}
	select {
	case s.persistSig <- struct{}{}:
	default:
	}
}

// cutLocked closes the current version: if the state changed since the
// last cut, the version grows. Needs s.mu.
func (s *Server) cutLocked() uint64 {
	if s.dirty {
		s.version++
		s.dirty = false
	}
	return s.version
}

// snapshotLocked cuts and copies the state. Needs s.mu.
func (s *Server) snapshotLocked(errText string) *update {
	v := s.cutLocked()
	return &update{Epoch: s.epoch, Version: v, Time: append([]uint64(nil), s.time...),
		Exits: append([]uint64(nil), s.exits...), Err: errText}
}

// errText returns the source's Err() as text, clipped to 4 KiB. It may
// lock the source: call it without s.mu.
func (s *Server) errText() string {
	if err := s.source.Err(); err != nil {
		return clip(err.Error(), 4<<10)
	}
	return ""
}
