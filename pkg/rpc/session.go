package rpc

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	am "github.com/arpc-go/arpc/pkg/machine"
	"github.com/arpc-go/arpc/pkg/rpc2"
	ss "github.com/arpc-go/arpc/states/server"
)

// sessionKey stores a connection's *session among its values. A pointer key
// hashes faster than a struct type in the values map.
var sessionKey = new(byte)

// errDetached is a flush of a session that has no connection right now: the
// update waits in the session for the client to resume.
var errDetached = errors.New("rpc: session detached")

// session is one client's view of the source, kept across reconnections of
// that client to this server process: its clock baseline (what the client
// has been sent), its update stream (one version sequence for replies and
// pushes), the results of its mutations and its remote watches.
type session struct {
	s        *Server
	id       string
	clientID string
	// identity is the client's authenticated identity (its client ID
	// without an authenticator); grant is what it may do.
	identity string
	grant    *grant
	ctx      context.Context
	cancel   context.CancelFunc

	// wmu serialises the update stream: a version is assigned and its frame
	// queued on the connection under wmu, so frames leave in version order.
	// Taken before mu, never while holding a connection's lock.
	wmu sync.Mutex

	mu        sync.Mutex
	conn      *rpc2.Conn // nil while the client is away
	base      am.Time
	baseExits am.Time
	version   uint64
	ring      updateRing // the latest updates, for resuming
	errSent   error
	inflight  int
	matched   []uint64
	// fired remembers which update carried each matched watch, so that a
	// client whose stream can't resume still learns of the matches it
	// missed (they ride the full update). Pruned at each attach below the
	// version the client has, and capped at maxFired.
	fired   []firedWatch
	answers []wireAnswer // answers to this session's requests, not sent yet
	sent    []wireAnswer // answers sent that the client may not have applied
	watches map[uint64]context.CancelFunc
	res     results
	expiry  *time.Timer
	closed  bool
	scratch []tickEntry
	enc     []byte // scratch of keepLocked

	// view marks the states the client's mirror is sent: those its grant
	// lets it observe and it follows (nil: all); interest is the same as a
	// bitset, so that the fan-out passes over a session none of whose
	// states changed
	view     []bool
	interest bitset
	// marked: the session is in the fan-out's list; pass: the fan-out's
	// last pass that pushed to it (owned by the fan-out's goroutine)
	marked atomic.Bool
	pass   uint64
}

// firedWatch is a matched watch and the version of the update that said so.
type firedWatch struct{ version, id uint64 }

// maxFired bounds a session's fired-watch log.
const maxFired = 4096

func newSessionID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// newSession makes a session.
func (s *Server) newSession(clientID string) *session {
	n := len(s.names)
	se := &session{
		s:         s,
		id:        newSessionID(),
		clientID:  clientID,
		base:      make(am.Time, n),
		baseExits: make(am.Time, n),
		watches:   map[uint64]context.CancelFunc{},
		identity:  clientID,
		grant:     allowAll,
		res:       newResults(s.opts.maxPending),
	}
	se.ctx, se.cancel = context.WithCancel(s.ctx)
	return se
}

// signal schedules a push of the session's news (see fanout).
func (se *session) signal() { se.s.fan.mark(se) }

// follow sets the states the session's mirror follows (nil: all): with
// those its grant lets it observe, they make its view.
func (se *session) follow(follows []bool) {
	obs := se.grant.observe
	if follows == nil && obs == nil {
		se.view, se.interest = nil, nil
		return
	}
	se.view = make([]bool, len(se.s.names))
	se.interest = newBitset(len(se.s.names))
	for i := range se.view {
		if (follows == nil || follows[i]) && (obs == nil || obs[i]) {
			se.view[i] = true
			se.interest.set(i)
		}
	}
}

// visible drops the entries of states outside the session's view.
func (se *session) visible(entries []tickEntry) []tickEntry {
	if se.view == nil {
		return entries
	}
	return slices.DeleteFunc(entries, func(e tickEntry) bool { return !se.view[e.idx] })
}

// hide zeroes, in a full clock, the states outside the session's view.
func (se *session) hide(t am.Time) {
	for i, on := range se.view {
		if !on && i < len(t) {
			t[i] = 0
		}
	}
}

// observesAny reports whether the session observes a state of changed.
func (se *session) observesAny(changed bitset) bool {
	return se.interest == nil || se.interest.intersects(changed)
}

// nextLocked fills u with what changed since the baseline and moves the
// baseline. A non-empty update gets the next version and is kept for
// resuming. se.mu must be held, and se.wmu by the caller that sends u.
func (se *session) nextLocked(u *msgUpdate) {
	entries := se.visible(se.s.tracer.diff(se.scratch[:0], se.base, se.baseExits))
	if err := se.s.source.Err(); err != se.errSent && err != nil {
		se.errSent = err
		u.err = se.grant.errFor(se.s.wireErr(err))
	}
	u.matched, se.matched = se.matched, nil
	u.answers = se.takeAnswersLocked(se.version + 1)
	if len(entries) == 0 && u.err == nil && len(u.matched) == 0 && len(u.answers) == 0 {
		se.scratch = entries
		return
	}
	se.version++
	se.s.stats.traffic.updates.Add(1)
	u.version = se.version
	u.entries = entries
	se.logFiredLocked(u)
	se.keepLocked(u)
	// the entries are the scratch of the next diff: the update travels as
	// its encoding from here on
	u.entries = nil
	se.scratch = entries[:0]
}

// logFiredLocked records the watches that u reports matched.
func (se *session) logFiredLocked(u *msgUpdate) {
	for _, id := range u.matched {
		se.fired = append(se.fired, firedWatch{version: u.version, id: id})
	}
	if n := len(se.fired) - maxFired; n > 0 {
		se.fired = slices.Delete(se.fired, 0, n)
	}
}

// fullLocked fills u with the whole clock as the next version, and makes it
// the new baseline. The client has applied version from: the watches that
// matched after it are reported again.
func (se *session) fullLocked(u *msgUpdate, from uint64) {
	se.s.tracer.snapshot(se.base, se.baseExits)
	se.version++
	se.s.stats.traffic.updates.Add(1)
	u.version = se.version
	u.full = true
	u.time = slices.Clone(se.base)
	se.hide(u.time)
	if err := se.s.source.Err(); err != nil {
		se.errSent = err
		u.err = se.grant.errFor(se.s.wireErr(err))
	}
	u.matched, se.matched = se.matched, nil
	for _, f := range se.fired {
		if f.version > from {
			u.matched = append(u.matched, f.id)
		}
	}
	se.logFiredLocked(u)
	u.answers = se.takeAnswersLocked(se.version)
	se.ring.reset()
	se.keepLocked(u)
}

// keepLocked encodes u once (u then travels as that encoding, which stays
// valid while se.wmu is held, as it is by whoever sends u) and keeps it for
// resuming, dropping the oldest beyond the resume buffer.
func (se *session) keepLocked(u *msgUpdate) {
	enc, _ := u.AppendBinary(se.enc[:0]) // appending to a slice can't fail
	se.enc = enc[:0]
	if max := se.s.opts.resumeBuffer; max > 0 {
		u.raw = se.ring.add(u.version, enc, max)
		return
	}
	u.raw = enc
}

// replayLocked returns the updates after version from, or false when the
// buffer no longer has all of them.
func (se *session) replayLocked(from uint64) ([]msgUpdate, bool) {
	if from == se.version {
		return nil, true
	}
	if from > se.version {
		return nil, false
	}
	return se.ring.after(from)
}

// flush sends what changed as the next update of the stream and returns the
// version the client reaches with it. When the session's connection is
// replyConn, the frame is only queued (the caller's reply follows it in the
// same write); with endMutation, it also ends one mutation in flight. A
// detached session keeps the change for the client's return.
func (se *session) flush(ctx context.Context, replyConn *rpc2.Conn, endMutation bool) (uint64, error) {
	se.wmu.Lock()
	defer se.wmu.Unlock()
	var u msgUpdate
	se.mu.Lock()
	if endMutation {
		// the update below carries every change recorded so far
		se.inflight--
	}
	conn := se.conn
	if conn == nil || se.closed {
		v := se.version
		se.mu.Unlock()
		return v, errDetached
	}
	se.nextLocked(&u)
	v := se.version
	se.mu.Unlock()
	if u.version == 0 {
		return v, nil
	}
	// The stream must not lose a version: write with the connection's own
	// context (not the caller's, which a client's cancel may end), and if
	// the frame can't be sent, end the connection so that the client
	// resumes from what it has (the update waits in the resume buffer).
	var err error
	if conn == replyConn {
		// with the handler's context, the frame is held for the reply
		// (one write); a client's cancel can't drop it unless it has to
		// wait for flow-control credit (then the connection closes, below)
		err = conn.Queue(ctx, mUpdate, &u)
	} else {
		se.s.calls.Add(1)
		se.s.stats.traffic.pushes.Add(1)
		err = conn.Notify(conn.Context(), mUpdate, &u)
	}
	if err != nil {
		se.s.closeConn(conn)
	}
	return v, err
}

// endNoReply ends a mutation that has no reply: the fan-out sends its
// effect (always: the mutation's own change has no reply to ride).
func (se *session) endNoReply() {
	se.mu.Lock()
	se.inflight--
	se.mu.Unlock()
	se.signal()
}

// push sends the session's news as a notification. It never waits for the
// client: when the client has not yet handled the updates already sent, it
// returns an error wrapping rpc2.ErrWouldBlock and the news wait (merged
// into the next diff). A session with a mutation in flight is left alone:
// the update that ends the mutation carries the news.
func (se *session) push() error {
	se.wmu.Lock()
	defer se.wmu.Unlock()
	se.mu.Lock()
	conn, idle := se.conn, se.inflight == 0 && !se.closed
	se.mu.Unlock()
	if conn == nil || !idle {
		return nil
	}
	err := conn.TryNotify(mUpdate, func() any {
		u := new(msgUpdate)
		se.mu.Lock()
		if se.conn == conn && !se.closed {
			se.nextLocked(u)
		}
		se.mu.Unlock()
		if u.version == 0 {
			return nil
		}
		// counted before it is written, so that a client that has it sees
		// it counted
		se.s.calls.Add(1)
		se.s.stats.traffic.pushes.Add(1)
		return u
	})
	if err != nil && !errors.Is(err, rpc2.ErrWouldBlock) {
		// the update waits in the resume buffer for the client's return
		se.s.closeConn(conn)
	}
	return err
}

// attach binds a (re)connected client to the session and queues, on conn,
// the updates that bring it to the current version: the missed ones when it
// resumes from version from, otherwise the full clock. It returns the
// version the client reaches and whether it resumed.
func (se *session) attach(ctx context.Context, conn *rpc2.Conn, resume bool, from uint64) (uint64, bool, error) {
	se.wmu.Lock()
	defer se.wmu.Unlock()
	se.mu.Lock()
	if se.closed {
		se.mu.Unlock()
		return 0, false, ErrStopped
	}
	old := se.conn
	se.conn = conn
	if old == nil {
		se.s.attached.Add(1)
	}
	if se.expiry != nil {
		se.expiry.Stop()
		se.expiry = nil
	}
	var ups []msgUpdate
	resumed := false
	if resume {
		ups, resumed = se.replayLocked(from)
	}
	// the client has everything up to from: forget what it was told
	se.fired = slices.DeleteFunc(se.fired, func(f firedWatch) bool { return f.version <= from })
	var u msgUpdate
	if resumed {
		se.nextLocked(&u)
	} else {
		se.fullLocked(&u, from)
		if resume {
			// answers are events, not state: the full clock doesn't
			// carry those the client missed (they include u's own), so
			// this one is sent with them, not as kept
			u.answers = se.unappliedLocked(from)
			u.raw = nil
		}
	}
	if resume {
		se.appliedLocked(from)
	}
	if u.version != 0 {
		ups = append(ups, u)
	}
	v := se.version
	se.mu.Unlock()
	if old != nil && old != conn {
		// the client came back before its old connection was noticed dead
		se.s.closeConn(old)
	}
	for i := range ups {
		if err := conn.Queue(conn.Context(), mUpdate, &ups[i]); err != nil {
			se.s.closeConn(conn)
			return 0, false, err
		}
	}
	return v, resumed, nil
}

// closeConn closes a connection off the calling goroutine: closing waits
// for the connection's handlers, which may be the caller or be waiting for
// this session's stream.
func (s *Server) closeConn(conn *rpc2.Conn) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		_ = conn.Close()
	}()
}

// detach unbinds conn; the session waits for the client for the resume
// window (then expires), or ends at once without one (expireNow).
func (se *session) detach(conn *rpc2.Conn) (detached, expireNow bool) {
	se.mu.Lock()
	defer se.mu.Unlock()
	if se.conn != conn {
		return false, false
	}
	se.conn = nil
	se.s.attached.Add(-1)
	if se.closed {
		return true, false
	}
	ttl := se.s.opts.sessionTTL
	if ttl <= 0 {
		return true, true
	}
	se.expiry = time.AfterFunc(ttl, func() { se.s.expire(se) })
	return true, false
}

// close ends the session: its watches stop.
func (se *session) close() {
	se.mu.Lock()
	closed := se.closeLocked()
	se.mu.Unlock()
	if closed {
		se.finishClose()
	}
}

// closeLocked marks the session closed, so that no connection attaches to
// it any more, and stops its expiry and its watches. It reports whether
// this call closed it; then the caller runs finishClose after unlocking se.mu.
func (se *session) closeLocked() bool {
	if se.closed {
		return false
	}
	se.closed = true
	if se.expiry != nil {
		se.expiry.Stop()
		se.expiry = nil
	}
	for id, cancel := range se.watches {
		cancel()
		delete(se.watches, id)
	}
	return true
}

// finishClose is the rest of closing, done without se.mu: the session's
// context ends and its requests are abandoned.
func (se *session) finishClose() {
	se.cancel()
	se.s.requestsEnded(se)
}

// expire ends a session whose client did not come back in time. Finding
// the session without a connection and closing it is one step under se.mu:
// a client that resumes it meanwhile either attaches first (the session
// lives on) or finds it closed and gets a new one. Were the two steps apart,
// a resume could attach to a session about to close, and the client would
// be served from a dead session: its mutations would run and reply with a
// version it already had, their updates never sent.
func (s *Server) expire(se *session) {
	se.mu.Lock()
	gone := se.conn == nil && se.closeLocked()
	se.mu.Unlock()
	if !gone {
		return
	}
	if testHookExpiring != nil {
		testHookExpiring(se)
	}
	s.mu.Lock()
	if s.sessions[se.id] == se {
		s.removeSessionLocked(se)
	}
	s.mu.Unlock()
	se.finishClose()
}

// testHookExpiring, when set by a test, runs in expire after the session
// was found gone and before it leaves the server's table.
var testHookExpiring func(*session)

// onDisconnect detaches the session of a closed connection.
func (s *Server) onDisconnect(conn *rpc2.Conn, _ error) {
	se, _ := conn.Value(sessionKey).(*session)
	if se == nil {
		return
	}
	detached, expireNow := se.detach(conn)
	if expireNow {
		s.expire(se)
	}
	if detached {
		s.syncConnected()
		s.Mach.Add1(ss.ClientDisconnected, am.A{"id": se.clientID})
	}
}
