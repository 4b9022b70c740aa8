package rpc_test

import (
	"context"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	am "github.com/arpc-go/arpc/pkg/machine"
	"github.com/arpc-go/arpc/pkg/rpc"
	"github.com/arpc-go/arpc/pkg/rpc/rpctest"
	ssC "github.com/arpc-go/arpc/states/client"
	ssS "github.com/arpc-go/arpc/states/server"
)

// connKeeper is a Dialer that remembers the connections it made, so a test
// can cut them.
type connKeeper struct {
	mu    sync.Mutex
	conns []net.Conn
	// held, when not nil, keeps dials waiting until it is closed
	held chan struct{}
}

// hold makes the next dials wait until release.
func (k *connKeeper) hold() {
	k.mu.Lock()
	k.held = make(chan struct{})
	k.mu.Unlock()
}

func (k *connKeeper) release() {
	k.mu.Lock()
	if k.held != nil {
		close(k.held)
		k.held = nil
	}
	k.mu.Unlock()
}

func (k *connKeeper) dial(ctx context.Context, addr string) (net.Conn, error) {
	k.mu.Lock()
	held := k.held
	k.mu.Unlock()
	if held != nil {
		select {
		case <-held:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	nc, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
	if err == nil {
		k.mu.Lock()
		k.conns = append(k.conns, nc)
		k.mu.Unlock()
	}
	return nc, err
}

// cutQuiet closes the connections dialed so far, if any (from any
// goroutine).
func (k *connKeeper) cutQuiet() {
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, nc := range k.conns {
		_ = nc.Close()
	}
}

func (k *connKeeper) cut(t *testing.T) {
	k.mu.Lock()
	defer k.mu.Unlock()
	require.NotEmpty(t, k.conns)
	for _, nc := range k.conns {
		_ = nc.Close()
	}
}

// waitResult waits for a mutation result sent on ch.
func waitResult(t *testing.T, ch <-chan am.Result, what string) am.Result {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(deadline):
		t.Fatalf("timed out after %s waiting for %s", deadline, what)
		return 0
	}
}

// TestConnectionCutMidCall: a mutation in flight when the connection breaks
// returns Canceled with ErrNetwork; the client's machine gets ErrNetwork and
// Disconnected; the server keeps serving.
func TestConnectionCutMidCall(t *testing.T) {
	blk := rpc.NewTestBlocker()
	src := newTestSource(t, blk)
	srv := rpctest.NewServer(t, src)
	keeper := &connKeeper{}
	c := newTestClient(t, srv, "cut", rpc.WithDialer(keeper.dial), rpc.WithReconnect(false, 0, 0))
	defer blk.Release()
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	disconnected := c.Mach.When1(ssC.Disconnected, ctx)

	res := make(chan am.Result, 1)
	go func() { res <- c.Worker.Add1(sBlock, nil) }()
	waitCh(t, blk.Entered, "the mutation to reach the source")
	keeper.cut(t)

	assert.Equal(t, am.Canceled, waitResult(t, res, "Add1 to return"))
	assert.ErrorIs(t, c.Worker.Err(), rpc.ErrNetwork)
	waitCh(t, disconnected, "Disconnected")
	assert.True(t, c.Mach.Is1(ssC.ErrNetwork), "client: %s", c.Mach.String())
	assert.ErrorIs(t, c.Mach.Err(), rpc.ErrNetwork)
	assert.False(t, c.Mach.Is1(ssC.Ready))
	assert.Equal(t, am.Canceled, c.Worker.Add1(sA, nil), "no connection")
	assert.ErrorIs(t, c.Worker.Err(), rpc.ErrNotReady)

	// the source finishes the orphaned mutation; the server keeps serving
	blk.Release()
	waitCh(t, src.WhenQueueEnds(ctx), "the source's queue")
	require.Eventually(t, func() bool { return srv.ClientCount() == 0 }, deadline, poll)
	c2 := newTestClient(t, srv, "after")
	assert.Equal(t, am.Executed, c2.Worker.Add1(sA, nil))
	assert.Equal(t, uint64(1), c2.Worker.Tick(sBlock), "the orphaned mutation ran once")
	assert.True(t, srv.Mach.Is1(ssS.RpcReady))
}

// load runs mutations from workers goroutines per client until they fail,
// then reports on done. It returns once every client has made some progress.
func load(t *testing.T, src *am.Machine, clients []*rpc.Client, workers int) (done <-chan struct{}) {
	t.Helper()
	var wg sync.WaitGroup
	for _, c := range clients {
		for range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for c.Worker.Add1(sM, nil) == am.Executed {
					if c.Worker.Add1(sA, nil) != am.Executed || c.Worker.Remove1(sA, nil) != am.Executed {
						return
					}
				}
			}()
		}
	}
	ch := make(chan struct{})
	go func() {
		wg.Wait()
		close(ch)
	}()
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	waitCh(t, src.WhenTicks(sM, 4*len(clients)*workers, ctx), "load on the source")
	return ch
}

// TestServerStopUnderLoad: Stop returns while many clients mutate; every
// client ends Disconnected, and every mutation returns.
func TestServerStopUnderLoad(t *testing.T) {
	src := newTestSource(t, nil)
	srv := rpctest.NewServer(t, src)
	clients := make([]*rpc.Client, 8)
	for i := range clients {
		clients[i] = newTestClient(t, srv, fmt.Sprintf("load%d", i))
	}
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	disconnected := make([]<-chan struct{}, len(clients))
	for i, c := range clients {
		disconnected[i] = c.Mach.When1(ssC.Disconnected, ctx)
	}
	done := load(t, src, clients, 4)

	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		srv.Stop(false)
	}()
	waitCh(t, stopped, "Server.Stop")
	for i, c := range clients {
		waitCh(t, disconnected[i], "a client's Disconnected")
		assert.False(t, c.Mach.Is1(ssC.Ready), "client %d: %s", i, c.Mach.String())
		assert.Equal(t, am.Canceled, c.Worker.Add1(sA, nil))
	}
	waitCh(t, done, "every mutation to return")
	assert.Zero(t, srv.ClientCount())
	assert.False(t, srv.Mach.Is1(ssS.RpcReady))
}

// TestClientStopUnderLoad: Client.Stop returns while its Worker's mutations
// run; they all return, and the server drops the session and keeps serving.
func TestClientStopUnderLoad(t *testing.T) {
	src := newTestSource(t, nil)
	srv := rpctest.NewServer(t, src)
	c := newTestClient(t, srv, "leaving")
	done := load(t, src, []*rpc.Client{c}, 8)

	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	assert.Equal(t, am.Executed, c.Stop(ctx, false))
	waitCh(t, done, "every mutation to return")
	assert.True(t, c.Mach.Is1(ssC.Disconnected), "client: %s", c.Mach.String())
	assert.False(t, c.Mach.Is1(ssC.Start))
	assert.False(t, c.Mach.Is1(ssC.ErrNetwork), "an orderly stop isn't a network error")
	assert.Equal(t, am.Canceled, c.Worker.Add1(sA, nil))
	require.Eventually(t, func() bool { return srv.ClientCount() == 0 }, deadline, poll)

	c2 := newTestClient(t, srv, "next")
	assert.Equal(t, am.Executed, c2.Worker.Add1(sB, nil))
	waitSynced(t, c2.Worker, src)
}

// TestDialFailure: a client whose server isn't there gets ErrNetwork and ends
// Disconnected, never Ready; Stop still returns.
func TestDialFailure(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := lis.Addr().String()
	require.NoError(t, lis.Close())

	c, err := rpc.NewClient(context.Background(), addr, "nobody", testStruct(), testNames,
		rpc.WithDialTimeout(deadline))
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	ready := c.Mach.When1(ssC.Ready, ctx)
	disconnected := c.Mach.When1(ssC.Disconnected, ctx)
	c.Start()
	waitCh(t, disconnected, "Disconnected")
	assert.True(t, c.Mach.Is1(ssC.ErrNetwork), "client: %s", c.Mach.String())
	assert.ErrorIs(t, c.Mach.Err(), rpc.ErrNetwork)
	assert.False(t, isClosed(ready))
	assert.Equal(t, am.Canceled, c.Worker.Add1(sA, nil))
	assert.Equal(t, am.Executed, c.Stop(ctx, true))
}

// TestListenFailure: a server that can't listen gets ErrNetwork and doesn't
// reach RpcReady; Stop still returns.
func TestListenFailure(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer lis.Close()
	src := newTestSource(t, nil)
	srv, err := rpc.NewServer(context.Background(), lis.Addr().String(), "taken", src, nil)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	srv.Start()
	waitCh(t, srv.Mach.WhenErr(ctx), "the server's Exception")
	assert.True(t, srv.Mach.Is1(ssS.ErrNetwork), "server: %s", srv.Mach.String())
	assert.ErrorIs(t, srv.Mach.Err(), rpc.ErrNetwork)
	assert.False(t, srv.Mach.Is1(ssS.RpcReady))
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		srv.Stop(true)
	}()
	waitCh(t, stopped, "Server.Stop")
}
