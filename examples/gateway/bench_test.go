package main

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"runtime/metrics"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	am "github.com/arpc-go/arpc/pkg/machine"
)

// BenchmarkGateway measures requests through the HTTP front end, over
// loopback, from concurrent HTTP clients (keep-alive connections, one per
// client) in the same process, and reports the throughput (req/s) and the
// latency percentiles the clients saw. Each request is answered
// asynchronously by the backend's worker pool, and each response is checked
// (200 and n² of its own n). Loads:
//
//   - clients=N: N clients, each sending its next request as soon as it
//     has the previous answer (the most the system does);
//   - rate=5000: 64 clients sending 5,000 requests/s between them, on a
//     fixed schedule; a latency counts from the request's scheduled time,
//     so a backlog shows in it.
//
// Peers in the same run:
//
//   - arpc: the example as it runs, a Request over the aRPC client;
//   - local: the same gateway and backend, with Request on the backend
//     machine itself (no aRPC client, server or connection);
//   - http: the same HTTP server and clients, the handler computing n²
//     itself (the cost of HTTP and of the load generator alone).
func BenchmarkGateway(b *testing.B) {
	loads := []struct {
		name          string
		clients, rate int
	}{{"clients=16", 16, 0}, {"clients=64", 64, 0}, {"rate=5000", 64, 5000}}
	for _, load := range loads {
		for _, peer := range []string{"arpc", "local", "http"} {
			b.Run(peer+"/"+load.name, func(b *testing.B) {
				s, err := newSystem(b.Context(), config{workers: 4, queue: 4096})
				if err != nil {
					b.Fatal(err)
				}
				defer s.Close()
				var h http.Handler
				switch peer {
				case "arpc":
					h = (&gateway{backend: s.client.Worker, logf: s.logf}).handler()
				case "local":
					h = (&gateway{backend: am.Api(s.mach), logf: s.logf}).handler()
				default:
					h = http.HandlerFunc(squareDirect)
				}
				benchHTTP(b, h, load.clients, load.rate)
			})
		}
	}
}

// goroutinesCreated returns how many goroutines the process has started.
func goroutinesCreated() uint64 {
	s := []metrics.Sample{{Name: "/sched/goroutines-created:goroutines"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// squareDirect is the http peer's handler: the same query and response as
// the gateway's, without a backend.
func squareDirect(w http.ResponseWriter, r *http.Request) {
	n, err := strconv.Atoi(r.URL.Query().Get("n"))
	if err != nil {
		http.Error(w, "n: want an integer", http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprintf(w, "%v\n", n*n)
}

// benchHTTP serves h on loopback and sends b.N requests from clients
// goroutines, as fast as they can, or at rate requests/s between them when
// rate > 0, checking every response.
func benchHTTP(b *testing.B, h http.Handler, clients, rate int) {
	hs := httptest.NewServer(h)
	defer hs.Close()
	c := hs.Client()
	c.Transport.(*http.Transport).MaxIdleConnsPerHost = clients
	defer c.CloseIdleConnections()
	url := hs.URL + "/square?timeout=10s&n="

	// Open the clients' connections before the clock starts.
	var warm sync.WaitGroup
	for range clients {
		warm.Go(func() {
			resp, err := c.Get(url + "0")
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		})
	}
	warm.Wait()

	var (
		mu    sync.Mutex
		lats  []time.Duration
		next  int64
		slots atomic.Int64
	)
	var interval time.Duration
	if rate > 0 {
		interval = time.Second / time.Duration(rate)
	}
	b.SetParallelism(max(clients/runtime.GOMAXPROCS(0), 1))
	b.ReportAllocs()
	b.ResetTimer()
	created := goroutinesCreated()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		mine := make([]time.Duration, 0, 1024)
		mu.Lock()
		n := next
		next += 1 << 24
		mu.Unlock()
		pace := time.NewTimer(0)
		defer pace.Stop()
		<-pace.C
		for pb.Next() {
			n++
			t0 := time.Now()
			if interval > 0 {
				// the request's slot in the schedule
				t0 = start.Add(time.Duration(slots.Add(1)-1) * interval)
				if d := time.Until(t0); d > 0 {
					pace.Reset(d)
					<-pace.C
				}
			}
			resp, err := c.Get(url + strconv.FormatInt(n, 10))
			if err != nil {
				b.Error(err)
				return
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			mine = append(mine, time.Since(t0))
			if err != nil || resp.StatusCode != http.StatusOK || string(body) != strconv.FormatInt(n*n, 10)+"\n" {
				b.Errorf("n=%d: %d %q, %v", n, resp.StatusCode, body, err)
				return
			}
		}
		mu.Lock()
		lats = append(lats, mine...)
		mu.Unlock()
	})
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(goroutinesCreated()-created)/float64(b.N), "goroutines/op")
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "req/s")
	b.ReportMetric(float64(quantile(lats, 0.5))/float64(time.Millisecond), "p50-ms")
	b.ReportMetric(float64(quantile(lats, 0.99))/float64(time.Millisecond), "p99-ms")
}
