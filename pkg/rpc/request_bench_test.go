package rpc_test

import (
	"context"
	"testing"

	am "github.com/arpc-go/arpc/pkg/machine"
	"github.com/arpc-go/arpc/pkg/rpc"
	"github.com/arpc-go/arpc/pkg/rpc/rpctest"
)

// BenchmarkRequest compares, in one run over loopback TCP, a Request
// answered by the source's handler (/request) with a plain Mutate of the
// same state, whose handler does the same work (/mutate): the Add and the
// answering Add on the source, one round trip each.
func BenchmarkRequest(b *testing.B) {
	ctx := context.Background()
	args := am.A{"mode": modeSync, "n": 1}
	b.Run("mutate", func(b *testing.B) {
		w := newBenchReqWorker(b)
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if _, err := w.Mutate(ctx, am.MutationAdd, am.S{sReq}, args); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("request", func(b *testing.B) {
		w := newBenchReqWorker(b)
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			res, err := w.Request(ctx, sReq, args, sDone)
			if err != nil || res["result"] != 2 {
				b.Fatal(res, err)
			}
		}
	})
}

func newBenchReqWorker(b *testing.B) *rpc.Worker {
	src := newReqSource(b, newAnswerer(1))
	srv := rpctest.NewServer(b, src)
	return newReqClient(b, srv).Worker
}
