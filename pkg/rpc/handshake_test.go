package rpc_test

import (
	"context"
	"errors"
	"maps"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	am "github.com/arpc-go/arpc/pkg/machine"
	"github.com/arpc-go/arpc/pkg/rpc"
	"github.com/arpc-go/arpc/pkg/rpc/rpctest"
	ssC "github.com/arpc-go/arpc/states/client"
	ssS "github.com/arpc-go/arpc/states/server"
)

// TestHandshake: a client adopts the source's ID and time at the handshake,
// and the server counts it.
func TestHandshake(t *testing.T) {
	src := newTestSource(t, nil, sA, sM)
	src.Add1(sM, nil) // M re-entered: tick 3
	srv := rpctest.NewServer(t, src)
	c := newTestClient(t, srv, "c1")
	w := c.Worker

	assert.Equal(t, src.ID, w.ID())
	assert.Equal(t, src.Time(nil), w.Time(nil))
	assert.Equal(t, testNames, w.StateNames())
	assert.True(t, w.Is(am.S{sA, sM}))
	assert.Equal(t, uint64(3), w.Tick(sM))
	assert.Equal(t, 1, srv.ClientCount())
	assert.True(t, c.Mach.Is(am.S{ssC.Ready, ssC.HandshakeDone, ssC.Connected}))
	assert.False(t, c.Mach.IsErr(), "client error: %v", c.Mach.Err())
}

// TestServerV07States: the server's control machine keeps the
// asyncmachine-go v0.7 names: ClientConn and ClientDisconn tick per client,
// and HandshakeDone is active while a client is connected.
func TestServerV07States(t *testing.T) {
	src := newTestSource(t, nil)
	srv := rpctest.NewServer(t, src)
	assert.False(t, srv.Mach.Is1(ssS.HandshakeDone))
	c1 := newTestClient(t, srv, "c1")
	c2 := newTestClient(t, srv, "c2")
	assert.True(t, srv.Mach.Is1(ssS.HandshakeDone))
	assert.False(t, srv.Mach.Is1(ssS.Handshaking))
	assert.Equal(t, uint64(3), srv.Mach.Tick(ssS.ClientConn), "two activations of a Multi state")

	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	disconn := srv.Mach.WhenTicks(ssS.ClientDisconn, 1, ctx)
	require.NoError(t, c1.Close())
	waitCh(t, disconn, "ClientDisconn")
	assert.True(t, srv.Mach.Is1(ssS.HandshakeDone), "c2 is still connected")
	require.NoError(t, c2.Close())
	waitCh(t, srv.Mach.WhenNot1(ssS.HandshakeDone, ctx), "HandshakeDone to end with the last client")
}

// TestHandshakeMismatch: a client whose ordered state names or schema differ
// from the server's is refused with ErrSchemaMismatch under ErrRpc, never
// reaches Ready, and the server keeps serving correct clients.
func TestHandshakeMismatch(t *testing.T) {
	swapped := slices.Clone(testNames)
	swapped[0], swapped[1] = swapped[1], swapped[0]

	missing := testStruct()
	delete(missing, sC)
	missingNames := slices.DeleteFunc(slices.Clone(testNames), func(s string) bool { return s == sC })

	relation := testStruct()
	relation[sA] = am.State{Remove: am.S{sB}}

	multi := testStruct()
	multi[sA] = am.State{Multi: true}

	cases := []struct {
		name   string
		schema am.Struct
		names  am.S
	}{
		{"order", testStruct(), swapped},
		{"missing-state", missing, missingNames},
		{"relation", relation, testNames},
		{"multi-flag", multi, testNames},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			src := newTestSource(t, nil)
			srv := rpctest.NewServer(t, src)

			bad, err := rpc.NewClient(context.Background(), srv.Addr, "bad", tc.schema, tc.names)
			require.NoError(t, err, "the client can't know it's wrong before the handshake")
			t.Cleanup(func() {
				ctx, cancel := context.WithTimeout(context.Background(), deadline)
				defer cancel()
				assert.Equal(t, am.Executed, bad.Stop(ctx, true), "stopping the bad client")
			})
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			ready := bad.Mach.When1(ssC.Ready, ctx)
			disconnected := bad.Mach.When1(ssC.Disconnected, ctx)
			bad.Start()
			waitCh(t, bad.Mach.WhenErr(ctx), "the bad client's Exception")
			waitCh(t, disconnected, "the bad client's Disconnected")

			assert.True(t, bad.Mach.Is1(ssC.ErrRpc), "ErrRpc expected: %s", bad.Mach.String())
			assert.True(t, errors.Is(bad.Mach.Err(), rpc.ErrSchemaMismatch), "err: %v", bad.Mach.Err())
			assert.False(t, isClosed(ready), "the bad client reached Ready")
			assert.False(t, bad.Mach.Is1(ssC.HandshakeDone))
			assert.Equal(t, am.Canceled, bad.Worker.Add1(sA, nil))
			assert.True(t, errors.Is(bad.Worker.Err(), rpc.ErrNotReady), "err: %v", bad.Worker.Err())
			assert.False(t, src.Is1(sA), "a refused client mutated the source")
			assert.Equal(t, 0, srv.ClientCount())

			// the server still serves a correct client
			good := newTestClient(t, srv, "good")
			assert.Equal(t, am.Executed, good.Worker.Add1(sA, nil))
			assert.True(t, src.Is1(sA))
			assert.Equal(t, 1, srv.ClientCount())
			assert.False(t, srv.Mach.IsErr(), "server error: %v", srv.Mach.Err())
		})
	}
}

// TestNewClientValidatesNames: names and schema that disagree locally are
// refused before anything is sent.
func TestNewClientValidatesNames(t *testing.T) {
	ctx := context.Background()
	_, err := rpc.NewClient(ctx, "127.0.0.1:1", "x", testStruct(), am.S{sA, sB})
	assert.ErrorIs(t, err, rpc.ErrInvalidParams, "states missing from the names")
	_, err = rpc.NewClient(ctx, "127.0.0.1:1", "x", testStruct(), append(slices.Clone(testNames), "Nope"))
	assert.ErrorIs(t, err, rpc.ErrInvalidParams, "a name not in the schema")
	_, err = rpc.NewClient(ctx, "127.0.0.1:1", "x", testStruct(), append(slices.Clone(testNames), sA))
	assert.ErrorIs(t, err, rpc.ErrInvalidParams, "a duplicated name")
}

// TestSchemaHash: the hash covers the order of the names and every part of
// the schema, and ignores what the engine cleans up.
func TestSchemaHash(t *testing.T) {
	base := rpc.SchemaHash(testStruct(), testNames)

	swapped := slices.Clone(testNames)
	swapped[2], swapped[3] = swapped[3], swapped[2]
	assert.NotEqual(t, base, rpc.SchemaHash(testStruct(), swapped), "order")

	for name, change := range map[string]func(s am.Struct){
		"auto":    func(s am.Struct) { s[sA] = am.State{Auto: true} },
		"multi":   func(s am.Struct) { s[sA] = am.State{Multi: true} },
		"add":     func(s am.Struct) { s[sA] = am.State{Add: am.S{sB}} },
		"require": func(s am.Struct) { s[sA] = am.State{Require: am.S{sB}} },
		"remove":  func(s am.Struct) { s[sA] = am.State{Remove: am.S{sB}} },
		"after":   func(s am.Struct) { s[sA] = am.State{After: am.S{sB}} },
	} {
		s := testStruct()
		change(s)
		assert.NotEqual(t, base, rpc.SchemaHash(s, testNames), name)
	}

	// what the engine cleans up, and the implicit Exception, don't count
	same := testStruct()
	same[sC] = am.State{Remove: am.S{sB, sC}}
	same[am.Exception] = am.State{Multi: true}
	assert.Equal(t, base, rpc.SchemaHash(same, testNames), "self-removal and explicit Exception")
	reordered := testStruct()
	reordered[sA] = am.State{Remove: am.S{sC, sB}}
	other := testStruct()
	other[sA] = am.State{Remove: am.S{sB, sC}}
	assert.Equal(t, rpc.SchemaHash(reordered, testNames), rpc.SchemaHash(other, testNames), "relations are sets")

	// deterministic, and not mutating its input
	s := testStruct()
	before := maps.Clone(s)
	assert.Equal(t, base, rpc.SchemaHash(s, testNames))
	assert.Equal(t, before, s)
}
