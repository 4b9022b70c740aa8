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
)

// registry builds the server's handler table.
func (s *Server) registry() (*rpc2.Registry, error) {
	r := rpc2.NewRegistry()
	return r, errors.Join(
		rpc2.HandleFunc(r, mHandshake, "Handshake", s.handleHandshake),
		rpc2.HandleFunc(r, mMutate, "Mutate", s.handleMutate),
		rpc2.HandleFunc(r, mMutateGob, "MutateGob", s.handleMutateGob),
		rpc2.HandleFunc(r, mMutateNS, "MutateNS", s.handleMutateNS),
		rpc2.HandleFunc(r, mMutateNSGob, "MutateNSGob", s.handleMutateNSGob),
		rpc2.HandleFunc(r, mSync, "Sync", s.handleSync),
		rpc2.HandleFunc(r, mGet, "Get", s.handleGet),
		rpc2.HandleFunc(r, mLog, "Log", s.handleLog),
		rpc2.HandleFunc(r, mBye, "Bye", s.handleBye),
		rpc2.HandleFunc(r, mWatchArgs, "WatchArgs", s.handleWatchArgs),
		rpc2.HandleFunc(r, mUnwatchArgs, "UnwatchArgs", s.handleUnwatchArgs),
	)
}

func codeErr(code rpc2.Code, format string, args ...any) error {
	return &rpc2.Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

func sessionOf(c *rpc2.Conn) (*session, error) {
	se, _ := c.Value(sessionKey).(*session)
	if se == nil || !se.ready.Load() {
		return nil, codeErr(CodeNoSession, "no session: handshake first")
	}
	return se, nil
}

func (s *Server) handleHandshake(
	_ context.Context, c *rpc2.Conn, m *msgHandshake, resp *respHandshake,
) error {
	if m.ProtoVersion != protoVersion {
		return codeErr(CodeProtoVersion, "protocol version %d not supported (want %d)",
			m.ProtoVersion, protoVersion)
	}
	if !slices.Equal(m.Names, s.names) {
		return codeErr(CodeSchemaMismatch, "state names differ: client %v, server %v",
			m.Names, s.names)
	}
	if m.SchemaHash != s.hash {
		return codeErr(CodeSchemaMismatch, "schema hash differs: client %x, server %x",
			m.SchemaHash, s.hash)
	}
	if c.Value(sessionKey) != nil {
		return codeErr(CodeInvalidParams, "session already established")
	}
	se := newSession(s, c, m.ClientID)
	se.mu.Lock()
	s.tracer.snapshot(se.base, se.baseExits)
	se.version = 1
	resp.MachineID = s.source.ID
	resp.Version = se.version
	resp.Time = slices.Clone(se.base)
	resp.Exits = slices.Clone(se.baseExits)
	if err := s.source.Err(); err != nil {
		se.errSent = err
		resp.Err = &wireErr{Msg: err.Error()}
	}
	se.mu.Unlock()

	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		return ErrStopped
	}
	s.sessions[se] = struct{}{}
	c.SetValue(sessionKey, se)
	se.ready.Store(true)
	s.wg.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.wg.Done()
		se.pusher(c.Context())
	}()
	s.Mach.Add1(ss.ClientConnected, am.A{"id": m.ClientID})
	return nil
}

// mutate runs one mutation of a session and fills its reply; with diff, also
// the reply's clock diff (a notification has no reply: the pusher sends it).
func (s *Server) mutate(ctx context.Context, se *session, m *msgMutate, resp *respResult, diff bool) {
	if se.begin(m.ReqID, resp) {
		se.end(0, resp, diff)
		return
	}
	names, err := s.stateNames(m.States)
	switch {
	case err != nil:
		resp.result, resp.errMsg = am.Canceled, err.Error()
	case m.Type == mutAddErr:
		resp.result = s.addErr(ctx, names, m.Err, m.Args)
	case m.Type > mutSet:
		resp.result, resp.errMsg = am.Canceled, fmt.Sprintf("unknown mutation type %d", m.Type)
	default:
		res, err := s.source.Mutate(ctx, am.MutationType(m.Type), names, m.Args)
		resp.result = res
		if err != nil {
			resp.errMsg = err.Error()
		}
	}
	se.end(m.ReqID, resp, diff)
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
	s.mutate(ctx, se, m, resp, true)
	return nil
}

func (s *Server) handleMutateGob(ctx context.Context, c *rpc2.Conn, m *MsgMutateGob, resp *respResult) error {
	se, err := sessionOf(c)
	if err != nil {
		return err
	}
	s.mutate(ctx, se, m.toBinary(), resp, true)
	return nil
}

func (s *Server) handleMutateNS(ctx context.Context, c *rpc2.Conn, m *msgMutate, _ *Empty) error {
	se, err := sessionOf(c)
	if err != nil {
		return err
	}
	var resp respResult
	s.mutate(ctx, se, m, &resp, false)
	// the changes travel with the next push
	se.signal()
	return nil
}

func (s *Server) handleMutateNSGob(ctx context.Context, c *rpc2.Conn, m *MsgMutateGob, e *Empty) error {
	return s.handleMutateNS(ctx, c, m.toBinary(), e)
}

func (s *Server) handleSync(_ context.Context, c *rpc2.Conn, _ *Empty, resp *respSync) error {
	se, err := sessionOf(c)
	if err != nil {
		return err
	}
	se.mu.Lock()
	defer se.mu.Unlock()
	s.tracer.snapshot(se.base, se.baseExits)
	se.version++
	resp.version = se.version
	resp.time = slices.Clone(se.base)
	resp.exits = slices.Clone(se.baseExits)
	if err := s.source.Err(); err != nil {
		se.errSent = err
		resp.err = &wireErr{Msg: err.Error()}
	}
	return nil
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

// handleBye notes an orderly goodbye: the peer closes the connection next,
// and the session ends with it.
func (s *Server) handleBye(_ context.Context, c *rpc2.Conn, _ *Empty, _ *Empty) error {
	if se, _ := c.Value(sessionKey).(*session); se != nil {
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
	se.mu.Lock()
	if len(se.watches) >= s.opts.maxWatches {
		se.mu.Unlock()
		return codeErr(CodeTooManyWatches, "more than %d watches", s.opts.maxWatches)
	}
	if _, dup := se.watches[m.ID]; dup {
		se.mu.Unlock()
		return codeErr(CodeInvalidParams, "watch %d exists", m.ID)
	}
	ctx, cancel := context.WithCancel(c.Context())
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
	b := &msgMutate{Type: m.Type, ReqID: m.ReqID, States: m.States, Args: m.Args}
	if m.HasErr {
		b.Err = &RemoteError{Msg: m.ErrMsg}
	}
	return b
}
