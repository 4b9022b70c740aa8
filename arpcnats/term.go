package arpcnats

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"

	am "github.com/arpc-go/arpc/pkg/machine"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// term is one leadership term: its subscriptions, its goroutines
// (publisher, persister, durable-wait resolvers) and the handlers in
// flight. The elector starts and ends it.
type term struct {
	epoch    uint64
	leaseRev uint64
	ctx      context.Context
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	subs     []*nats.Subscription
	gate     gate
	deposed  chan struct{}
	depOnce  sync.Once
	waits    *waitSet
	reqSem   chan struct{}
	// reqs counts the requests (Mirror.Request) being waited on
	reqs sync.WaitGroup
}

// depose tells the elector that a write found another leader's revision.
func (t *term) depose() { t.depOnce.Do(func() { close(t.deposed) }) }

// startTerm takes over: it restores the stored state into the source (or
// stores the source's state if there is none), fences the previous leader
// with a compare-and-set write of the next epoch, and starts serving.
func (s *Server) startTerm(leaseRev uint64) (*term, error) {
	ctx, cancel := context.WithTimeout(s.ctx, 4*s.opts.lease)
	defer cancel()
	var err error
	for try := 0; try < 3; try++ {
		if err = s.restore(ctx); err == nil || !errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			break
		}
	}
	if err != nil {
		return nil, err
	}
	t := &term{leaseRev: leaseRev, deposed: make(chan struct{}), reqSem: make(chan struct{}, maxRequests)}
	t.ctx, t.cancel = context.WithCancel(s.ctx)
	s.mu.Lock()
	t.epoch = s.epoch
	s.term = t
	s.mu.Unlock()
	t.waits = newWaitSet(s, t)
	t.wg.Add(2)
	go s.persister(t)
	go s.publisher(t)
	for _, sub := range []struct {
		subj string
		fn   nats.MsgHandler
	}{
		{subjMut(s.id), func(m *nats.Msg) { s.onMutation(t, m) }},
		{subjMutNS(s.id), func(m *nats.Msg) { s.onMutation(t, m) }},
		{subjGet(s.id), func(m *nats.Msg) { s.onGet(t, m) }},
		{subjReq(s.id), func(m *nats.Msg) { s.onRequest(t, m) }},
		{subjWaitReg(s.id), func(m *nats.Msg) { t.waits.onRegister(m) }},
	} {
		ns, err := s.nc.QueueSubscribe(sub.subj, "arpc", sub.fn)
		if err != nil {
			s.endTerm(t)
			return nil, err
		}
		t.subs = append(t.subs, ns)
	}
	if err := t.waits.load(ctx); err != nil {
		s.setErr(fmt.Errorf("arpcnats: loading durable waits: %w", err))
	}
	s.leading.Store(true)
	s.mu.Lock()
	close(s.leadCh)
	first := s.lastPersisted
	s.mu.Unlock()
	// mirrors learn of the new epoch at once, not at the next heartbeat
	_ = s.nc.Publish(subjUpd(s.id), first)
	s.signal()
	return t, nil
}

// restore loads the stored state into the source and writes it back with
// the next epoch (a compare-and-set on the revision read).
func (s *Server) restore(ctx context.Context) error {
	key := keyState(s.id)
	e, err := s.kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
		s.mu.Lock()
		s.epoch, s.dirty = 1, false
		s.version++
		s.mu.Unlock()
		u, b, err := s.encodeState(s.errText())
		if err != nil {
			return err
		}
		rev, err := s.kv.Create(ctx, key, b)
		if err != nil {
			return err
		}
		s.markPersisted(rev, u)
		return nil
	}
	if err != nil {
		return err
	}
	var doc stateDoc
	if err := json.Unmarshal(e.Value(), &doc); err != nil {
		return fmt.Errorf("%w: %v", ErrSchemaMismatch, err)
	}
	if !slices.Equal(doc.Names, []string(s.names)) || len(doc.Time) != len(s.names) ||
		len(doc.Exits) != len(s.names) {
		return fmt.Errorf("%w: stored %v, source %v", ErrSchemaMismatch, doc.Names, s.names)
	}
	if !slices.Equal(s.source.Time(nil), am.Time(doc.Time)) {
		if err := s.source.Import(&am.Serialized{ID: s.source.ID, Time: doc.Time, StateNames: s.names}); err != nil {
			return err
		}
	}
	s.mu.Lock()
	s.time = s.source.Time(nil)
	copy(s.exits, doc.Exits)
	for i, n := range s.names {
		s.args[i] = nil
		if raw, ok := doc.Args[n]; ok {
			var a am.A
			if json.Unmarshal(raw, &a) == nil {
				s.args[i] = a
			}
		}
	}
	s.dedup.load(doc.Dedup)
	s.epoch, s.version, s.dirty = doc.Epoch+1, doc.Version+1, false
	s.mu.Unlock()
	u, b, err := s.encodeState(doc.Err)
	if err != nil {
		return err
	}
	rev, err := s.kv.Update(ctx, key, b, e.Revision())
	if err != nil {
		return err
	}
	s.markPersisted(rev, u)
	return nil
}

// markPersisted records a successful state write (takes s.mu).
func (s *Server) markPersisted(rev uint64, u *update) {
	s.mu.Lock()
	s.stateRev, s.persisted = rev, u.Version
	s.lastPersisted = appendUpdate(nil, u)
	close(s.persistWait)
	s.persistWait = make(chan struct{})
	s.mu.Unlock()
}

// endTerm stops serving: subscriptions end, handlers in flight are
// waited for (their contexts canceled), held replies fail with
// ErrNotLeader, goroutines are gone when it returns.
func (s *Server) endTerm(t *term) {
	s.leading.Store(false)
	t.cancel()
	for _, sub := range t.subs {
		_ = sub.Unsubscribe()
	}
	_ = t.gate.close(context.Background())
	t.wg.Wait()
	s.mu.Lock()
	pend := s.pending
	s.pending = nil
	if s.term == t {
		s.term = nil
		select {
		case <-s.leadCh:
			s.leadCh = make(chan struct{})
		default:
		}
	}
	s.mu.Unlock()
	for _, p := range pend {
		_ = p.msg.Respond(errResp(codeNotLeader, "leadership ended before the mutation was persisted"))
	}
}

// drainIntake drains the term's subscriptions: NATS delivers what it has
// already routed to them, then closes them.
func (s *Server) drainIntake(ctx context.Context, t *term) error {
	var chs []<-chan nats.SubStatus
	for _, sub := range t.subs {
		ch := sub.StatusChanged(nats.SubscriptionClosed)
		if err := sub.Drain(); err != nil {
			continue
		}
		chs = append(chs, ch)
	}
	for _, ch := range chs {
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}
