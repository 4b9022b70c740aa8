package rpc_test

import (
	"context"
	"fmt"
	"math"
	"os"
	"runtime"
	"runtime/pprof"
	"runtime/trace"
	"slices"
	"testing"
	"time"

	am "github.com/arpc-go/arpc/pkg/machine"
	"github.com/arpc-go/arpc/pkg/rpc"
)

// fanoutProfileEnv, when set to a path, makes BenchmarkFanout write a CPU
// profile of its Add1 loop alone (all of this process's goroutines, without
// the handshakes and push measurements before it) to that path plus
// ".clients=N". -test.cpuprofile profiles the whole run instead; the two
// can't be combined.
const fanoutProfileEnv = "ARPC_FANOUT_CPUPROFILE"

// fanoutTraceEnv names a file for an execution trace of the server while
// it pushes the measured transitions (go tool trace -d=parsed FILE dumps it).
const fanoutTraceEnv = "ARPC_FANOUT_TRACE"

// fanoutHeapEnv names a file to write the heap profile to once the N idle
// clients are connected (what server-B/client measures).
const fanoutHeapEnv = "ARPC_FANOUT_HEAPPROFILE"

// fanoutPushes is how many source transitions push latency is measured over
// (each is seen by every mirror).
const fanoutPushes = 5

// BenchmarkFanout measures one server, exposing one machine, with N idle
// mirrors connected from a child process (TestFanoutChild), with the
// server's default push interval and keepalive:
//
//   - ns/op, add1-p50-ns, add1-p99-ns: one Add1 by one more client (in this
//     process), each toggling Left and Right, so each one is pushed to all N
//     mirrors;
//   - push-p50-ms, push-p99-ms, push-max-ms: from the start of a source
//     transition of Mark to each mirror's WhenTime channel firing, over all
//     mirrors and fanoutPushes transitions (both processes read the same
//     wall clock);
//   - server-B/client, goroutines/client: what the N idle sessions add to
//     this process, after a GC (HeapAlloc + StackInuse, NumGoroutine).
//
// The child shares the machine's cores with the server, so the mirrors'
// work on pushes is part of what the figures include.
func BenchmarkFanout(b *testing.B) {
	for _, n := range []int{100, 1000, 10000} {
		b.Run(fmt.Sprintf("clients=%d", n), func(b *testing.B) { benchFanout(b, n) })
	}
}

func benchFanout(b *testing.B, n int) {
	source := am.New(context.Background(), fanoutStates, &am.Opts{ID: "fanout"})
	if err := source.VerifyStates(fanoutNames); err != nil {
		b.Fatal(err)
	}
	source.Add1("Left", nil)
	defer func() {
		source.Dispose()
		<-source.WhenDisposed()
	}()

	// room for the mirrors, the mutating client and a few reconnects
	srv, err := rpc.Listen(context.Background(), "127.0.0.1:0", source,
		rpc.WithMaxConns(n+64), rpc.WithMaxSessions(n+64))
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), fanoutReadyTimeout)
	defer cancel()
	mut, err := rpc.Dial(ctx, srv.Addr, fanoutStates, fanoutNames, rpc.WithReconnect(false, 0, 0))
	if err != nil {
		b.Fatal(err)
	}
	defer mut.Close()

	heap0, gor0 := serverFootprint()
	child, err := startFanoutChild(srv.Addr, n)
	if err != nil {
		b.Fatal(err)
	}
	// stops before the server closes (defers run last in, first out), and
	// fails the benchmark if the child failed or leaked
	defer func() {
		if err := child.stop(); err != nil {
			b.Error(err)
		}
	}()
	if _, err := child.recv("ready", fanoutReadyTimeout); err != nil {
		b.Fatal(err)
	}
	if got := srv.ClientCount(); got != n+1 {
		b.Fatalf("server has %d clients, want %d", got, n+1)
	}
	heap1, gor1 := serverFootprint()
	if path := os.Getenv(fanoutHeapEnv); path != "" {
		if err := writeHeapProfile(fmt.Sprintf("%s.clients=%d", path, n)); err != nil {
			b.Fatal(err)
		}
	}

	stopTrace, err := startPushTrace(n)
	if err != nil {
		b.Fatal(err)
	}
	lat, err := measurePushes(source, child, n)
	stopTrace()
	if err != nil {
		b.Fatal(err)
	}
	// the sessions' resume buffers fill up as changes are pushed: what an
	// idle client costs once it has been sent a full buffer of them
	if err := fillResumeBuffers(source, child, n); err != nil {
		b.Fatal(err)
	}
	heap2, _ := serverFootprint()

	w := mut.Worker
	toggle := [2]string{"Right", "Left"}
	durs := make([]int64, 0, 1024)
	b.ReportAllocs()
	if path := os.Getenv(fanoutProfileEnv); path != "" {
		stop, err := startLoopProfile(fmt.Sprintf("%s.clients=%d", path, n))
		if err != nil {
			b.Fatal(err)
		}
		defer func() {
			if err := stop(); err != nil {
				b.Error(err)
			}
		}()
	}
	i := 0
	for b.Loop() {
		t0 := time.Now()
		if res := w.Add1(toggle[i&1], nil); res != am.Executed {
			b.Fatalf("Add1(%s) = %v: %v", toggle[i&1], res, w.Err())
		}
		durs = append(durs, time.Since(t0).Nanoseconds())
		i++
	}
	if !w.IsClock(source.Clock(nil)) {
		b.Fatalf("mirror %s != source %s", w.StringAll(), source.StringAll())
	}

	slices.Sort(durs)
	b.ReportMetric(float64(percentile(durs, 0.50)), "add1-p50-ns")
	b.ReportMetric(float64(percentile(durs, 0.99)), "add1-p99-ns")
	slices.Sort(lat)
	ms := func(ns int64) float64 { return float64(ns) / 1e6 }
	b.ReportMetric(ms(percentile(lat, 0.50)), "push-p50-ms")
	b.ReportMetric(ms(percentile(lat, 0.99)), "push-p99-ms")
	b.ReportMetric(ms(lat[len(lat)-1]), "push-max-ms")
	b.ReportMetric(float64(heap1-heap0)/float64(n), "server-B/client")
	b.ReportMetric(float64(heap2-heap0)/float64(n), "server-B/client-later")
	b.ReportMetric(float64(gor1-gor0)/float64(n), "goroutines/client")
}

// measurePushes makes fanoutPushes transitions of Mark on the source and
// returns, for each one and each of the n mirrors, the nanoseconds from
// just before the transition to the mirror seeing it.
func measurePushes(source *am.Machine, child *fanoutChild, n int) ([]int64, error) {
	lat := make([]int64, 0, fanoutPushes*n)
	for k := range fanoutPushes {
		tick := source.Tick("Mark") + 1
		if err := child.send(fanoutMsg{Op: "arm", ID: k, Tick: tick}); err != nil {
			return nil, err
		}
		if _, err := child.recv("armed", fanoutReplyTimeout); err != nil {
			return nil, err
		}
		t0 := time.Now().UnixNano()
		if source.Is1("Mark") {
			source.Remove1("Mark", nil)
		} else {
			source.Add1("Mark", nil)
		}
		if got := source.Tick("Mark"); got != tick {
			return nil, fmt.Errorf("source: Mark at tick %d, want %d", got, tick)
		}
		m, err := child.recv("seen", fanoutReplyTimeout)
		if err != nil {
			return nil, err
		}
		if len(m.Seen) != n {
			return nil, fmt.Errorf("transition %d: %d mirrors answered, want %d", k, len(m.Seen), n)
		}
		for i, t := range m.Seen {
			if t == 0 {
				return nil, fmt.Errorf("transition %d, mirror %d: %w", k, i, errFanoutMissed)
			}
			lat = append(lat, t-t0)
		}
	}
	return lat, nil
}

// serverFootprint returns this process's live heap plus stacks, and its
// goroutine count, after a GC.
func serverFootprint() (bytes int64, goroutines int) {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc + ms.StackInuse), runtime.NumGoroutine()
}

// percentile returns the p-quantile (0 < p ≤ 1) of sorted, by the
// nearest-rank method.
func percentile(sorted []int64, p float64) int64 {
	i := int(math.Ceil(float64(len(sorted))*p)) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

// startLoopProfile starts a CPU profile written to path; stop ends it.
func startLoopProfile(path string) (stop func() error, err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("%s: %w (not with -test.cpuprofile)", fanoutProfileEnv, err)
	}
	return func() error {
		pprof.StopCPUProfile()
		return f.Close()
	}, nil
}

// writeHeapProfile writes the live heap (after a GC) to path.
func writeHeapProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	runtime.GC()
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

// startPushTrace starts the execution trace of fanoutTraceEnv, if set, and
// returns what stops it.
func startPushTrace(n int) (stop func(), err error) {
	path := os.Getenv(fanoutTraceEnv)
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(fmt.Sprintf("%s.clients=%d", path, n))
	if err != nil {
		return nil, err
	}
	if err := trace.Start(f); err != nil {
		_ = f.Close()
		return nil, err
	}
	return func() {
		trace.Stop()
		_ = f.Close()
	}, nil
}

// fillResumeBuffers pushes DefaultResumeBuffer changes of Mark, each seen by
// every mirror before the next, so that every session keeps a full resume
// buffer.
func fillResumeBuffers(source *am.Machine, child *fanoutChild, n int) error {
	for k := range rpc.DefaultResumeBuffer {
		tick := source.Tick("Mark") + 1
		if err := child.send(fanoutMsg{Op: "arm", ID: fanoutPushes + k, Tick: tick}); err != nil {
			return err
		}
		if _, err := child.recv("armed", fanoutReplyTimeout); err != nil {
			return err
		}
		if source.Is1("Mark") {
			source.Remove1("Mark", nil)
		} else {
			source.Add1("Mark", nil)
		}
		m, err := child.recv("seen", fanoutReplyTimeout)
		if err != nil {
			return err
		}
		if len(m.Seen) != n {
			return fmt.Errorf("change %d: %d mirrors answered, want %d", k, len(m.Seen), n)
		}
	}
	return nil
}
