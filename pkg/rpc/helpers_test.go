package rpc_test

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	am "github.com/arpc-go/arpc/pkg/machine"
	"github.com/arpc-go/arpc/pkg/rpc"
	"github.com/arpc-go/arpc/pkg/rpc/rpctest"
)

// deadline bounds every wait on a condition in these tests.
const deadline = rpctest.Timeout

// poll is the polling period of require.Eventually in these tests.
const poll = 2 * time.Millisecond

// States of the source machine of these tests.
const (
	sA = "A"
	sB = "B"
	// sC removes sB.
	sC = "C"
	// sM is Multi.
	sM = "M"
	// sBlock is Multi; tests bind a handler to it that blocks.
	sBlock = "Block"
)

// testNames is the ordered state list of the source machine.
var testNames = am.S{sA, sB, sC, sM, sBlock, am.Exception}

// testStruct is the schema of the source machine.
func testStruct() am.Struct {
	return am.Struct{
		sA:     {},
		sB:     {},
		sC:     {Remove: am.S{sB}},
		sM:     {Multi: true},
		sBlock: {Multi: true},
	}
}

// newTestSource builds a verified source machine of testStruct with the
// handlers (nil for none), activates the states active, and disposes it at
// cleanup. Its handler timeout is long, so blocking handlers stay in charge.
func newTestSource(t testing.TB, handlers any, active ...string) *am.Machine {
	t.Helper()
	m := am.New(context.Background(), testStruct(), &am.Opts{ID: "src", HandlerTimeout: deadline})
	require.NoError(t, m.VerifyStates(testNames))
	if handlers != nil {
		require.NoError(t, m.BindHandlers(handlers))
	}
	t.Cleanup(func() {
		m.Dispose()
		waitCh(t, m.WhenDisposed(), "source disposed")
	})
	if len(active) > 0 {
		require.Equal(t, am.Executed, m.Add(active, nil), "setup Add(%v)", active)
	}
	return m
}

// newTestClient starts a ready client of srv with the source's schema.
func newTestClient(t testing.TB, srv *rpc.Server, id string, opts ...rpc.ClientOption) *rpc.Client {
	t.Helper()
	return rpctest.NewClient(t, srv, id, testStruct(), testNames, opts...)
}

// waitCh waits for ch to close, failing the test after deadline.
func waitCh(t testing.TB, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(deadline):
		t.Fatalf("timed out after %s waiting for %s", deadline, what)
	}
}

// isClosed tells whether ch is closed now.
func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// waitSynced waits until the mirror shows the (quiescent) source's time, and
// fails the test if it doesn't within deadline or overshoots it.
func waitSynced(t testing.TB, w *rpc.Worker, src *am.Machine) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	// a mutation that returned Queued may still run
	waitCh(t, src.WhenQueueEnds(ctx), "the source's queue to drain")
	want := src.Time(nil)
	<-w.WhenTime(src.StateNames(), want, ctx)
	require.Equal(t, want, w.Time(nil), "mirror of %s vs source", w.ID())
}

// silentServer listens on a loopback port and accepts connections that
// never answer (a peer that stalls after the TCP handshake); they are
// closed when the test ends.
func silentServer(t testing.TB) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns []net.Conn
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			nc, err := lis.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, nc)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		_ = lis.Close()
		wg.Wait()
		mu.Lock()
		defer mu.Unlock()
		for _, nc := range conns {
			_ = nc.Close()
		}
	})
	return lis.Addr().String()
}
