package main

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// maxLate is how soon after its deadline every 504 must come, beyond the
// lateness of the process itself (lateBound).
const maxLate = 50 * time.Millisecond

// lateBound is how late after its deadline a 504 may come: maxLate after
// the latest of the peer's, the same HTTP round trip without the backend,
// measured in the same run. On a quiet machine the peer's come within a few
// milliseconds; when other processes take the cores (this machine's two
// are shared), the test process itself can be hundreds of milliseconds
// late, and the peer shows it.
func lateBound(peerMax time.Duration) time.Duration { return maxLate + max(peerMax, 0) }

// outcome is one request of the load test and what it got.
type outcome struct {
	path    string // /square, or /control for the peer
	n       int
	silent  bool
	timeout time.Duration
	delay   time.Duration
	start   time.Time
	elapsed time.Duration
	reply
	err error
}

// query is o's URL path and query.
func (o *outcome) query() string {
	q := fmt.Sprintf("%s?n=%d&timeout=%v", o.path, o.n, o.timeout)
	if o.silent {
		q += "&silent=1"
	}
	if o.delay > 0 {
		q += "&delay=" + o.delay.String()
	}
	return q
}

// TestGatewayLoad sends 1,000 concurrent HTTP requests, of which every fifth
// is never answered by the backend: each 200 must carry its own request's
// result (n², from that request's own n), each 504 must come within maxLate
// after its deadline (beyond the peer's lateness, see lateBound), the
// server must hold no request afterwards, and goroutines must return to
// their baseline.
//
// The answered requests take 0-600 ms of backend work each, so that all
// 1,000 are in flight together and answers keep coming while the
// deadlines of the others (300-600 ms) pass. Alongside, a peer: for each
// unanswered request, one with the same timeout to a handler on the same
// HTTP server that only waits for its deadline and answers 504 (no
// backend), to tell the gateway's lateness from the process's own.
func TestGatewayLoad(t *testing.T) {
	const (
		total      = 1000
		silentEach = 5 // every fifth: 20 %
	)
	baseline := runtime.NumGoroutine()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /control", control)
	s, url, _, stop := startGateway(t, config{workers: 512, queue: 2 * total}, mux)
	stopped := false
	defer func() {
		if !stopped {
			stop()
		}
	}()

	// Distinct inputs, so that a result handed to the wrong request shows.
	first := 1000 + int(time.Now().UnixNano()%1000)*total
	outs := make([]outcome, 0, total+total/silentEach)
	for i := range total {
		o := outcome{path: "/square", n: first + i}
		if i%silentEach == 0 {
			o.silent, o.timeout = true, 300*time.Millisecond+time.Duration(i%300)*time.Millisecond
		} else {
			o.timeout, o.delay = 10*time.Second, time.Duration(i*7%600)*time.Millisecond
		}
		outs = append(outs, o)
	}
	for i := range total / silentEach {
		peer := outs[i*silentEach]
		peer.path, peer.silent = "/control", false
		outs = append(outs, peer)
	}

	// One keep-alive connection per request, opened first, so that the
	// requests are not also that many TCP handshakes.
	host := strings.TrimPrefix(url, "http://")
	conns := make([]*rawConn, len(outs))
	closeAll := func() {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
	}
	defer closeAll()
	for i := range conns {
		var err error
		if conns[i], err = dialRaw(host); err != nil {
			t.Fatal(err)
		}
	}
	burst(len(outs), func(i int) {
		o := &outs[i]
		o.start = time.Now()
		o.reply, o.err = conns[i].get(o.query())
		o.elapsed = time.Since(o.start)
	})

	var ok, timedOut int
	var late, peerLate []time.Duration
	for _, o := range outs {
		switch {
		case o.err != nil:
			t.Errorf("%s: %v", o.query(), o.err)
		case o.path == "/control":
			if o.status != http.StatusGatewayTimeout {
				t.Errorf("%s: %d %q", o.query(), o.status, o.body)
			}
			peerLate = append(peerLate, o.late)
		case o.silent && o.status != http.StatusGatewayTimeout:
			t.Errorf("n=%d never answered, got %d %q", o.n, o.status, o.body)
		case o.silent:
			timedOut++
			late = append(late, o.late)
			// The deadline the gateway reports can't be earlier than one
			// set when the request was sent, nor the 504 come before it.
			if o.deadline.Sub(o.start) < o.timeout || o.elapsed < o.timeout || o.late < -time.Millisecond {
				t.Errorf("n=%d: 504 %v after sending, %v after its deadline (%v after sending), timeout %v",
					o.n, o.elapsed, o.late, o.deadline.Sub(o.start), o.timeout)
			}
		case o.status != http.StatusOK || o.body != fmt.Sprintf("%d\n", o.n*o.n):
			t.Errorf("n=%d: %d %q, want 200 %d", o.n, o.status, o.body, o.n*o.n)
		default:
			ok++
		}
	}
	if want := total - total/silentEach; ok != want || timedOut != total/silentEach {
		t.Errorf("%d × 200 and %d × 504, want %d and %d", ok, timedOut, want, total/silentEach)
	}
	t.Logf("%d × 200, %d × 504; 504 after its deadline: max %v, p99 %v, median %v; peer (HTTP only): max %v, p99 %v",
		ok, timedOut, quantile(late, 1), quantile(late, 0.99), quantile(late, 0.5), quantile(peerLate, 1), quantile(peerLate, 0.99))
	if bound := lateBound(quantile(peerLate, 1)); quantile(late, 1) > bound {
		t.Errorf("504s up to %v after their deadline, want ≤ %v", quantile(late, 1), bound)
	}

	// The callers that gave up have told the server: it holds no wait.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := waitUntil(ctx, func() bool { return s.srv.PendingRequests() == 0 }); err != nil {
		t.Errorf("%d requests pending on the server: %v", s.srv.PendingRequests(), err)
	}
	// Every answered request was worked on once; an unanswered one is lost
	// by the backend, unless its caller gave up before its Add ran: the
	// server then drops the Add.
	st := s.back.stats()
	lost := st.Lost
	st.Lost = 0
	if want := (stats{Accepted: total - total/silentEach, Answered: total - total/silentEach}); st != want || lost > total/silentEach {
		t.Errorf("backend stats %+v, lost %d; want %+v, lost ≤ %d", st, lost, want, total/silentEach)
	}

	// Shut everything down: goroutines return to their baseline (server
	// connections close asynchronously, so wait for it, with a deadline).
	closeAll()
	stop()
	stopped = true
	if err := waitUntil(ctx, func() bool { return runtime.NumGoroutine() <= baseline }); err != nil {
		buf := make([]byte, 1<<16)
		t.Fatalf("%d goroutines, %d before:\n%s", runtime.NumGoroutine(), baseline, buf[:runtime.Stack(buf, true)])
	}
}

// control is the peer's handler: it waits for the request's deadline and
// answers 504, as the gateway does for an unanswered request, without a
// backend.
func control(w http.ResponseWriter, r *http.Request) {
	timeout, err := time.ParseDuration(r.URL.Query().Get("timeout"))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	defer cancel()
	d, _ := ctx.Deadline()
	w.Header().Set(deadlineHeader, strconv.FormatInt(d.UnixNano(), 10))
	<-ctx.Done()
	http.Error(w, "deadline", http.StatusGatewayTimeout)
}

// rawConn is a load generator's HTTP/1.1 connection: the goroutine that
// sends a request reads its response, with no other goroutine involved
// (net/http's client adds two per connection, which the race detector
// makes costly at this scale).
type rawConn struct {
	net.Conn
	br   *bufio.Reader
	host string
}

// dialRaw connects to host.
func dialRaw(host string) (*rawConn, error) {
	c, err := net.Dial("tcp", host)
	if err != nil {
		return nil, err
	}
	return &rawConn{Conn: c, br: bufio.NewReader(c), host: host}, nil
}

// get sends GET pathQuery and returns the response, as get does.
func (c *rawConn) get(pathQuery string) (reply, error) {
	if _, err := fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\n\r\n", pathQuery, c.host); err != nil {
		return reply{}, err
	}
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		return reply{}, err
	}
	return readReply(resp, time.Now())
}

// burst runs fn(0..n-1) in n goroutines started together, and waits for
// them.
func burst(n int, fn func(i int)) {
	ready := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-ready
			fn(i)
		})
	}
	close(ready)
	wg.Wait()
}

// quantile returns the q-quantile of ds (1: the max), nearest rank.
func quantile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(q*float64(len(s))+0.999999) - 1
	return s[min(max(i, 0), len(s)-1)]
}
