package rpc_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	am "github.com/arpc-go/arpc/pkg/machine"
	"github.com/arpc-go/arpc/pkg/rpc"
	"github.com/arpc-go/arpc/pkg/rpc/rpctest"
)

// States of the request tests' source: Req is requested, Done answers.
const (
	sReq  = "Req"
	sDone = "Done"
	// sIdle is never activated by a request.
	sIdle = "Idle"
)

var reqNames = am.S{sReq, sDone, sIdle, am.Exception}

func reqStruct() am.Struct {
	return am.Struct{
		sReq:  {Multi: true},
		sDone: {Multi: true},
		sIdle: {},
	}
}

// Request modes, chosen per request by its "mode" argument.
const (
	modeSync  = "sync"  // answered inside ReqState
	modeLater = "later" // the ID goes to answerer.later; the test answers
	modeNever = "never" // the ID goes to answerer.never; nobody answers
	modeBlock = "block" // ReqState blocks until answerer.release closes
)

// answerer is the source's handlers: it answers a request with its "n"
// argument doubled, as "result".
type answerer struct {
	later   chan asked
	never   chan string
	entered chan string
	release chan struct{}
}

func newAnswerer(buf int) *answerer {
	return &answerer{
		later:   make(chan asked, buf),
		never:   make(chan string, buf),
		entered: make(chan string, 1),
		release: make(chan struct{}),
	}
}

// ReqEnter vetoes a request with a "veto" argument.
func (a *answerer) ReqEnter(e *am.Event) bool { return e.Args["veto"] == nil }

func (a *answerer) ReqState(e *am.Event) {
	id := rpc.CorrelationID(e.Args)
	switch e.Args["mode"] {
	case modeSync:
		e.Machine.Add1(sDone, answerArgs(id, e.Args["n"]))
	case modeLater:
		n, _ := e.Args["n"].(int)
		a.later <- asked{id: id, n: n}
	case modeNever:
		a.never <- id
	case modeBlock:
		a.entered <- id
		<-a.release
		e.Machine.Add1(sDone, answerArgs(id, e.Args["n"]))
	}
}

// asked is a request waiting for the test to answer it.
type asked struct {
	id string
	n  int
}

func recvAsked(t testing.TB, ch <-chan asked, what string) asked {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(deadline):
		t.Fatalf("timed out after %s waiting for %s", deadline, what)
		return asked{}
	}
}

// answerArgs is the answer to request id with argument n.
func answerArgs(id string, n any) am.A {
	v, _ := n.(int)
	return rpc.Correlated(id, am.A{"result": 2 * v})
}

func newReqSource(t testing.TB, a *answerer) *am.Machine {
	t.Helper()
	m := am.New(context.Background(), reqStruct(), &am.Opts{ID: "req-src", HandlerTimeout: deadline})
	require.NoError(t, m.VerifyStates(reqNames))
	require.NoError(t, m.BindHandlers(a))
	t.Cleanup(func() {
		// a blocked handler must not hold the disposal up
		select {
		case <-a.release:
		default:
			close(a.release)
		}
		m.Dispose()
		waitCh(t, m.WhenDisposed(), "source disposed")
	})
	return m
}

func newReqClient(t testing.TB, srv *rpc.Server, opts ...rpc.ClientOption) *rpc.Client {
	t.Helper()
	return rpctest.NewClient(t, srv, "req-client", reqStruct(), reqNames, opts...)
}

func recv(t testing.TB, ch <-chan string, what string) string {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(deadline):
		t.Fatalf("timed out after %s waiting for %s", deadline, what)
		return ""
	}
}

// eventually waits for cond, failing the test after the deadline.
func eventually(t testing.TB, cond func() bool, what string) {
	t.Helper()
	require.Eventually(t, cond, deadline, poll, what)
}

// TestRequestAnsweredInHandler: the answer given inside the handler comes
// back in one round trip, with the mirror already showing it.
func TestRequestAnsweredInHandler(t *testing.T) {
	a := newAnswerer(1)
	src := newReqSource(t, a)
	srv := rpctest.NewServer(t, src)
	c := newReqClient(t, srv)
	w := c.Worker
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()

	for i := 1; i <= 3; i++ {
		calls := c.CallCount()
		done := w.Tick(sDone)
		res, err := w.Request(ctx, sReq, am.A{"mode": modeSync, "n": i}, sDone)
		require.NoError(t, err)
		assert.Equal(t, 2*i, res["result"])
		assert.NotEmpty(t, rpc.CorrelationID(res))
		assert.Equal(t, uint64(1), c.CallCount()-calls, "one round trip")
		assert.Greater(t, w.Tick(sDone), done, "the mirror shows the answer")
	}
	assert.Equal(t, 0, srv.PendingRequests())

	// the package function targets the mirror the same way
	res, err := rpc.Request(ctx, w, sReq, am.A{"mode": modeSync, "n": 21}, sDone)
	require.NoError(t, err)
	assert.Equal(t, 42, res["result"])
}

// TestRequestAnsweredLater: an answer given from another goroutine after
// the Add's reply arrives on the update stream and completes the call.
func TestRequestAnsweredLater(t *testing.T) {
	a := newAnswerer(1)
	src := newReqSource(t, a)
	srv := rpctest.NewServer(t, src)
	c := newReqClient(t, srv)
	w := c.Worker
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()

	// answer only once the client has the Add's reply: the mirror shows
	// Req once the update before that reply was applied
	replied := w.WhenTicks(sReq, 1, ctx)
	answered := make(chan struct{})
	go func() {
		defer close(answered)
		id := recvAsked(t, a.later, "the request's ID").id
		<-replied
		src.Add1(sDone, answerArgs(id, 5))
	}()
	calls := c.CallCount()
	res, err := w.Request(ctx, sReq, am.A{"mode": modeLater}, sDone)
	require.NoError(t, err)
	assert.Equal(t, 10, res["result"])
	assert.Equal(t, uint64(1), c.CallCount()-calls, "one call: the answer came on the stream")
	assert.True(t, w.Is1(sDone))
	waitCh(t, answered, "the answering goroutine")
	assert.Equal(t, 0, srv.PendingRequests())

	// an answer without the ID, or to another state, answers nothing
	replied = w.WhenTicks(sReq, 2, ctx)
	go func() {
		id := recvAsked(t, a.later, "the request's ID").id
		<-replied
		src.Add1(sDone, am.A{"result": -1})
		src.Add1(sIdle, rpc.Correlated(id, am.A{"result": -2}))
		src.Add1(sDone, answerArgs(id, 6))
	}()
	res, err = w.Request(ctx, sReq, am.A{"mode": modeLater}, sDone)
	require.NoError(t, err)
	assert.Equal(t, 12, res["result"])
}

// TestRequestNeverAnswered: the call returns ctx.Err() within 50 ms of its
// deadline, the server releases its wait and recognises the late answer.
func TestRequestNeverAnswered(t *testing.T) {
	a := newAnswerer(1)
	src := newReqSource(t, a)
	late := make(chan string, 1)
	var lateArgs atomic.Value
	srv := rpctest.NewServer(t, src, rpc.WithLateAnswer(func(id string, args am.A) {
		lateArgs.Store(args)
		late <- id
	}))
	c := newReqClient(t, srv)
	w := c.Worker

	const wait = 100 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	dl, _ := ctx.Deadline()
	_, err := w.Request(ctx, sReq, am.A{"mode": modeNever}, sDone)
	over := time.Since(dl)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	// a bound that catches a caller left waiting, not a latency figure
	// (shared CI cores stall goroutines for tens of ms)
	t.Logf("returned %s after the deadline", over)
	assert.Less(t, over, 500*time.Millisecond, "returned %s after the deadline", over)

	id := recv(t, a.never, "the request's ID")
	eventually(t, func() bool { return srv.PendingRequests() == 0 }, "the server releases its wait")
	assert.True(t, srv.Abandoned(id))
	assert.False(t, srv.Abandoned("no-such-id"))

	// the late answer is recognised, once
	src.Add1(sDone, answerArgs(id, 7))
	assert.Equal(t, id, recv(t, late, "the late answer"))
	assert.Equal(t, 14, lateArgs.Load().(am.A)["result"])
	src.Add1(sDone, answerArgs(id, 8))
	select {
	case again := <-late:
		t.Fatalf("late answer %s reported twice", again)
	default:
	}

	// the client is unaffected
	ctx2, cancel2 := context.WithTimeout(context.Background(), deadline)
	defer cancel2()
	res, err := w.Request(ctx2, sReq, am.A{"mode": modeSync, "n": 1}, sDone)
	require.NoError(t, err)
	assert.Equal(t, 2, res["result"])
}

// TestRequestGivenUpWhileRunning: the caller gives up while its Add runs;
// the answer the handler then gives reached no one, and is reported.
func TestRequestGivenUpWhileRunning(t *testing.T) {
	a := newAnswerer(1)
	src := newReqSource(t, a)
	late := make(chan string, 1)
	srv := rpctest.NewServer(t, src, rpc.WithLateAnswer(func(id string, _ am.A) { late <- id }))
	c := newReqClient(t, srv)

	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := c.Worker.Request(ctx, sReq, am.A{"mode": modeBlock, "n": 1}, sDone)
		errc <- err
	}()
	id := recv(t, a.entered, "the handler to run")
	cancel()
	select {
	case err := <-errc:
		require.ErrorIs(t, err, context.Canceled)
	case <-time.After(deadline):
		t.Fatal("Request did not return when its ctx ended")
	}
	close(a.release)
	assert.Equal(t, id, recv(t, late, "the lost answer"))
	eventually(t, func() bool { return srv.PendingRequests() == 0 }, "the server releases its wait")
	assert.True(t, srv.Abandoned(id))
}

// TestRequestErrors: unknown states fail locally; a vetoed Add fails as
// Mutate does; the server keeps nothing.
func TestRequestErrors(t *testing.T) {
	a := newAnswerer(1)
	src := newReqSource(t, a)
	srv := rpctest.NewServer(t, src)
	c := newReqClient(t, srv)
	w := c.Worker
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()

	calls := c.CallCount()
	_, err := w.Request(ctx, "Nope", nil, sDone)
	require.ErrorIs(t, err, am.ErrStateUnknown)
	_, err = w.Request(ctx, sReq, nil, "Nope")
	require.ErrorIs(t, err, am.ErrStateUnknown)
	assert.Equal(t, calls, c.CallCount(), "nothing sent")

	tick := src.Tick(sReq)
	_, err = w.Request(ctx, sReq, am.A{"veto": true, "mode": modeSync}, sDone)
	require.ErrorIs(t, err, am.ErrCanceled)
	assert.Equal(t, tick, src.Tick(sReq))
	assert.Equal(t, 0, srv.PendingRequests())

	done, cancelDone := context.WithCancel(ctx)
	cancelDone()
	_, err = w.Request(done, sReq, am.A{"mode": modeSync}, sDone)
	require.ErrorIs(t, err, context.Canceled)

	_, err = rpc.Request(ctx, nil, sReq, nil, sDone)
	require.ErrorIs(t, err, am.ErrInvalidArgs)
}

// TestRequestCap: beyond the configured requests in flight, a request
// fails at once with ErrTooManyRequests and does not run.
func TestRequestCap(t *testing.T) {
	t.Run("server", func(t *testing.T) {
		a := newAnswerer(8)
		src := newReqSource(t, a)
		srv := rpctest.NewServer(t, src, rpc.WithMaxRequests(2))
		c := newReqClient(t, srv)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		var wg sync.WaitGroup
		for range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, _ = c.Worker.Request(ctx, sReq, am.A{"mode": modeNever}, sDone)
			}()
		}
		recv(t, a.never, "request 1")
		recv(t, a.never, "request 2")
		tick := src.Tick(sReq)
		_, err := c.Worker.Request(ctx, sReq, am.A{"mode": modeSync}, sDone)
		require.ErrorIs(t, err, rpc.ErrTooManyRequests)
		assert.Equal(t, tick, src.Tick(sReq), "the refused request did not run")
		cancel()
		wg.Wait()
		eventually(t, func() bool { return srv.PendingRequests() == 0 }, "the server releases its waits")
		// room again
		ctx2, cancel2 := context.WithTimeout(context.Background(), deadline)
		defer cancel2()
		_, err = c.Worker.Request(ctx2, sReq, am.A{"mode": modeSync}, sDone)
		require.NoError(t, err)
	})
	t.Run("client", func(t *testing.T) {
		a := newAnswerer(8)
		src := newReqSource(t, a)
		srv := rpctest.NewServer(t, src)
		c := newReqClient(t, srv, rpc.WithClientMaxRequests(1))
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		errc := make(chan error, 1)
		go func() {
			_, err := c.Worker.Request(ctx, sReq, am.A{"mode": modeNever}, sDone)
			errc <- err
		}()
		recv(t, a.never, "request 1")
		calls := c.CallCount()
		_, err := c.Worker.Request(ctx, sReq, am.A{"mode": modeSync}, sDone)
		require.ErrorIs(t, err, rpc.ErrTooManyRequests)
		assert.Equal(t, calls, c.CallCount(), "nothing sent")
		cancel()
		require.ErrorIs(t, <-errc, context.Canceled)
	})
}

// TestRequestConcurrent: 10,000 requests in flight at once on one
// connection, answered later in reverse order, each gets its own answer.
func TestRequestConcurrent(t *testing.T) {
	const n = 10_000
	a := newAnswerer(n)
	src := newReqSource(t, a)
	srv := rpctest.NewServer(t, src)
	c := newReqClient(t, srv)
	ctx, cancel := context.WithTimeout(context.Background(), 4*deadline)
	defer cancel()

	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := c.Worker.Request(ctx, sReq, am.A{"mode": modeLater, "n": i}, sDone)
			if err != nil {
				errs <- fmt.Errorf("request %d: %w", i, err)
			} else if res["result"] != 2*i {
				errs <- fmt.Errorf("request %d got the answer %v", i, res)
			}
		}()
	}
	// all of them wait on the server at once
	all := make([]asked, 0, n)
	for range n {
		all = append(all, recvAsked(t, a.later, "a request"))
	}
	eventually(t, func() bool { return srv.PendingRequests() == n }, "10,000 requests in flight")
	for i := len(all) - 1; i >= 0; i-- {
		src.Add1(sDone, answerArgs(all[i].id, all[i].n))
	}
	wg.Wait()
	close(errs)
	failed := 0
	for err := range errs {
		if failed++; failed <= 10 {
			t.Error(err)
		}
	}
	if failed > 0 {
		t.Errorf("%d requests failed", failed)
	}
	assert.Equal(t, 0, srv.PendingRequests())
}
