package benchgrpc

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/arpc-go/arpc/benchmark_grpc/pb"
)

// testCycles is how many cycles each client of the transport tests runs.
const testCycles = 50

// TestTransports runs every transport the benchmarks run, metered, with three concurrent clients of
// 50 cycles each, and checks the counters the benchmarks report.
func TestTransports(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			e := newEnv(t, tr, 3, true)
			defer closeEnv(t, e)
			require.Len(t, e.clients, 3)
			wire0, calls0 := snapshot(e.wire), snapshot(e.calls)
			require.NoError(t, runClients(t.Context(), e.clients, testCycles))
			assert.Equal(t, uint64(3*testCycles), e.completions())
			assert.Zero(t, e.mismatches())
			if tr.name == "local" {
				assert.Nil(t, e.wire)
				return
			}
			assert.Greater(t, snapshot(e.wire)-wire0, uint64(3*testCycles), "wire bytes")
			assert.GreaterOrEqual(t, snapshot(e.calls)-calls0, uint64(3*testCycles), "calls")
		})
	}
}

// TestGRPCCallCounts checks the exact message counts of both gRPC clients: unary is GetValue, CallOp
// and a notification per cycle (plus Subscribe and the first notification at set-up); bidi is one op
// and one value per cycle (plus the first value).
func TestGRPCCallCounts(t *testing.T) {
	for _, tc := range []struct {
		name             string
		bidi             bool
		client, server   uint64 // at set-up
		perCycleC, perCS uint64
	}{
		{"unary", false, 1, 1, 2, 1},
		{"bidi", true, 0, 1, 1, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, err := NewGRPCServer()
			require.NoError(t, err)
			defer srv.Close()
			p, err := NewProxy(srv.Addr())
			require.NoError(t, err)
			defer p.Close()
			var calls CallCounter
			cc, err := DialGRPC(p.Addr(), &calls)
			require.NoError(t, err)
			defer cc.Close()
			var c Client
			if tc.bidi {
				c, err = NewBidiClient(t.Context(), cc)
			} else {
				c, err = NewUnaryClient(t.Context(), cc)
			}
			require.NoError(t, err)
			defer c.Close()

			assert.Equal(t, tc.client, calls.Load(), "client calls at set-up")
			assert.Equal(t, tc.server, srv.Calls(), "server messages at set-up")
			for i := range testCycles {
				require.NoError(t, c.Cycle(t.Context()), "cycle %d", i)
			}
			assert.Equal(t, tc.client+tc.perCycleC*testCycles, calls.Load())
			assert.Equal(t, tc.server+tc.perCS*testCycles, srv.Calls())
			assert.Equal(t, uint64(testCycles), srv.Completions())
			assert.Zero(t, srv.Mismatches())
			assert.NotZero(t, p.BytesUp())
			assert.NotZero(t, p.BytesDown())
		})
	}
}

// TestGRPCMismatch checks that a wrong op is counted on the server and reported to the client, for
// both services, so the benchmarks' zero-mismatch assertion can fail.
func TestGRPCMismatch(t *testing.T) {
	srv, err := NewGRPCServer()
	require.NoError(t, err)
	defer srv.Close()
	cc, err := DialGRPC(srv.Addr(), nil)
	require.NoError(t, err)
	defer cc.Close()

	t.Run("unary", func(t *testing.T) {
		c, err := NewUnaryClient(t.Context(), cc)
		require.NoError(t, err)
		defer c.Close()
		api := pb.NewWorkerClient(cc)
		v, err := api.GetValue(t.Context(), &pb.GetValueRequest{Session: c.session})
		require.NoError(t, err)
		r, err := api.CallOp(t.Context(), &pb.CallOpRequest{Session: c.session, Op: v.GetValue()%3 + 1})
		require.NoError(t, err)
		assert.False(t, r.GetOk())
		assert.Equal(t, uint64(1), srv.Mismatches())

		_, err = api.GetValue(t.Context(), &pb.GetValueRequest{Session: 1 << 40})
		assert.Equal(t, codes.NotFound, status.Code(err), "unknown session")
	})
	t.Run("bidi", func(t *testing.T) {
		c, err := NewBidiClient(t.Context(), cc)
		require.NoError(t, err)
		defer c.Close()
		c.val.Value = c.val.GetValue()%3 + 1 // the client now believes a wrong value
		assert.ErrorIs(t, c.Cycle(t.Context()), ErrMismatch)
		assert.Equal(t, uint64(2), srv.Mismatches())
	})
}

// TestGRPCSetupHonoursContext checks that a client's set-up gives up when its context ends.
func TestGRPCSetupHonoursContext(t *testing.T) {
	srv, err := NewGRPCServer()
	require.NoError(t, err)
	defer srv.Close()
	cc, err := DialGRPC(srv.Addr(), nil)
	require.NoError(t, err)
	defer cc.Close()
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err = NewUnaryClient(ctx, cc)
	assert.Error(t, err)
	_, err = NewBidiClient(ctx, cc)
	assert.Error(t, err)
}

// TestGRPCBidiWireBytes pins the meter against a size computed by hand: with the tuned options (no
// BDP pings, no window updates at this volume) a bidi cycle is two HTTP/2 DATA frames of 9 (frame
// header) + 5 (gRPC length prefix) + 2 (field tag and a one-byte varint) = 16 bytes each.
func TestGRPCBidiWireBytes(t *testing.T) {
	e := newEnv(t, transport{"grpc-bidi", setupGRPC(true)}, 1, true)
	defer closeEnv(t, e)
	require.NoError(t, runClients(t.Context(), e.clients, 5))
	wire0 := e.wire()
	require.NoError(t, runClients(t.Context(), e.clients, testCycles))
	assert.Equal(t, uint64(32*testCycles), e.wire()-wire0)
}
