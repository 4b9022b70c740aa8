package rpc_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	am "github.com/arpc-go/arpc/pkg/machine"
	"github.com/arpc-go/arpc/pkg/rpc"
	"github.com/arpc-go/arpc/pkg/rpc/rpctest"
	ssC "github.com/arpc-go/arpc/states/client"
)

// TestSendPayload: the server sends payloads to one client by ID or to all;
// each client keeps the last payload of each name and gets the Multi Payload
// state with the payload's name; an unknown destination is an error.
func TestSendPayload(t *testing.T) {
	src := newTestSource(t, nil)
	srv := rpctest.NewServer(t, src)
	a := newTestClient(t, srv, "a")
	b := newTestClient(t, srv, "b")
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()

	// to one client
	gotA := a.Mach.WhenArgs(ssC.Payload, am.A{"name": "one"}, ctx)
	require.NoError(t, srv.SendPayload(ctx, &rpc.ArgsPayload{Name: "one", Destination: "a", Data: []byte("to a")}))
	waitCh(t, gotA, "Payload{name: one} on a")
	require.Contains(t, a.Payloads(), "one")
	assert.Equal(t, []byte("to a"), a.Payloads()["one"].Data)
	assert.Empty(t, b.Payloads(), "b got a's payload")
	assert.Equal(t, uint64(1), a.Mach.Tick(ssC.Payload))
	assert.Zero(t, b.Mach.Tick(ssC.Payload))

	// to all
	allA := a.Mach.WhenArgs(ssC.Payload, am.A{"name": "all"}, ctx)
	allB := b.Mach.WhenArgs(ssC.Payload, am.A{"name": "all"}, ctx)
	require.NoError(t, srv.SendPayload(ctx, &rpc.ArgsPayload{Name: "all", Data: []byte("both")}))
	waitCh(t, allA, "Payload{name: all} on a")
	waitCh(t, allB, "Payload{name: all} on b")
	for _, c := range []*rpc.Client{a, b} {
		require.Contains(t, c.Payloads(), "all")
		assert.Equal(t, []byte("both"), c.Payloads()["all"].Data)
	}
	assert.Equal(t, uint64(3), a.Mach.Tick(ssC.Payload), "Payload is Multi: re-entered")
	assert.Equal(t, uint64(1), b.Mach.Tick(ssC.Payload))

	// the last payload of a name wins; Payloads is a copy
	require.NoError(t, srv.SendPayload(ctx, &rpc.ArgsPayload{Name: "one", Destination: "a", Data: []byte("again")}))
	assert.Equal(t, []byte("again"), a.Payloads()["one"].Data)
	assert.Len(t, a.Payloads(), 2)
	p := a.Payloads()
	delete(p, "one")
	assert.Contains(t, a.Payloads(), "one")

	// bad destinations
	err := srv.SendPayload(ctx, &rpc.ArgsPayload{Name: "x", Destination: "nobody"})
	assert.ErrorIs(t, err, rpc.ErrUnknownClient)
	assert.ErrorIs(t, srv.SendPayload(ctx, nil), rpc.ErrInvalidParams)
	assert.NotContains(t, a.Payloads(), "x")
	assert.NotContains(t, b.Payloads(), "x")

	// a stopped client is unknown
	stopCtx, stopCancel := context.WithTimeout(context.Background(), deadline)
	defer stopCancel()
	require.Equal(t, am.Executed, b.Stop(stopCtx, false))
	require.Eventually(t, func() bool { return srv.ClientCount() == 1 }, deadline, poll)
	err = srv.SendPayload(ctx, &rpc.ArgsPayload{Name: "y", Destination: "b"})
	assert.ErrorIs(t, err, rpc.ErrUnknownClient)
}
