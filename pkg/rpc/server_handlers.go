package rpc

import (
	"context"
	"errors"
	"fmt"
	"slices"

	am "github.com/arpc-go/arpc/pkg/machine"
	"github.com/arpc-go/arpc/pkg/rpc2"
	ss "github.com/arpc-go/arpc/states/server"
)

// Error codes of Layer 2, carried by rpc2.Error. Codes below 100 are rpc2's.
const (
	// CodeInvalidParams is a request naming unknown states or carrying
	// malformed arguments.
	CodeInvalidParams rpc2.Code = 100 + iota
	// CodeSchemaMismatch is a refused handshake.
	CodeSchemaMismatch
	// CodeNoSession is a request sent before the handshake.
	CodeNoSession
	// CodeNoGetter is a Get on a server without a getter.
	CodeNoGetter
	// CodeTooManyWatches is a WhenArgs beyond the session's limit.
	CodeTooManyWatches
	// CodeProtoVersion is a handshake of an unsupported protocol version.
	CodeProtoVersion
	// CodeStopped is a request refused because the server is shutting
	// down; a refused mutation did not run.
	CodeStopped
	// CodeTooManyPending is a mutation refused because its session keeps
	// too many unacknowledged results (WithMaxPending); it did not run.
	CodeTooManyPending
	// CodeTooManyRequests is a request refused because its session has too
	// many requests in flight (WithMaxRequests); it did not run.
	CodeTooManyRequests
)

// registry builds the server's handler table.
func (s *Server) registry() (*rpc2.Registry, error) {
	r := rpc2.NewRegistry()
	return r, errors.Join(
		// Ordered: handshakes of one connection run one at a time
		handle(s, r, mHandshake, "Handshake", s.handleHandshake, rpc2.Ordered()),
		handle(s, r, mMutate, "Mutate", s.handleMutate, rpc2.Detached()),
		handle(s, r, mMutateGob, "MutateGob", s.handleMutateGob, rpc2.Detached()),
		handle(s, r, mMutateNS, "MutateNS", s.handleMutateNS),
		handle(s, r, mMutateNSGob, "MutateNSGob", s.handleMutateNSGob),
		handle(s, r, mSync, "Sync", s.handleSync),
		handle(s, r, mGet, "Get", s.handleGet),
		handle(s, r, mLog, "Log", s.handleLog),
		handle(s, r, mBye, "Bye", s.handleBye, rpc2.Inline()),
		handle(s, r, mWatchArgs, "WatchArgs", s.handleWatchArgs),
		handle(s, r, mUnwatchArgs, "UnwatchArgs", s.handleUnwatchArgs),
		handle(s, r, mRequest, "Request", s.handleRequest, rpc2.Detached()),
		handle(s, r, mUnrequest, "Unrequest", s.handleUnrequest, rpc2.Ordered()),
		handle(s, r, mDescribe, "Describe", s.handleDescribe),
		handle(s, r, mStats, "Stats", s.handleStats),
		handle(s, r, mActiveArgs, "ActiveArgs", s.handleActiveArgs),
	)
}

func codeErr(code rpc2.Code, format string, args ...any) error {
	return &rpc2.Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

func sessionOf(c *rpc2.Conn) (*session, error) {
	se, _ := c.Value(sessionKey).(*session)
	if se == nil {
		return nil, codeErr(CodeNoSession, "no session: handshake first")
	}
	return se, nil
}

func (s *Server) handleHandshake(
	ctx context.Context, c *rpc2.Conn, m *msgHandshake, resp *respHandshake,
) error {
	if c.Value(sessionKey) != nil {
		return codeErr(CodeInvalidParams, "session already established")
	}
	// who the peer is, before anything else about the server is told
	identity, g, err := s.admit(ctx, c, m)
	if err != nil {
		return err
	}
	if m.ProtoVersion != protoVersion {
		return codeErr(CodeProtoVersion, "protocol version %d not supported (want %d)",
			m.ProtoVersion, protoVersion)
	}
	if !slices.Equal(m.Names, s.names) {
		return codeErr(CodeSchemaMismatch, "%s", namesDiff(m.Names, s.names))
	}
	if m.SchemaHash != s.hash {
		return codeErr(CodeSchemaMismatch, "%s", s.relationsDiff(m))
	}
	follow, err := s.syncMask(m.Sync)
	if err != nil {
		return err
	}
	if s.stopping.Load() {
		return codeErr(CodeStopped, "server %s is shutting down", s.id)
	}
	s.handshakeBegin()
	defer s.handshakeEnd()
	var (
		se               *session
		version          uint64
		resumed, created bool
	)
	resume := m.Session != "" && m.Epoch == s.epoch
	for {
		se = nil
		s.mu.Lock()
		if resume {
			if old := s.sessions[m.Session]; old != nil && old.clientID == m.ClientID && old.identity == identity {
				se = old
			}
		}
		created = se == nil
		if created {
			if err := s.sessionRoomLocked(identity); err != nil {
				s.mu.Unlock()
				s.refuse(c)
				return err
			}
			se = s.newSession(m.ClientID)
			se.identity, se.grant = identity, g
			se.follow(follow)
			s.addSessionLocked(se)
			s.fan.start()
		}
		s.mu.Unlock()
		var err error
		version, resumed, err = se.attach(ctx, c, resume && !created, m.Version)
		if err == nil {
			break
		}
		s.abortAttach(se, c, created)
		if created || !errors.Is(err, ErrStopped) || s.stopping.Load() {
			return err
		}
		// the session ended after the lookup (its old connection's end
		// expired it): the client gets a new one, as for an unknown session
		resume = false
	}
	c.SetValue(sessionKey, se)
	c.SetValue(identityKey, identity)
	c.Ungate()
	resp.MachineID = s.source.ID
	resp.Session = se.id
	resp.Epoch = s.epoch
	resp.Version = version
	resp.Resumed = resumed
	s.syncConnected()
	s.stats.traffic.handshakes.Add(1)
	s.Mach.Add1(ss.ClientConnected, am.A{"id": m.ClientID, "identity": identity})
	return nil
}

// handshakeBegin counts a handshake in progress: Handshaking is active
// while there is one.
func (s *Server) handshakeBegin() {
	s.hmu.Lock()
	defer s.hmu.Unlock()
	s.handshakes++
	if s.handshakes == 1 {
		s.Mach.Add1(ss.Handshaking, nil)
	}
}

func (s *Server) handshakeEnd() {
	s.hmu.Lock()
	defer s.hmu.Unlock()
	s.handshakes--
	if s.handshakes == 0 {
		s.Mach.Remove1(ss.Handshaking, nil)
	}
}

// syncConnected makes HandshakeDone say whether a client is connected (on
// a v0.7 server, which served one client, it meant that client was).
func (s *Server) syncConnected() {
	s.hmu.Lock()
	defer s.hmu.Unlock()
	if s.attached.Load() > 0 {
		s.Mach.Add1(ss.HandshakeDone, nil)
	} else {
		s.Mach.Remove1(ss.HandshakeDone, nil)
	}
}

// mutate runs one mutation of a session and fills its reply. The update
// that carries the mutation's effect is queued right before the reply
// (reply) or sent as a push (a notification has no reply). A retried
// request ID runs nothing: it gets the first attempt's answer.
func (s *Server) mutate(ctx context.Context, c *rpc2.Conn, se *session, m *msgMutate, resp *respResult, reply bool) error {
	if err := s.mayMutate(se, m); err != nil {
		return err
	}
	// the update goes right before the reply if the reply goes on the
	// session's current connection
	var replyConn *rpc2.Conn
	if reply {
		replyConn = c
	}
	se.mu.Lock()
	se.res.ack(m.Ack)
	e, isNew, err := se.res.begin(m.ReqID)
	if err == nil {
		se.inflight++
	}
	se.mu.Unlock()
	if err != nil {
		return err
	}
	if !isNew {
		r, err := e.wait(ctx)
		if err != nil {
			_, _ = se.flush(ctx, replyConn, true)
			return err
		}
		*resp = r
		// the client may not have the update with this effect yet (it was
		// lost with an earlier connection): the flush sends what is missing
		_, _ = se.flush(ctx, replyConn, true)
		return nil
	}
	if err := s.beginMutation(); err != nil {
		se.mu.Lock()
		se.res.forget(m.ReqID)
		se.mu.Unlock()
		e.err = err
		close(e.done)
		_, _ = se.flush(ctx, replyConn, true)
		return err
	}
	// The mutation is canceled when the client cancels the call, not when
	// its connection drops: the client may come back and ask for the
	// outcome, so it runs to the end. A request's ctx is that already (its
	// method is rpc2.Detached); a notification's is the connection's, and
	// its sender can't cancel it.
	mctx := ctx
	if !reply {
		mctx = context.WithoutCancel(ctx)
	}
	ran := s.runMutation(mctx, m, resp)
	if ran {
		s.stats.traffic.mutation(resp)
	}
	s.endMutation()
	if !ran {
		// dropped before it started (its caller gave up): forget it, so a
		// retry runs it
		se.mu.Lock()
		se.res.forget(m.ReqID)
		se.mu.Unlock()
		e.err = codeErr(rpc2.CodeCanceled, "request %d was canceled before it ran: send it again", m.ReqID)
	}
	if reply {
		resp.version, _ = se.flush(ctx, replyConn, true)
	} else {
		// a notification's effect travels with the next push, so a batch
		// of them costs one update
		se.endNoReply()
	}
	e.resp, e.ran = *resp, ran
	close(e.done)
	return nil
}

// runMutation runs a mutation on the source and tells whether it ran. Bad
// input fails this call only: the source never sees it.
func (s *Server) runMutation(ctx context.Context, m *msgMutate, resp *respResult) (ran bool) {
	names, err := s.stateNames(m.States)
	switch {
	case m.Type > mutAddErr:
		resp.result, resp.code, resp.errMsg = am.Canceled, outInvalid, fmt.Sprintf("unknown mutation type %d", m.Type)
		return true
	case err != nil:
		resp.result, resp.code, resp.errMsg = am.Canceled, outInvalid, err.Error()
		return true
	case m.Cond != nil && m.Type == mutAddErr:
		resp.result, resp.code, resp.errMsg = am.Canceled, outInvalid, "a precondition on AddErr"
		return true
	case m.Type == mutAddErr:
		resp.result = s.addErr(ctx, names, m.Err, m.Args)
		return true
	}
	res, err := s.sourceMutate(ctx, m, names)
	resp.result = res
	if err == nil {
		return true
	}
	resp.code, resp.errMsg = outcomeOf(err), err.Error()
	if len(resp.errMsg) > s.opts.maxErrText {
		resp.errMsg = resp.errMsg[:s.opts.maxErrText]
	}
	return !errors.Is(err, am.ErrDropped)
}

// outcomeOf classifies the source's mutation error for the wire.
func outcomeOf(err error) byte {
	switch {
	case errors.Is(err, am.ErrPrecondition):
		return outPrecondition
	case errors.Is(err, am.ErrHandlerTimeout):
		return outHandlerTimeout
	case errors.Is(err, am.ErrCanceled):
		return outCanceled
	case errors.Is(err, am.ErrQueueFull):
		return outQueueFull
	case errors.Is(err, am.ErrDisposed):
		return outDisposed
	case errors.Is(err, am.ErrStateUnknown), errors.Is(err, am.ErrInvalidArgs):
		return outInvalid
	}
	return outOther
}

// addErr runs AddErrState on the source and waits for its queue to drain.
func (s *Server) addErr(ctx context.Context, names am.S, err error, args am.A) am.Result {
	if len(names) == 0 {
		names = am.S{am.Exception}
	}
	if err == nil {
		err = &RemoteError{Msg: "unknown error"}
	}
	res := s.source.AddErrState(names[0], err, args)
	if res == am.Queued {
		select {
		case <-s.source.WhenQueueEnds(ctx):
		case <-ctx.Done():
			return am.Canceled
		}
		if s.source.Is(am.S{names[0], am.Exception}) {
			return am.Executed
		}
		return am.Canceled
	}
	return res
}

func (s *Server) handleMutate(ctx context.Context, c *rpc2.Conn, m *msgMutate, resp *respResult) error {
	se, err := sessionOf(c)
	if err != nil {
		return err
	}
	return s.mutate(ctx, c, se, m, resp, true)
}

func (s *Server) handleMutateGob(ctx context.Context, c *rpc2.Conn, m *MsgMutateGob, resp *respResult) error {
	se, err := sessionOf(c)
	if err != nil {
		return err
	}
	return s.mutate(ctx, c, se, m.toBinary(), resp, true)
}

func (s *Server) handleMutateNS(ctx context.Context, c *rpc2.Conn, m *msgMutate, _ *Empty) error {
	se, err := sessionOf(c)
	if err != nil {
		return err
	}
	var resp respResult
	return s.mutate(ctx, c, se, m, &resp, false)
}

func (s *Server) handleMutateNSGob(ctx context.Context, c *rpc2.Conn, m *MsgMutateGob, e *Empty) error {
	return s.handleMutateNS(ctx, c, m.toBinary(), e)
}

// handleSync sends what changed right away and replies with the version the
// client reaches with it.
func (s *Server) handleSync(ctx context.Context, c *rpc2.Conn, _ *Empty, resp *wireUint) error {
	se, err := sessionOf(c)
	if err != nil {
		return err
	}
	resp.v, err = se.flush(ctx, c, false)
	return err
}

func (s *Server) handleGet(_ context.Context, c *rpc2.Conn, name *wireString, resp *RespGet) error {
	if _, err := sessionOf(c); err != nil {
		return err
	}
	if s.getter == nil {
		return codeErr(CodeNoGetter, "server %s has no getter", s.id)
	}
	resp.Value = s.getter(name.s)
	return nil
}

func (s *Server) handleLog(_ context.Context, c *rpc2.Conn, msg *wireString, _ *Empty) error {
	se, err := sessionOf(c)
	if err != nil {
		return err
	}
	s.source.Log("[%s] %s", se.clientID, msg.s)
	return nil
}

// handleBye notes an orderly goodbye: the client won't resume, so its
// session ends now; the peer closes the connection next.
func (s *Server) handleBye(_ context.Context, c *rpc2.Conn, _ *Empty, _ *Empty) error {
	if se, _ := c.Value(sessionKey).(*session); se != nil {
		s.mu.Lock()
		if s.sessions[se.id] == se {
			s.removeSessionLocked(se)
		}
		s.mu.Unlock()
		se.close()
	}
	return nil
}

func (s *Server) handleWatchArgs(_ context.Context, c *rpc2.Conn, m *MsgWatchArgs, _ *Empty) error {
	se, err := sessionOf(c)
	if err != nil {
		return err
	}
	names, err := s.stateNames([]int{m.State})
	if err != nil {
		return codeErr(CodeInvalidParams, "%v", err)
	}
	if err := s.mayObserve(se, m.State); err != nil {
		return err
	}
	se.mu.Lock()
	if len(se.watches) >= s.opts.maxWatches {
		se.mu.Unlock()
		return codeErr(CodeTooManyWatches, "more than %d watches", s.opts.maxWatches)
	}
	if _, dup := se.watches[m.ID]; dup {
		se.mu.Unlock()
		return codeErr(CodeInvalidParams, "watch %d exists", m.ID)
	}
	// a watch lives with the session, across reconnections
	ctx, cancel := context.WithCancel(se.ctx)
	se.watches[m.ID] = cancel
	s.wg.Add(1)
	se.mu.Unlock()

	ch := s.source.WhenArgs(names[0], m.Args, ctx)
	go func() {
		defer s.wg.Done()
		defer cancel()
		select {
		case <-ch:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			return
		}
		// report the match once the transition's clock is in the tracer
		select {
		case <-s.source.WhenQueueEnds(ctx):
		case <-ctx.Done():
			return
		}
		se.mu.Lock()
		delete(se.watches, m.ID)
		se.matched = append(se.matched, m.ID)
		se.mu.Unlock()
		se.signal()
	}()
	return nil
}

func (s *Server) handleUnwatchArgs(_ context.Context, c *rpc2.Conn, id *wireUint, _ *Empty) error {
	se, err := sessionOf(c)
	if err != nil {
		return err
	}
	se.mu.Lock()
	if cancel, ok := se.watches[id.v]; ok {
		cancel()
		delete(se.watches, id.v)
	}
	se.mu.Unlock()
	return nil
}

func (m *MsgMutateGob) toBinary() *msgMutate {
	b := &msgMutate{Type: m.Type, ReqID: m.ReqID, Ack: m.Ack, States: m.States, Args: m.Args}
	if m.Type&condFlag != 0 {
		b.Type &^= condFlag
		b.Cond = gobCond(m.Cond)
	}
	if m.HasErr {
		b.Err = &RemoteError{Msg: m.ErrMsg}
	}
	return b
}
