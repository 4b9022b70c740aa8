package rpc_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	am "github.com/arpc-go/arpc/pkg/machine"
	"github.com/arpc-go/arpc/pkg/rpc"
	"github.com/arpc-go/arpc/pkg/rpc/rpctest"
)

// TestManyClients: one server serves 100 clients at once, each with its own
// session and diff baseline. Clients and the server's side mutate the source
// concurrently; afterwards every mirror shows exactly the source's time.
func TestManyClients(t *testing.T) {
	const (
		nClients  = 100
		perClient = 5
		bySource  = 50
	)
	src := newTestSource(t, nil)
	srv := rpctest.NewServer(t, src)
	clients := make([]*rpc.Client, nClients)
	for i := range clients {
		clients[i] = newTestClient(t, srv, fmt.Sprintf("c%03d", i))
	}
	require.Equal(t, nClients, srv.ClientCount())

	var wg sync.WaitGroup
	for i, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := c.Worker
			for j := range perClient {
				assert.Equal(t, am.Executed, w.Add1(sM, nil), "client %d Add1(M)", i)
				var res am.Result
				switch (i + j) % 3 {
				case 0:
					res = w.Add1(sA, nil)
				case 1:
					res = w.Remove1(sA, nil)
				default:
					res = w.Add1(sC, nil)
				}
				assert.Equal(t, am.Executed, res, "client %d op %d", i, j)
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for j := range bySource {
			// with args: the engine drops an arg-less Add queued twice
			src.Add1(sM, am.A{"j": j})
			src.Remove1(sC, nil)
			src.Add1(sB, nil)
		}
	}()
	wg.Wait()
	// the source's own Add1s may have been queued behind the clients'
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	waitCh(t, src.WhenQueueEnds(ctx), "the source's queue to drain")

	wantM := uint64(2*(nClients*perClient+bySource) - 1)
	require.Equal(t, wantM, src.Tick(sM), "every Add1(M) ran once")
	for _, c := range clients {
		waitSynced(t, c.Worker, src)
	}
	assert.Equal(t, nClients, srv.ClientCount())
}
