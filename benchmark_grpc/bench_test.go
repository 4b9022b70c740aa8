package benchgrpc

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"
)

// warmUpCycles run before each timed loop, outside the timed region and the wire/call snapshots, so
// the connection is in its steady state (flow-control windows, pings, buffers) when timing starts.
const warmUpCycles = 16

// scaleClients are the client counts of BenchmarkScale.
var scaleClients = []int{1, 10, 100}

// BenchmarkCycle runs b.N strictly sequential cycles of one client against one worker, for each
// transport. Remote transports go through the metering proxy. Reported beside ns/op, B/op and
// allocs/op (which count both ends and the proxy: they share the process):
//   - wire-B/op: bytes relayed by the proxy, both directions, per cycle (timed loop only);
//   - calls/op: calls and messages originated by both ends per cycle (timed loop only);
//   - mismatches: ops the worker counted as errors (the benchmark fails unless 0).
func BenchmarkCycle(b *testing.B) {
	for _, tr := range transports {
		b.Run(tr.name, func(b *testing.B) {
			ctx := context.Background()
			e := newEnv(b, tr, 1, true)
			defer closeEnv(b, e)
			c := e.clients[0]
			for i := range warmUpCycles {
				if err := c.Cycle(ctx); err != nil {
					b.Fatalf("warm-up cycle %d: %v", i, err)
				}
			}
			wire0, calls0 := snapshot(e.wire), snapshot(e.calls)
			done0 := e.completions()
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := c.Cycle(ctx); err != nil {
					b.Fatalf("cycle %d: %v", i, err)
				}
			}
			b.StopTimer()
			wire1, calls1 := snapshot(e.wire), snapshot(e.calls)
			report(b, e, done0, uint64(b.N))
			if e.wire != nil {
				b.ReportMetric(float64(wire1-wire0)/float64(b.N), "wire-B/op")
			}
			if e.calls != nil {
				b.ReportMetric(float64(calls1-calls0)/float64(b.N), "calls/op")
			}
		})
	}
}

// BenchmarkScale runs N concurrent clients, each with its own worker, against one server per
// transport (aRPC: one server per client, all in this process; see README). Every client runs b.N
// cycles, so one op is one round of N cycles; cycles/s is the aggregate rate, N×b.N over the wall
// time of the timed loop. No proxy: the clients dial the server directly.
func BenchmarkScale(b *testing.B) {
	for _, tr := range transports {
		for _, n := range scaleClients {
			b.Run(fmt.Sprintf("%s/clients=%d", tr.name, n), func(b *testing.B) {
				ctx := context.Background()
				e := newEnv(b, tr, n, false)
				defer closeEnv(b, e)
				if err := runClients(ctx, e.clients, 1); err != nil {
					b.Fatalf("warm-up: %v", err)
				}
				done0 := e.completions()
				b.ReportAllocs()
				b.ResetTimer()
				start := time.Now()
				err := runClients(ctx, e.clients, b.N)
				elapsed := time.Since(start)
				b.StopTimer()
				if err != nil {
					b.Fatal(err)
				}
				report(b, e, done0, uint64(n*b.N))
				b.ReportMetric(float64(n*b.N)/elapsed.Seconds(), "cycles/s")
			})
		}
	}
}

// runClients runs cycles cycles on every client concurrently and returns the first error.
func runClients(ctx context.Context, clients []Client, cycles int) error {
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	for i, c := range clients {
		wg.Go(func() {
			for k := range cycles {
				if err := c.Cycle(ctx); err != nil {
					mu.Lock()
					if first == nil {
						first = fmt.Errorf("client %d, cycle %d: %w", i, k, err)
					}
					mu.Unlock()
					return
				}
			}
		})
	}
	wg.Wait()
	return first
}

// report checks that the timed loop completed exactly want operations with no mismatch, and reports
// the mismatch count.
func report(b *testing.B, e *env, done0, want uint64) {
	b.Helper()
	miss := e.mismatches()
	b.ReportMetric(float64(miss), "mismatches")
	if miss != 0 {
		b.Fatalf("%d op/value mismatches", miss)
	}
	if got := e.completions() - done0; got != want {
		b.Fatalf("completions in the timed loop: got %d, want %d", got, want)
	}
}

// snapshot reads an optional counter.
func snapshot(fn func() uint64) uint64 {
	if fn == nil {
		return 0
	}
	return fn()
}
