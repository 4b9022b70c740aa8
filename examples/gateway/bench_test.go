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
	"testing"
	"time"

	am "github.com/arpc-go/arpc/pkg/machine"
)

// BenchmarkGateway measures requests through the HTTP front end, over
// loopback, with a number of concurrent HTTP clients (keep-alive
// connections, one per client) in the same process, and reports the
// throughput (req/s) and the latency percentiles seen by the clients. Each
// request is answered asynchronously by the backend's worker pool, and each
// response is checked (200 and n² of its own n). Peers in the same run:
//
//   - arpc: the example as it runs, a Request over the aRPC client;
//   - local: the same gateway and backend, with Request on the backend
//     machine itself (no aRPC client, server or connection);
//   - http: the same HTTP server and clients, the handler computing n²
//     itself (the cost of HTTP and of the load generator alone).
func BenchmarkGateway(b *testing.B) {
	for _, clients := range []int{16, 64} {
		for _, peer := range []string{"arpc", "local", "http"} {
			b.Run(fmt.Sprintf("%s/clients=%d", peer, clients), func(b *testing.B) {
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
				benchHTTP(b, h, clients)
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
// goroutines, checking every response.
func benchHTTP(b *testing.B, h http.Handler, clients int) {
	hs := httptest.NewServer(h)
	defer hs.Close()
	c := hs.Client()
	c.Transport.(*http.Transport).MaxIdleConnsPerHost = clients
	defer c.CloseIdleConnections()
	url := hs.URL + "/square?timeout=5s&n="

	var (
		mu   sync.Mutex
		lats []time.Duration
		next int64
	)
	b.SetParallelism(max(clients/runtime.GOMAXPROCS(0), 1))
	b.ReportAllocs()
	b.ResetTimer()
	created := goroutinesCreated()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		mine := make([]time.Duration, 0, 1024)
		mu.Lock()
		n := next
		next += 1 << 32
		mu.Unlock()
		for pb.Next() {
			n++
			t0 := time.Now()
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
