package rpc

import (
	"context"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	am "github.com/arpc-go/arpc/pkg/machine"
)

// itAsker reports the correlation IDs of the requests of M.
type itAsker struct{ ids chan string }

func (a *itAsker) MState(e *am.Event) { a.ids <- CorrelationID(e.Args) }

// TestRequestAnswerLostInTransit: an update carrying an answer is lost (as
// on a connection that died while it was written); the client notices the
// gap, resumes, and gets the answer, from the replayed updates or, when the
// session keeps none (a full resync), from the answers the server keeps
// until the client has applied them.
func TestRequestAnswerLostInTransit(t *testing.T) {
	for _, buf := range []int{0, DefaultResumeBuffer} {
		t.Run(map[int]string{0: "full", DefaultResumeBuffer: "replay"}[buf], func(t *testing.T) {
			a := &itAsker{ids: make(chan string, 2)}
			src := itSource(t, a)
			// pushes wait an hour: the test flushes by hand
			var lateAnswers atomic.Int32
			srv := itServer(t, src, WithResumeBuffer(buf), WithPushInterval(time.Hour),
				WithLateAnswer(func(string, am.A) { lateAnswers.Add(1) }))
			// the client comes back only once the gate opens, so that an
			// answer can be given while it is away
			gate := make(chan struct{})
			var dials atomic.Int32
			dialer := func(ctx context.Context, addr string) (net.Conn, error) {
				if dials.Add(1) > 1 {
					select {
					case <-gate:
					case <-ctx.Done():
						return nil, ctx.Err()
					}
				}
				return (&net.Dialer{}).DialContext(ctx, "tcp", addr)
			}
			c := itClient(t, srv, "lost", WithDialer(dialer),
				WithReconnect(true, time.Millisecond, 10*time.Millisecond))
			ctx, cancel := context.WithTimeout(context.Background(), itDeadline)
			defer cancel()
			type result struct {
				args am.A
				err  error
			}
			// two requests: one answer is lost in transit, the other
			// request keeps waiting across the resync
			done := make(chan result, 2)
			ids := make([]string, 2)
			for i := range ids {
				go func() {
					args, err := c.Worker.Request(ctx, "M", nil, "Block")
					done <- result{args, err}
				}()
				select {
				case ids[i] = <-a.ids:
				case <-ctx.Done():
					t.Fatal("the request did not reach the source")
				}
			}
			require.Eventually(t, func() bool { return AwaitingAnswers(c.Worker) == 2 },
				itDeadline, time.Millisecond, "the Adds' replies")
			id := ids[0]
			se := itSession(t, srv)
			old := c.testConn()

			// the answer goes into an update that never arrives
			src.Add1("Block", Correlated(id, am.A{"r": 7}))
			se.wmu.Lock()
			se.mu.Lock()
			var lost msgUpdate
			se.nextLocked(&lost)
			se.mu.Unlock()
			se.wmu.Unlock()
			require.Len(t, lost.answers, 1)

			// the next update shows the gap: the client drops the
			// connection and resumes
			src.Add1("A", nil)
			_, err := se.flush(ctx, nil, false)
			require.NoError(t, err)
			require.Eventually(t, func() bool { return srv.ClientCount() == 0 },
				itDeadline, time.Millisecond, "the session to be detached")
			// the other request is answered while the client is away
			src.Add1("Block", Correlated(ids[1], am.A{"r": 8}))
			close(gate)
			itRelinked(t, c, old)
			got := map[any]bool{}
			for range 2 {
				select {
				case r := <-done:
					require.NoError(t, r.err)
					got[r.args["r"]] = true
				case <-ctx.Done():
					t.Fatalf("an answer was lost (got %v)", got)
				}
			}
			assert.Equal(t, map[any]bool{7: true, 8: true}, got)
			itSynced(t, c.Worker, src)
			// each answer arrived once: none was dropped as unknown
			_, err = se.flush(ctx, nil, false)
			require.NoError(t, err)
			assert.Zero(t, lateAnswers.Load())
			c.Worker.reqs.mu.Lock()
			assert.Empty(t, c.Worker.reqs.dropped)
			c.Worker.reqs.mu.Unlock()
		})
	}
}

// TestSessionAnswersApplied: the server forgets sent answers once the
// client has applied their updates.
func TestSessionAnswersApplied(t *testing.T) {
	se := &session{}
	se.mu.Lock()
	defer se.mu.Unlock()
	se.answers = []wireAnswer{newAnswer("a", am.A{"x": 1})}
	got := se.takeAnswersLocked(5)
	require.Len(t, got, 1)
	assert.Equal(t, uint64(5), got[0].version)
	se.answers = []wireAnswer{newAnswer("b", nil), newAnswer("c", nil)}
	se.takeAnswersLocked(7)
	assert.Len(t, se.unappliedLocked(4), 3)
	assert.Len(t, se.unappliedLocked(5), 2)
	assert.Empty(t, se.unappliedLocked(7))
	se.appliedLocked(5)
	assert.Len(t, se.sent, 2)
	se.appliedLocked(9)
	assert.Empty(t, se.sent)
}

// TestRequestWire: request, answer and unrequest messages survive a round
// trip, and truncated ones fail to decode instead of panicking.
func TestRequestWire(t *testing.T) {
	req := &msgRequest{ReqID: 3, Ack: 2, Applied: 9, ID: "p-1", State: 1, Until: 2, Args: am.A{"n": 5}}
	b, err := req.AppendBinary(nil)
	require.NoError(t, err)
	var got msgRequest
	require.NoError(t, got.UnmarshalBinary(b))
	assert.Equal(t, am.A{"n": 5, CorrelationKey: "p-1"}, got.Args)
	assert.Equal(t, req.Applied, got.Applied)
	for i := range b {
		var m msgRequest
		assert.Error(t, m.UnmarshalBinary(b[:i]), "truncated at %d", i)
	}

	u := &msgUpdate{version: 4, answers: []wireAnswer{
		newAnswer("p-1", am.A{"r": "ok", CorrelationKey: "p-1"}),
		errAnswer("p-2", assert.AnError),
	}}
	b, err = u.AppendBinary(nil)
	require.NoError(t, err)
	var gu msgUpdate
	require.NoError(t, gu.UnmarshalBinary(b))
	require.Len(t, gu.answers, 2)
	assert.Equal(t, am.A{"r": "ok", CorrelationKey: "p-1"}, gu.answers[0].args)
	assert.EqualError(t, gu.answers[1].err, assert.AnError.Error())
	for i := range b {
		var m msgUpdate
		assert.Error(t, m.UnmarshalBinary(b[:i]), "truncated at %d", i)
	}

	un := &msgUnrequest{ids: []string{"p-3"}, dropped: []wireAnswer{newAnswer("p-4", am.A{"z": true})}}
	b, err = un.AppendBinary(nil)
	require.NoError(t, err)
	var gn msgUnrequest
	require.NoError(t, gn.UnmarshalBinary(b))
	assert.Equal(t, []string{"p-3"}, gn.ids)
	assert.Equal(t, am.A{"z": true, CorrelationKey: "p-4"}, gn.dropped[0].args)
}
