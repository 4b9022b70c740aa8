package main

import (
	"context"
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/arpc-go/arpc/internal/exampletest"
	am "github.com/arpc-go/arpc/pkg/machine"
	"github.com/arpc-go/arpc/pkg/rpc"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestOrders serves the desk, orders once through a client that knows
// nothing of its schema (as cmd/arpc does), and stops it.
func TestOrders(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out exampletest.Buffer
	done := make(chan error, 1)
	go func() { done <- run(ctx, "127.0.0.1:0", &out) }()
	re := regexp.MustCompile(`serving on (\S+) `)
	require.Eventually(t, func() bool { return re.MatchString(out.String()) }, exampletest.Timeout, time.Millisecond)
	addr := re.FindStringSubmatch(out.String())[1]

	rctx, rcancel := context.WithTimeout(ctx, exampletest.Timeout)
	defer rcancel()
	c, err := rpc.DialAny(rctx, addr)
	require.NoError(t, err)
	require.True(t, c.Worker.Is(am.S{"Open", "Idle"}), c.Worker.String())
	answer, err := c.Worker.Request(rctx, "Requested", am.A{"order": 7}, "Done")
	require.NoError(t, err)
	require.Equal(t, "shipped", answer["result"])
	require.NoError(t, am.WaitFor(rctx, c.Worker, "Idle"))
	require.NoError(t, c.Close())

	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(exampletest.Timeout):
		t.Fatal("the desk did not stop")
	}
	require.Contains(t, out.String(), "order 7 done\n")
	require.Contains(t, out.String(), "orders: stopped\n")
}
