package arpcnats

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	am "github.com/arpc-go/arpc/pkg/machine"
	"github.com/arpc-go/arpc/pkg/rpc"
	"github.com/nats-io/nats.go"
)

// maxRequests bounds the requests one leader waits on at a time.
const maxRequests = 4096

// reqMsg is a request on arpc.<id>.req: add State with Args and a
// correlation id, answer with the args of Until's activation that carries
// it (see rpc.Request).
type reqMsg struct {
	State   string         `json:"s"`
	Until   string         `json:"u"`
	Args    map[string]any `json:"a,omitempty"`
	Timeout int64          `json:"to"` // ms
}

type reqResp struct {
	Args   map[string]any `json:"a,omitempty"`
	Code   string         `json:"c,omitempty"`
	Msg    string         `json:"m,omitempty"`
	Update []byte         `json:"u,omitempty"`
}

// onRequest starts a request: rpc.Request on the source, in a goroutine
// of the term (bounded by maxRequests and by the caller's deadline).
func (s *Server) onRequest(t *term, msg *nats.Msg) {
	if msg.Reply == "" || !t.gate.enter() {
		return
	}
	defer t.gate.exit()
	respond := func(r *reqResp) {
		b, err := json.Marshal(r)
		if err != nil {
			b, _ = json.Marshal(&reqResp{Code: codeError, Msg: "answer not serialisable: " + err.Error()})
		}
		_ = msg.Respond(b)
	}
	var req reqMsg
	dec := json.NewDecoder(bytes.NewReader(msg.Data))
	dec.UseNumber()
	if len(msg.Data) > s.opts.maxRequest || dec.Decode(&req) != nil || req.Timeout <= 0 {
		respond(&reqResp{Code: codeInvalid, Msg: "malformed request"})
		return
	}
	select {
	case t.reqSem <- struct{}{}:
	default:
		respond(&reqResp{Code: codeQueueFull, Msg: "too many requests in flight"})
		return
	}
	args := am.A(req.Args)
	for k, v := range args {
		args[k] = plainNumber(v)
	}
	timeout := min(time.Duration(req.Timeout)*time.Millisecond, 10*time.Minute)
	t.wg.Add(1)
	t.reqs.Add(1)
	go func() {
		defer t.wg.Done()
		defer t.reqs.Done()
		defer func() { <-t.reqSem }()
		ctx, cancel := context.WithTimeout(t.ctx, timeout)
		defer cancel()
		ans, err := rpc.Request(ctx, s.source, req.State, args, req.Until)
		r := &reqResp{Args: ans, Code: codeOf(err)}
		if err != nil {
			r.Msg = err.Error()
			if errors.Is(err, context.DeadlineExceeded) {
				r.Code = codeTimeout
			}
		}
		et := s.errText()
		s.mu.Lock()
		r.Update = appendUpdate(nil, s.snapshotLocked(et))
		s.mu.Unlock()
		s.signal()
		respond(r)
	}()
}

var _ rpc.Requester = (*Mirror)(nil)

// Request adds state on the source with args plus a fresh correlation id
// and returns the args of the first activation of until that carries the
// same id, as rpc.Request does on a local machine (the leader runs exactly
// that): the source's handler reads the id with rpc.CorrelationID and
// answers by adding until with rpc.Correlated(id, ...), at once or later.
// This is the HTTP → queue → HTTP pattern over NATS in one call. It makes
// rpc.Request(ctx, mirror, ...) work on a Mirror, as on an rpc.Worker.
//
// ctx's deadline (30s without one) travels with the request: the leader
// stops waiting then. Args and the answer travel as JSON. Errors:
// am.ErrStateUnknown (nothing sent), ErrNoServer, ErrArgs, ctx.Err(),
// am.ErrHandlerTimeout (the leader's wait timed out), am.ErrCanceled (a
// veto), am.ErrQueueFull (the leader waits on too many requests). A
// request runs at most once: it is not retried.
func (m *Mirror) Request(ctx context.Context, state string, args am.A, until string) (am.A, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	if m.disposed.Load() {
		return nil, am.ErrDisposed
	}
	for _, s := range []string{state, until} {
		if m.Index(s) < 0 {
			return nil, fmt.Errorf("%w: %s", am.ErrStateUnknown, s)
		}
	}
	timeout := 30 * time.Second
	if d, ok := ctx.Deadline(); ok {
		timeout = time.Until(d)
	}
	if timeout <= 0 {
		return nil, context.DeadlineExceeded
	}
	body, err := json.Marshal(&reqMsg{State: state, Until: until, Args: args, Timeout: max(timeout.Milliseconds(), 1)})
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrArgs, err)
	}
	rctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	msg, err := m.nc.RequestWithContext(rctx, subjReq(m.id), body)
	switch {
	case err == nil:
	case errors.Is(err, nats.ErrNoResponders):
		return nil, fmt.Errorf("%w: %s", ErrNoServer, m.id)
	case ctx.Err() != nil:
		return nil, ctx.Err()
	default:
		return nil, fmt.Errorf("%w: %v", ErrTransport, err)
	}
	var r reqResp
	dec := json.NewDecoder(bytes.NewReader(msg.Data))
	dec.UseNumber()
	if err := dec.Decode(&r); err != nil {
		return nil, fmt.Errorf("%w: malformed reply: %v", ErrTransport, err)
	}
	if u, derr := decodeUpdate(r.Update, m.n); derr == nil {
		m.apply(u)
	}
	if err := errOf(r.Code, r.Msg); err != nil {
		return nil, err
	}
	ans := am.A(r.Args)
	for k, v := range ans {
		ans[k] = plainNumber(v)
	}
	return ans, nil
}
