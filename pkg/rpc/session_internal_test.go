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

// TestSessionResumeRacesExpiry: a client that resumes its session while the
// server is expiring it (no resume window: the old connection's end expires
// it at once) must not end up attached to a session that then closes. The
// test holds the expiry after it found the session without a connection and
// before it took the session out of the server's table, lets the client
// reconnect and resume meanwhile, and only then lets the expiry finish.
// The client must get a session that lives: a Set that returns Executed
// shows on the mirror, and a change made on the source reaches it.
func TestSessionResumeRacesExpiry(t *testing.T) {
	// The hook is set before the server starts (its goroutines see it)
	// and cleared after it stopped; it holds the expiry of target only.
	var target atomic.Pointer[session]
	expiring := make(chan struct{})
	proceed := make(chan struct{})
	testHookExpiring = func(se *session) {
		if se != target.Load() {
			return
		}
		close(expiring)
		select {
		case <-proceed:
		case <-time.After(itDeadline):
		}
	}
	t.Cleanup(func() { testHookExpiring = nil })
	src := itSource(t, nil)
	srv := itServer(t, src, WithSessionTTL(0))

	// every dial but the first waits for redial
	redial := make(chan struct{})
	var dials atomic.Int32
	dialer := func(ctx context.Context, addr string) (net.Conn, error) {
		if dials.Add(1) > 1 {
			select {
			case <-redial:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		var d net.Dialer
		return d.DialContext(ctx, "tcp", addr)
	}
	c := itClient(t, srv, "racer", WithDialer(dialer),
		WithReconnect(true, time.Millisecond, 20*time.Millisecond))
	old := itSession(t, srv)
	oldConn := c.testConn()
	require.NotNil(t, oldConn)

	target.Store(old)

	// the client's transport fails: the server's end of it expires the
	// session, and stops in the hook
	require.NoError(t, c.TestNetConn().Close())
	itWait(t, expiring, "the server to expire the session")
	// the session is still in the server's table: the client resumes it
	close(redial)
	itRelinked(t, c, oldConn)
	close(proceed)
	itWait(t, old.ctx.Done(), "the expired session to close")

	ctx, cancel := context.WithTimeout(context.Background(), itDeadline)
	defer cancel()
	res, err := c.Worker.Mutate(ctx, am.MutationSet, am.S{"A"}, nil)
	require.NoError(t, err)
	require.Equal(t, am.Executed, res)
	assert.True(t, c.Worker.Is1("A"), "the mirror shows the Set it was told executed")

	src.Add1("B", nil)
	itSynced(t, c.Worker, src)

	l := srv.sessionList()
	require.Len(t, l, 1, "the server keeps the client's one session")
	assert.NotSame(t, old, l[0], "the expired session is gone")
	c.mu.Lock()
	session := c.session
	c.mu.Unlock()
	assert.Equal(t, l[0].id, session, "the client is on the server's live session")
}
