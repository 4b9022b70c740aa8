package rpc_test

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	am "github.com/arpc-go/arpc/pkg/machine"
	"github.com/arpc-go/arpc/pkg/rpc"
	"github.com/arpc-go/arpc/pkg/rpc/rpctest"
)

// describedStruct has every kind of relation and flag, and a relation to a
// state the schema does not define (the engine ignores it, the schema hash
// does not).
func describedStruct() am.Struct {
	return am.Struct{
		"Start":  {Add: am.S{"Ready"}, Require: am.S{"Config"}},
		"Ready":  {Auto: true, Remove: am.S{"Ghost"}, After: am.S{"Config"}},
		"Config": {},
		"Stop":   {Remove: am.S{"Start", "Ready"}},
		"Job":    {Multi: true, Require: am.S{"Ready"}},
	}
}

var describedNames = am.S{"Config", "Start", "Ready", "Job", "Stop", am.Exception}

func newDescribedSource(t *testing.T) *am.Machine {
	t.Helper()
	m := am.New(context.Background(), describedStruct(), &am.Opts{ID: "described"})
	require.NoError(t, m.VerifyStates(describedNames))
	t.Cleanup(func() {
		m.Dispose()
		waitCh(t, m.WhenDisposed(), "source disposed")
	})
	return m
}

// TestDescribe learns a server's schema with no prior knowledge and
// connects with it, both by hand and with DialAny.
func TestDescribe(t *testing.T) {
	src := newDescribedSource(t)
	srv := rpctest.NewServer(t, src)
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()

	schema, names, err := rpc.Describe(ctx, srv.Addr)
	require.NoError(t, err)
	require.Equal(t, describedNames, names)
	want := src.GetStruct()
	require.Equal(t, rpc.SchemaHash(want, names), rpc.SchemaHash(schema, names))
	for _, n := range names {
		w, g := want[n], schema[n]
		require.Equal(t, w.Auto, g.Auto, n)
		require.Equal(t, w.Multi, g.Multi, n)
		require.ElementsMatch(t, w.Add, g.Add, n)
		require.ElementsMatch(t, w.Require, g.Require, n)
		require.ElementsMatch(t, w.Remove, g.Remove, n)
		require.ElementsMatch(t, w.After, g.After, n)
	}
	require.Contains(t, schema["Ready"].Remove, "Ghost")

	c, err := rpc.Dial(ctx, srv.Addr, schema, names)
	require.NoError(t, err)
	require.NoError(t, c.Close())

	require.Equal(t, am.Executed, src.Add(am.S{"Config", "Start"}, nil))
	c, err = rpc.DialAny(ctx, srv.Addr)
	require.NoError(t, err)
	defer c.Close()
	require.Equal(t, describedNames, c.Worker.StateNames())
	require.True(t, c.Worker.Is(am.S{"Config", "Start", "Ready"}), c.Worker.String())
	_, err = c.Worker.Mutate(ctx, am.MutationAdd, am.S{"Job"}, nil)
	require.NoError(t, err)
	require.Equal(t, uint64(1), c.Worker.Tick("Job"))
}

// TestDescribeOff: a server started with WithIntrospection(false) tells
// nothing, but still serves clients that know the schema.
func TestDescribeOff(t *testing.T) {
	src := newDescribedSource(t)
	srv := rpctest.NewServer(t, src, rpc.WithIntrospection(false))
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()

	_, _, err := rpc.Describe(ctx, srv.Addr)
	require.ErrorIs(t, err, rpc.ErrIntrospectionOff)
	_, err = rpc.DialAny(ctx, srv.Addr)
	require.ErrorIs(t, err, rpc.ErrIntrospectionOff)

	c, err := rpc.Dial(ctx, srv.Addr, describedStruct(), describedNames)
	require.NoError(t, err)
	require.NoError(t, c.Close())
}

// TestDescribeUnreachable: nobody listens on the port.
func TestDescribeUnreachable(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := lis.Addr().String()
	require.NoError(t, lis.Close())
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	_, _, err = rpc.Describe(ctx, addr)
	require.ErrorIs(t, err, rpc.ErrNetwork)
}

// TestDescribeSilentServer: a peer that accepts and never answers costs the
// caller its ctx deadline, not more, and leaves nothing running.
func TestDescribeSilentServer(t *testing.T) {
	addr := silentServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, _, err := rpc.Describe(ctx, addr)
	require.ErrorIs(t, err, rpc.ErrNetwork)
	require.True(t, errors.Is(err, context.DeadlineExceeded), "%v", err)
	require.Less(t, time.Since(start), deadline)
}
