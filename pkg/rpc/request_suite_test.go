package rpc_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	am "github.com/arpc-go/arpc/pkg/machine"
	"github.com/arpc-go/arpc/pkg/rpc"
	"github.com/arpc-go/arpc/pkg/rpc/rpctest"
	ssC "github.com/arpc-go/arpc/states/client"
)

// requestTarget builds the machine a request suite runs against: the source
// itself, or a mirror of it.
type requestTarget struct {
	name string
	mk   func(t *testing.T, src *am.Machine) am.Api
}

var requestTargets = []requestTarget{
	{"local", func(t *testing.T, src *am.Machine) am.Api { return src }},
	{"remote", func(t *testing.T, src *am.Machine) am.Api {
		return newReqClient(t, rpctest.NewServer(t, src)).Worker
	}},
}

// TestRequestSuite runs the same behaviour through rpc.Request against a
// local machine and a remote mirror: code written for one works on the
// other.
func TestRequestSuite(t *testing.T) {
	for _, tg := range requestTargets {
		t.Run(tg.name, func(t *testing.T) {
			a := newAnswerer(4)
			src := newReqSource(t, a)
			api := tg.mk(t, src)
			ctx, cancel := context.WithTimeout(context.Background(), deadline)
			defer cancel()

			// answered inside the handler
			res, err := rpc.Request(ctx, api, sReq, am.A{"mode": modeSync, "n": 3}, sDone)
			require.NoError(t, err)
			assert.Equal(t, 6, res["result"])
			assert.True(t, api.Is1(sDone))

			// answered later, from another goroutine
			replied := api.WhenTicks(sReq, 1, ctx)
			go func() {
				id := recvAsked(t, a.later, "the request's ID").id
				<-replied
				src.Add1(sDone, answerArgs(id, 4))
			}()
			res, err = rpc.Request(ctx, api, sReq, am.A{"mode": modeLater}, sDone)
			require.NoError(t, err)
			assert.Equal(t, 8, res["result"])

			// never answered: ctx.Err() within 50 ms of the deadline
			short, cancelShort := context.WithTimeout(ctx, 50*time.Millisecond)
			defer cancelShort()
			dl, _ := short.Deadline()
			_, err = rpc.Request(short, api, sReq, am.A{"mode": modeNever}, sDone)
			require.ErrorIs(t, err, context.DeadlineExceeded)
			assert.Less(t, time.Since(dl), 50*time.Millisecond)
			recv(t, a.never, "the unanswered request")

			// a vetoed Add, unknown states
			_, err = rpc.Request(ctx, api, sReq, am.A{"veto": true}, sDone)
			require.ErrorIs(t, err, am.ErrCanceled)
			tick := src.Tick(sReq)
			_, err = rpc.Request(ctx, api, "Nope", nil, sDone)
			require.ErrorIs(t, err, am.ErrStateUnknown)
			_, err = rpc.Request(ctx, api, sReq, nil, "Nope")
			require.ErrorIs(t, err, am.ErrStateUnknown)
			assert.Equal(t, tick, src.Tick(sReq), "nothing was added")

			// the wait helper on the same target
			require.NoError(t, am.WaitFor(ctx, api, sDone))
			require.ErrorIs(t, am.WaitFor(short, api, sIdle), context.DeadlineExceeded)
		})
	}
}

// TestRequestLocalEdges: a local request leaves no tracer behind, can't be
// made from the machine's own handler, and ends with the machine.
func TestRequestLocalEdges(t *testing.T) {
	a := newAnswerer(4)
	src := newReqSource(t, a)
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	tracers := len(src.Tracers)
	_, err := rpc.Request(ctx, src, sReq, am.A{"mode": modeSync, "n": 1}, sDone)
	require.NoError(t, err)
	assert.Len(t, src.Tracers, tracers, "the request's watch is gone")

	// from a handler of the machine itself
	inHandler := make(chan error, 1)
	h := &selfRequester{errc: inHandler}
	m := am.New(context.Background(), am.Struct{"Go": {}, sReq: {Multi: true}, sDone: {Multi: true}}, nil)
	require.NoError(t, m.BindHandlers(h))
	m.Add1("Go", nil)
	select {
	case err := <-inHandler:
		require.ErrorIs(t, err, am.ErrInvalidArgs)
	case <-ctx.Done():
		t.Fatal("Request from a handler did not fail at once")
	}

	// disposal ends the wait
	requested := m.WhenTicks(sReq, 1, ctx)
	errc := make(chan error, 1)
	go func() {
		_, err := rpc.Request(ctx, m, sReq, nil, sDone)
		errc <- err
	}()
	<-requested
	m.Dispose()
	waitCh(t, m.WhenDisposed(), "disposal")
	select {
	case err := <-errc:
		require.ErrorIs(t, err, am.ErrDisposed)
	case <-ctx.Done():
		t.Fatal("Request did not end with the machine")
	}
	_, err = rpc.Request(ctx, m, sReq, nil, sDone)
	require.ErrorIs(t, err, am.ErrDisposed)
}

// selfRequester makes a request of its own machine from a handler.
type selfRequester struct{ errc chan error }

func (s *selfRequester) GoState(e *am.Event) {
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	_, err := rpc.Request(ctx, e.Machine, sReq, nil, sDone)
	s.errc <- err
}

// unsendable is not registered with gob (point, of remote_test.go, is:
// an argument without a binary encoding, it travels as gob).
type unsendable struct{ A int }

// gobAnswerer answers with what the request asked for.
type gobAnswerer struct{}

func (gobAnswerer) ReqState(e *am.Event) {
	id := rpc.CorrelationID(e.Args)
	switch p := e.Args["p"].(type) {
	case point:
		e.Machine.Add1(sDone, rpc.Correlated(id, am.A{"p": point{p.Y, p.X}}))
	default:
		e.Machine.Add1(sDone, rpc.Correlated(id, am.A{"p": unsendable{1}}))
	}
}

// TestRequestGobArgs: arguments without a binary encoding travel as gob
// both ways; an answer that can't be encoded fails its request alone.
func TestRequestGobArgs(t *testing.T) {
	src := am.New(context.Background(), reqStruct(), &am.Opts{ID: "gob-src"})
	require.NoError(t, src.VerifyStates(reqNames))
	require.NoError(t, src.BindHandlers(&gobAnswerer{}))
	t.Cleanup(func() { src.Dispose(); <-src.WhenDisposed() })
	srv := rpctest.NewServer(t, src)
	c := newReqClient(t, srv)
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()

	res, err := c.Worker.Request(ctx, sReq, am.A{"p": point{1, 2}}, sDone)
	require.NoError(t, err)
	assert.Equal(t, point{2, 1}, res["p"])

	_, err = c.Worker.Request(ctx, sReq, am.A{"p": 1}, sDone)
	var re *rpc.RemoteError
	require.True(t, errors.As(err, &re), "got %v", err)
	assert.Contains(t, re.Msg, "can't be sent")

	// the connection is fine
	res, err = c.Worker.Request(ctx, sReq, am.A{"p": point{3, 4}}, sDone)
	require.NoError(t, err)
	assert.Equal(t, point{4, 3}, res["p"])

	// a request argument that can't be encoded fails locally
	_, err = c.Worker.Request(ctx, sReq, am.A{"p": unsendable{2}}, sDone)
	require.ErrorIs(t, err, rpc.ErrInvalidParams)
}

// TestRequestAcrossReconnect: an answer given while the client is away
// reaches it once it resumes its session; a session the server lost fails
// the request, since no answer can come.
func TestRequestAcrossReconnect(t *testing.T) {
	t.Run("resumed", func(t *testing.T) {
		a := newAnswerer(4)
		src := newReqSource(t, a)
		srv := rpctest.NewServer(t, src)
		keeper := &connKeeper{}
		c := newReqClient(t, srv, rpc.WithDialer(keeper.dial),
			rpc.WithReconnect(true, time.Millisecond, 10*time.Millisecond))
		ctx, cancel := context.WithTimeout(context.Background(), deadline)
		defer cancel()
		type result struct {
			res am.A
			err error
		}
		done := make(chan result, 1)
		go func() {
			res, err := c.Worker.Request(ctx, sReq, am.A{"mode": modeLater}, sDone)
			done <- result{res, err}
		}()
		asked := recvAsked(t, a.later, "the request")
		eventually(t, func() bool { return srv.PendingRequests() == 1 }, "the request waits on the server")
		eventually(t, func() bool { return rpc.AwaitingAnswers(c.Worker) == 1 }, "the Add's reply")
		disconnected := c.Mach.WhenTicks(ssC.Disconnected, 1, ctx)
		keeper.cut(t)
		waitCh(t, disconnected, "the client to notice")
		src.Add1(sDone, answerArgs(asked.id, 9))
		select {
		case r := <-done:
			require.NoError(t, r.err)
			assert.Equal(t, 18, r.res["result"])
		case <-ctx.Done():
			t.Fatal("the answer did not arrive after the reconnection")
		}
		assert.Equal(t, 0, srv.PendingRequests())
		assert.Equal(t, uint64(1), src.Tick(sReq), "the Add ran once")
	})
	t.Run("session lost", func(t *testing.T) {
		a := newAnswerer(4)
		src := newReqSource(t, a)
		srv := rpctest.NewServer(t, src, rpc.WithSessionTTL(0))
		keeper := &connKeeper{}
		c := newReqClient(t, srv, rpc.WithDialer(keeper.dial), rpc.WithReconnect(true, time.Millisecond, 10*time.Millisecond))
		ctx, cancel := context.WithTimeout(context.Background(), deadline)
		defer cancel()
		errc := make(chan error, 1)
		go func() {
			_, err := c.Worker.Request(ctx, sReq, am.A{"mode": modeNever}, sDone)
			errc <- err
		}()
		id := recv(t, a.never, "the request")
		// the client comes back only once the server has dropped the
		// session: back before the server noticed the cut, it would resume
		// the session, and the request would rightly wait on
		keeper.hold()
		keeper.cut(t)
		eventually(t, func() bool { return srv.Stats().Sessions == 0 }, "the server to drop the session")
		keeper.release()
		select {
		case err := <-errc:
			require.ErrorIs(t, err, rpc.ErrNetwork)
		case <-ctx.Done():
			t.Fatal("the request did not fail with its session")
		}
		// the server abandoned it with the session
		eventually(t, func() bool { return srv.PendingRequests() == 0 }, "the server releases the wait")
		assert.True(t, srv.Abandoned(id))
	})
}
