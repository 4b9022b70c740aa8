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

var benchClients = flag.Int("arpcnats.tcpclients", 100,
	"pkg/rpc TCP clients of one machine in BenchmarkSourceTransition, for the side-by-side figure")

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
// transition of a source with many remote mirrors: pkg/rpc's TCP clients
// (-arpcnats.tcpclients, default 100) and NATS mirrors (-arpcnats.mirrors,
// default 1,000; they share 8 connections). ns/op is a tight loop of Add1
// on the source, with the fan-out running on the same 2 cores (mirrors in
// the same process compete with it). Then 50 paced changes, each waited
// for on every mirror before the next, give the Add1 call alone
// (add-p50/max-ns) and how long a change takes to reach the mirrors (p50,
// p99, max; waited for mirror by mirror, so an upper bound).
func BenchmarkSourceTransition(b *testing.B) {
	for _, n := range []int{1, *benchClients} {
		b.Run(fmt.Sprintf("rpc-tcp/clients=%d", n), func(b *testing.B) {
			src := newSource(b, schema, names)
			srv := rpctest.NewServer(b, src, rpc.WithMaxConns(n+16), rpc.WithMaxSessions(n+16))
			apis := make([]am.Api, n)
			for i := range apis {
				apis[i] = rpctest.NewClient(b, srv, fmt.Sprintf("c%d", i), schema, names).Worker
			}
			transitions(b, src, apis)
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
			apis := make([]am.Api, n)
			for i := range apis {
				apis[i] = mirror(b, conns[i%len(conns)], "fan", schema, names)
			}
			transitions(b, src, apis)
		})
	}
}

// transitions times b.N transitions of src, then paced ones.
func transitions(b *testing.B, src *am.Machine, apis []am.Api) {
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		src.Add1("Count", nil)
	}
	b.StopTimer()
	adds, lat := paced(b, src, apis, 50)
	b.ReportMetric(float64(adds[len(adds)/2].Nanoseconds()), "add-p50-ns")
	b.ReportMetric(float64(adds[len(adds)-1].Nanoseconds()), "add-max-ns")
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
	b.ReportMetric(float64(lat[len(lat)-1].Microseconds()), "max-µs")
}

// paced makes k changes on src, each once every mirror shows the last,
// and returns the durations of the Add1 calls and, for each change and
// mirror, when the mirror showed it.
func paced(b *testing.B, src *am.Machine, apis []am.Api, k int) (adds, lat []time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// catch up with the timed loop first
	want := src.Time(nil)
	for _, m := range apis {
		<-m.WhenTime(names, want, ctx)
	}
	chs := make([]<-chan struct{}, len(apis))
	for j := 0; j < k; j++ {
		next := src.Tick("Count") + 2
		if next%2 == 0 {
			next--
		}
		for i, m := range apis {
			chs[i] = m.WhenTicksEq("Count", next, ctx)
		}
		start := time.Now()
		src.Add1("Count", nil)
		adds = append(adds, time.Since(start))
		for _, ch := range chs {
			<-ch
			lat = append(lat, time.Since(start))
		}
		if ctx.Err() != nil {
			b.Fatal("mirrors did not converge within a minute")
		}
	}
	slices.Sort(adds)
	slices.Sort(lat)
	return adds, lat
}
