package rpc

// Helpers of the white-box tests. They can't use rpctest (it imports this
// package), so they build servers and clients themselves, the same way.

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	am "github.com/arpc-go/arpc/pkg/machine"
	"github.com/arpc-go/arpc/pkg/rpc2"
	ssC "github.com/arpc-go/arpc/states/client"
	ssS "github.com/arpc-go/arpc/states/server"
)

// itDeadline bounds every wait on a condition in the white-box tests.
const itDeadline = 10 * time.Second

// itPoll is the polling period of require.Eventually.
const itPoll = 2 * time.Millisecond

// itNames are the ordered states of the white-box tests' source; M and Block
// are Multi.
var itNames = am.S{"A", "B", "M", "Block", am.Exception}

func itStruct() am.Struct {
	return am.Struct{
		"A":     {},
		"B":     {},
		"M":     {Multi: true},
		"Block": {Multi: true},
	}
}

// itSource builds a verified source with handlers (or nil), disposed at
// cleanup; its handler timeout is long.
func itSource(t *testing.T, handlers any) *am.Machine {
	t.Helper()
	m := am.New(context.Background(), itStruct(), &am.Opts{ID: "itsrc", HandlerTimeout: itDeadline})
	require.NoError(t, m.VerifyStates(itNames))
	if handlers != nil {
		require.NoError(t, m.BindHandlers(handlers))
	}
	t.Cleanup(func() {
		m.Dispose()
		itWait(t, m.WhenDisposed(), "source disposed")
	})
	return m
}

// itServer starts a server of src on 127.0.0.1:0, stopped at cleanup.
func itServer(t *testing.T, src *am.Machine, opts ...ServerOption) *Server {
	t.Helper()
	s, err := NewServer(context.Background(), "127.0.0.1:0", src.ID, src, nil, opts...)
	require.NoError(t, err)
	s.Start()
	itWaitState(t, s.Mach, ssS.RpcReady)
	t.Cleanup(func() { itStop(t, "server", func() { s.Stop(true) }) })
	return s
}

// itClient starts a ready client of srv, stopped at cleanup.
func itClient(t *testing.T, srv *Server, id string, opts ...ClientOption) *Client {
	t.Helper()
	c, err := NewClient(context.Background(), srv.Addr, id, itStruct(), itNames, opts...)
	require.NoError(t, err)
	c.Start()
	t.Cleanup(func() {
		itStop(t, "client", func() {
			ctx, cancel := context.WithTimeout(context.Background(), itDeadline)
			defer cancel()
			c.Stop(ctx, true)
		})
	})
	itWaitState(t, c.Mach, ssC.Ready)
	return c
}

// itSession returns the server's only session.
func itSession(t *testing.T, srv *Server) *session {
	t.Helper()
	l := srv.sessionList()
	require.Len(t, l, 1)
	return l[0]
}

func itWaitState(t *testing.T, mach *am.Machine, state string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), itDeadline)
	defer cancel()
	select {
	case <-mach.When1(state, ctx):
	case <-mach.WhenErr(ctx):
	}
	require.True(t, mach.Is1(state), "%s: %s not reached: %s, err: %v", mach.ID, state, mach.String(), mach.Err())
}

func itWait(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(itDeadline):
		t.Fatalf("timed out after %s waiting for %s", itDeadline, what)
	}
}

func itStop(t *testing.T, what string, stop func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		stop()
	}()
	select {
	case <-done:
	case <-time.After(itDeadline):
		t.Errorf("stopping the %s hung for %s", what, itDeadline)
	}
}

// itSynced waits until the mirror shows the quiescent source's time.
func itSynced(t *testing.T, w *Worker, src *am.Machine) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), itDeadline)
	defer cancel()
	itWait(t, src.WhenQueueEnds(ctx), "the source's queue to drain")
	want := src.Time(nil)
	<-w.WhenTime(src.StateNames(), want, ctx)
	require.Equal(t, want, w.Time(nil))
}

// TestBlocker's BlockState blocks the source until released, announcing each
// entry on Entered. Exported (in a test file) so the black-box tests of
// package rpc_test use it too.
type TestBlocker struct {
	Entered chan struct{}
	release chan struct{}
	once    sync.Once
}

// NewTestBlocker returns a blocker ready to block.
func NewTestBlocker() *TestBlocker {
	return &TestBlocker{Entered: make(chan struct{}, 16), release: make(chan struct{})}
}

func (b *TestBlocker) BlockState(e *am.Event) {
	b.Entered <- struct{}{}
	<-b.release
}

// Release unblocks BlockState, now and later; safe to call many times.
func (b *TestBlocker) Release() { b.once.Do(func() { close(b.release) }) }

// testConn returns the client's live connection, or nil.
func (c *Client) testConn() *rpc2.Conn {
	conn, _ := c.liveConn()
	return conn
}

// itRelinked waits until the client publishes a live connection other than
// old: the handshake's updates reach the mirror before the link is
// published, so a synced mirror alone does not mean calls can go out yet.
func itRelinked(t *testing.T, c *Client, old *rpc2.Conn) *rpc2.Conn {
	t.Helper()
	deadline := time.NewTimer(itDeadline)
	defer deadline.Stop()
	for {
		c.mu.Lock()
		l, changed := c.link, c.changed
		c.mu.Unlock()
		if l != nil && l.conn != old {
			return l.conn
		}
		select {
		case <-changed:
		case <-deadline.C:
			t.Fatal("the client did not reconnect")
		}
	}
}

// TestNetConn returns the transport of the client's live connection, or
// nil. Exported (in a test file) for the black-box tests.
func (c *Client) TestNetConn() net.Conn {
	if conn := c.testConn(); conn != nil {
		return conn.NetConn()
	}
	return nil
}
