package arpcnats_test

import (
	"context"
	"flag"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/arpc-go/arpc/arpcnats"
	am "github.com/arpc-go/arpc/pkg/machine"
	"github.com/arpc-go/arpc/pkg/rpc"
	"github.com/arpc-go/arpc/pkg/rpc/rpctest"
	"github.com/nats-io/nats.go"
)

var benchMirrors = flag.Int("arpcnats.mirrors", 1000,
	"mirrors of one machine in BenchmarkSourceTransition (10000 for the scale figure)")

// BenchmarkMutationRoundTrip is one mutation (Add of a Multi state) from a
// mirror to the source and back, the mirror reflecting it when the call
// returns: over pkg/rpc's TCP transport, over NATS (reply once applied),
// and over NATS with WithAckPersisted (reply once JetStream acknowledged
// the state write), in the same run.
func BenchmarkMutationRoundTrip(b *testing.B) {
	b.Run("rpc-tcp", func(b *testing.B) {
		src := newSource(b, schema, names)
		_, c := rpctest.NewPair(b, src, nil, nil)
		benchMutations(b, c.Worker)
	})
	for _, persisted := range []bool{false, true} {
		name := "nats"
		if persisted {
			name = "nats-ack-persisted"
		}
		b.Run(name, func(b *testing.B) {
			e := startNATS(b)
			src := newSource(b, schema, names)
			serve(b, connect(b, e.ClientURL()), src, "rt", arpcnats.WithAckPersisted(persisted))
			benchMutations(b, mirror(b, connect(b, e.ClientURL()), "rt", schema, names))
		})
	}
}

func benchMutations(b *testing.B, m am.Mutator) {
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := m.Mutate(ctx, am.MutationAdd, am.S{"Count"}, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSourceTransition is the cost, on the mutating path, of one
// transition of a source served over NATS with many mirrors (the
// -arpcnats.mirrors flag; they share 8 connections): NATS fans each update
// out, so the server's cost doesn't grow with the mirrors. It also
// reports, over 50 sampled changes, how long a change takes to reach the
// mirrors (p50, p99, max; waited for mirror by mirror, so an upper bound).
func BenchmarkSourceTransition(b *testing.B) {
	for _, n := range []int{1, 100} {
		b.Run(fmt.Sprintf("rpc-tcp/clients=%d", n), func(b *testing.B) {
			src := newSource(b, schema, names)
			srv := rpctest.NewServer(b, src)
			var last *rpc.Client
			for i := 0; i < n; i++ {
				last = rpctest.NewClient(b, srv, fmt.Sprintf("c%d", i), schema, names)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				src.Add1("Count", nil)
			}
			b.StopTimer()
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			<-last.Worker.WhenTime(names, src.Time(nil), ctx)
		})
	}
	for _, n := range []int{1, 100, *benchMirrors} {
		b.Run(fmt.Sprintf("nats/mirrors=%d", n), func(b *testing.B) {
			e := startNATS(b)
			src := newSource(b, schema, names)
			serve(b, connect(b, e.ClientURL()), src, "fan")
			var conns []*nats.Conn
			for i := 0; i < 8; i++ {
				conns = append(conns, connect(b, e.ClientURL(), nats.SyncQueueLen(1<<16)))
			}
			ms := make([]*arpcnats.Mirror, n)
			for i := range ms {
				ms[i] = mirror(b, conns[i%len(conns)], "fan", schema, names)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				src.Add1("Count", nil)
			}
			b.StopTimer()
			lat := changeLatency(b, src, ms, 50)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
			b.ReportMetric(float64(lat[len(lat)-1].Microseconds()), "max-µs")
		})
	}
}

// changeLatency makes k changes on src and measures, for each, when every
// mirror shows it.
func changeLatency(b *testing.B, src *am.Machine, ms []*arpcnats.Mirror, k int) []time.Duration {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// catch up with the timed loop first
	want := src.Time(nil)
	for _, m := range ms {
		<-m.WhenTime(names, want, ctx)
	}
	var lat []time.Duration
	chs := make([]<-chan struct{}, len(ms))
	for j := 0; j < k; j++ {
		next := src.Tick("Count") + 2
		if next%2 == 0 {
			next--
		}
		for i, m := range ms {
			chs[i] = m.WhenTicksEq("Count", next, ctx)
		}
		start := time.Now()
		src.Add1("Count", nil)
		for _, ch := range chs {
			<-ch
			lat = append(lat, time.Since(start))
		}
		if ctx.Err() != nil {
			b.Fatal("mirrors did not converge within a minute")
		}
	}
	slices.Sort(lat)
	return lat
}
