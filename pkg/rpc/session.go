package rpc

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	am "github.com/arpc-go/arpc/pkg/machine"
	"github.com/arpc-go/arpc/pkg/rpc2"
	ss "github.com/arpc-go/arpc/states/server"
)

// dedupeSize is how many recent request IDs a session remembers, so a retried
// mutation runs once.
const dedupeSize = 128

// sessionKey stores a connection's *session among its values. A pointer key
// hashes faster than a struct type in the values map.
var sessionKey = new(byte)

// session is one client's view of the source: its clock baseline (what the
// client has been sent), the version of the last update, and its watches.
type session struct {
	s        *Server
	conn     *rpc2.Conn
	clientID string
	ready    atomic.Bool
	sig      chan struct{}

	mu        sync.Mutex
	cond      sync.Cond
	base      am.Time
	baseExits am.Time
	version   uint64
	errSent   error
	inflight  int
	missed    bool
	matched   []uint64
	watches   map[uint64]context.CancelFunc
	recent    [dedupeSize]recentReq
	recentPos int
	scratch   []tickEntry
}

// recentReq is a remembered mutation: running until done, then its result.
type recentReq struct {
	id     uint64
	done   bool
	result am.Result
	errMsg string
}

func newSession(s *Server, conn *rpc2.Conn, clientID string) *session {
	n := len(s.names)
	se := &session{
		s:         s,
		conn:      conn,
		clientID:  clientID,
		sig:       make(chan struct{}, 1),
		base:      make(am.Time, n),
		baseExits: make(am.Time, n),
		watches:   map[uint64]context.CancelFunc{},
	}
	se.cond.L = &se.mu
	return se
}

// signal wakes the pusher without blocking.
func (se *session) signal() {
	select {
	case se.sig <- struct{}{}:
	default:
	}
}

// signalSessions wakes every session's pusher.
// A session with a mutation in flight is not woken: it is marked, and the
// mutation's reply carries the change (its diff is taken under the same
// lock, after this pass's transitions were recorded), so a client's own
// mutations cost no push and no wake-up.
func (s *Server) signalSessions() {
	s.mu.Lock()
	for se := range s.sessions {
		se.mu.Lock()
		if se.inflight > 0 {
			se.missed = true
		} else {
			se.signal()
		}
		se.mu.Unlock()
	}
	s.mu.Unlock()
}

// updateLocked fills u with what changed since the baseline and moves the
// baseline. A non-empty update gets the next version. se.mu must be held.
func (se *session) updateLocked(u *update) {
	entries := se.s.tracer.diff(se.scratch[:0], se.base, se.baseExits)
	if err := se.s.source.Err(); err != se.errSent && err != nil {
		se.errSent = err
		u.err = &wireErr{Msg: err.Error()}
	}
	if len(entries) == 0 && u.err == nil {
		se.scratch = entries
		return
	}
	se.version++
	u.version = se.version
	u.entries = append([]tickEntry(nil), entries...)
	se.scratch = entries[:0]
}

// pusher sends the source's changes to the client, gathering them for the
// push interval, until the connection ends. Changes are merged into one diff
// per push, so a slow client costs memory proportional to the number of
// states, never to the number of changes.
func (se *session) pusher(ctx context.Context) {
	interval := se.s.opts.pushInterval
	var timer *time.Timer
	if interval > 0 {
		timer = time.NewTimer(time.Hour)
		timer.Stop()
		defer timer.Stop()
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-se.sig:
		}
		if timer != nil {
			timer.Reset(interval)
			select {
			case <-ctx.Done():
				return
			case <-timer.C:
			}
		}
		se.push(ctx)
	}
}

// push sends one update, unless a mutation of this client is in flight: its
// reply will carry the changes, and the pusher is woken again after it.
func (se *session) push(ctx context.Context) {
	var msg msgPush
	se.mu.Lock()
	if se.inflight > 0 {
		se.missed = true
		se.mu.Unlock()
		return
	}
	se.updateLocked(&msg.upd)
	msg.matched, se.matched = se.matched, nil
	if msg.upd.version == 0 && len(msg.matched) == 0 {
		se.mu.Unlock()
		return
	}
	se.mu.Unlock()
	// Only this goroutine pushes, so pushes reach the wire in version order;
	// not holding se.mu here keeps a slow client from stalling the source's
	// queue (its QueueEnd takes se.mu) or this client's mutations.
	se.s.calls.Add(1)
	err := se.conn.Notify(ctx, mPush, &msg)
	if err != nil {
		se.s.opts.logger.Debug("arpc: push failed", "client", se.clientID, "err", err)
	}
}

// begin marks a mutation in flight and checks for a retried request. It
// returns true with the remembered result if the request already ran.
func (se *session) begin(reqID uint64, resp *respResult) bool {
	se.mu.Lock()
	defer se.mu.Unlock()
	se.inflight++
	if reqID == 0 {
		return false
	}
	for {
		r := se.findLocked(reqID)
		if r == nil {
			se.recent[se.recentPos] = recentReq{id: reqID}
			se.recentPos = (se.recentPos + 1) % dedupeSize
			return false
		}
		if r.done {
			resp.result, resp.errMsg = r.result, r.errMsg
			return true
		}
		// the first attempt still runs: wait for its result
		se.cond.Wait()
	}
}

func (se *session) findLocked(reqID uint64) *recentReq {
	for i := range se.recent {
		if se.recent[i].id == reqID {
			return &se.recent[i]
		}
	}
	return nil
}

// end records a mutation's result, fills the reply's update (with diff) and
// wakes the pusher if it skipped a push meanwhile.
func (se *session) end(reqID uint64, resp *respResult, diff bool) {
	se.mu.Lock()
	defer se.mu.Unlock()
	if reqID != 0 {
		if r := se.findLocked(reqID); r != nil && !r.done {
			r.done, r.result, r.errMsg = true, resp.result, resp.errMsg
			se.cond.Broadcast()
		}
	}
	if diff {
		se.updateLocked(&resp.upd)
	}
	se.inflight--
	if se.inflight == 0 && se.missed {
		// The reply's diff covers every change whose queue pass ended before
		// now (see signalSessions); only what it doesn't carry needs a push.
		se.missed = false
		if !diff || len(se.matched) > 0 {
			se.signal()
		}
	}
}

// close cancels the session's watches.
func (se *session) close() {
	se.mu.Lock()
	defer se.mu.Unlock()
	for id, cancel := range se.watches {
		cancel()
		delete(se.watches, id)
	}
}

// onDisconnect ends the session of a closed connection.
func (s *Server) onDisconnect(conn *rpc2.Conn, _ error) {
	se, _ := conn.Value(sessionKey).(*session)
	if se == nil {
		return
	}
	s.mu.Lock()
	delete(s.sessions, se)
	s.mu.Unlock()
	se.close()
	if se.ready.Load() {
		s.Mach.Add1(ss.ClientDisconnected, am.A{"id": se.clientID})
	}
}
