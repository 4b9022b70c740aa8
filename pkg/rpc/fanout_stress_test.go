package rpc_test

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	am "github.com/arpc-go/arpc/pkg/machine"
	"github.com/arpc-go/arpc/pkg/rpc"
	"github.com/arpc-go/arpc/pkg/rpc/rpctest"
)

// TestFanoutConverges: mirrors that follow all states, some, or all but
// some, with their connections cut now and then (resume from the update
// buffer, or a full resync after its end), while the source changes from
// several goroutines: once the source is quiet, every mirror shows the
// source's ticks of the states it follows and tick 0 for the others.
func TestFanoutConverges(t *testing.T) {
	const (
		nClients = 12
		changes  = 300
	)
	src := newTestSource(t, nil)
	// a small resume buffer, so that some resumes fall back to a resync
	srv := rpctest.NewServer(t, src, rpc.WithResumeBuffer(8), rpc.WithPushInterval(time.Millisecond))
	follows := []am.S{nil, {sA, sM}, {sB}}
	keepers := make([]*connKeeper, nClients)
	clients := make([]*rpc.Client, nClients)
	for i := range clients {
		keepers[i] = &connKeeper{}
		opts := []rpc.ClientOption{rpc.WithDialer(keepers[i].dial),
			rpc.WithReconnect(true, time.Millisecond, 5*time.Millisecond)}
		switch f := follows[i%len(follows)]; {
		case f == nil:
		case i%2 == 0:
			opts = append(opts, rpc.WithSyncStates(f...))
		default:
			skip := am.S{}
			for _, n := range src.StateNames() {
				if !slices.Contains(f, n) && n != am.Exception {
					skip = append(skip, n)
				}
			}
			opts = append(opts, rpc.WithSkipStates(skip...))
		}
		clients[i] = newTestClient(t, srv, fmt.Sprintf("c%02d", i), opts...)
	}

	var wg sync.WaitGroup
	for g, state := range []string{sA, sB, sM} {
		wg.Go(func() {
			for j := range changes {
				if state == sM || j%2 == 0 {
					src.Add1(state, am.A{"g": g, "j": j})
				} else {
					src.Remove1(state, nil)
				}
			}
		})
	}
	wg.Go(func() {
		// a cut every few changes, while they are being made
		for j := range changes / 10 {
			for src.Tick(sM) < uint64(20*j) {
				runtime.Gosched()
			}
			keepers[j%nClients].cutQuiet()
		}
	})
	wg.Wait()

	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	waitCh(t, src.WhenQueueEnds(ctx), "the source's queue to drain")
	for i, c := range clients {
		want := am.Time{}
		for _, n := range src.StateNames() {
			if f := follows[i%len(follows)]; f == nil || slices.Contains(f, n) {
				want = append(want, src.Tick(n))
			} else {
				want = append(want, 0)
			}
		}
		select {
		case <-c.Worker.WhenTime(src.StateNames(), want, ctx):
		case <-ctx.Done():
		}
		require.Equal(t, want, c.Worker.Time(nil), "client %d (following %v)", i, follows[i%len(follows)])
	}
	require.Greater(t, srv.Stats().Handshakes, uint64(nClients), "the cuts made clients come back")
}
