package main

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/arpc-go/arpc/internal/exampletest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestRun runs the demo as `go run` does and checks what it prints.
func TestRun(t *testing.T) {
	got := exampletest.Run(t, run)
	for _, want := range []string{
		"client: request 1 (every backend answers): 200 OK\n  stock: reserved book\n  payment: charged for book\n  shipping: booked a courier for book\n",
		"client: request 2 (payment fails): 502 Bad Gateway\n",
		"  payment: failed: payment refused lamp\n",
		"gateway: rolling back: compensating stock for ",
		"client: request 3 (shipping stays silent): 504 Gateway Timeout\n",
		"client: request 4 (shipping answers after the deadline): 504 Gateway Timeout\n",
		"consumer: late reply from shipping for ",
		"shipping: compensated desk ",
		"stats: 4 exchanges, ",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %q in output:\n%s", want, got)
		}
	}
}

// result is one HTTP exchange as the test sees it.
type result struct {
	status      int
	body        string
	elapsed     time.Duration
	compensated []string
	rolledBack  []string
}

func fetch(t *testing.T, c *http.Client, url string) result {
	t.Helper()
	start := time.Now()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return result{
		status: resp.StatusCode, body: string(body), elapsed: time.Since(start),
		compensated: ids(resp.Header, "X-Compensated"), rolledBack: ids(resp.Header, "X-Rolled-Back"),
	}
}

// tracker remembers the system's events, so a test can wait for them in any
// order.
type tracker struct {
	s    *system
	seen map[event]bool
}

// waitFor waits, up to a deadline, for the events kind about each id.
func (tr *tracker) waitFor(t *testing.T, kind string, ids []string) {
	t.Helper()
	timeout := time.NewTimer(5 * time.Second)
	defer timeout.Stop()
	for _, id := range ids {
		for !tr.seenEvent(kind, id) {
			select {
			case e := <-tr.s.events:
				tr.seen[e] = true
			case <-timeout.C:
				t.Fatalf("no %s event for %s", kind, id)
			}
		}
	}
}

func (tr *tracker) seenEvent(kind, id string) bool {
	for e := range tr.seen {
		if e.kind == kind && e.id == id {
			return true
		}
	}
	return false
}

// TestGatewayOutcomes checks the three outcomes over a real loopback HTTP
// server: 200 with each request's own results, 502 with the answered
// requests compensated, 504 at the deadline with the unanswered ones tagged
// and a late reply recognised; then that nothing is left behind.
func TestGatewayOutcomes(t *testing.T) {
	baseline := runtime.NumGoroutine()
	var out exampletest.Buffer
	s, err := newSystem(&out)
	if err != nil {
		t.Fatal(err)
	}
	tr := &tracker{s: s, seen: map[event]bool{}}
	srv := httptest.NewServer(gateway{s})
	client := srv.Client()
	base := srv.URL + "/order?"
	defer func() {
		if t.Failed() {
			t.Logf("output:\n%s", out.String())
		}
	}()

	t.Run("200", func(t *testing.T) {
		// Concurrent requests: each answer carries its own request's results.
		const n = 20
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				item := fmt.Sprintf("item%d", i)
				r := fetch(t, client, base+"item="+item+"&timeout=5s")
				want := fmt.Sprintf("stock: reserved %[1]s\npayment: charged for %[1]s\nshipping: booked a courier for %[1]s\n", item)
				if r.status != http.StatusOK || r.body != want || r.rolledBack != nil {
					t.Errorf("%s: %d %q, rolled back %v", item, r.status, r.body, r.rolledBack)
				}
			})
		}
		wg.Wait()
	})

	t.Run("502", func(t *testing.T) {
		r := fetch(t, client, base+"item=lamp&fail=payment&timeout=2s")
		if r.status != http.StatusBadGateway || !strings.Contains(r.body, "payment: failed: payment refused lamp\n") {
			t.Fatalf("%d %q", r.status, r.body)
		}
		// Fails fast: well before the 2 s deadline.
		if r.elapsed >= time.Second {
			t.Errorf("502 after %v", r.elapsed)
		}
		// The other two are compensated: at once if they answered before
		// the failure, or once their late reply comes if they were tagged.
		if len(r.compensated)+len(r.rolledBack) != 2 {
			t.Fatalf("compensated %v, rolled back %v", r.compensated, r.rolledBack)
		}
		tr.waitFor(t, "compensated", r.compensated)
		for _, id := range r.rolledBack {
			tr.waitFor(t, "late", []string{id})
			tr.waitFor(t, "compensated", []string{id})
		}
	})

	t.Run("504 silent", func(t *testing.T) {
		const timeout = 300 * time.Millisecond
		r := fetch(t, client, base+"item=chair&silent=shipping&timeout="+timeout.String())
		if r.status != http.StatusGatewayTimeout || !strings.Contains(r.body, "shipping: no reply, rolled back\n") {
			t.Fatalf("%d %q", r.status, r.body)
		}
		if r.elapsed < timeout || r.elapsed > timeout+time.Second {
			t.Errorf("504 after %v, want about %v", r.elapsed, timeout)
		}
		if len(r.compensated) != 2 || len(r.rolledBack) != 1 {
			t.Fatalf("compensated %v, rolled back %v", r.compensated, r.rolledBack)
		}
		tr.waitFor(t, "compensated", r.compensated)
		if _, ok := s.ctrl.Tag(r.rolledBack[0]); !ok {
			t.Errorf("silent request %s not tagged", r.rolledBack[0])
		}
	})

	t.Run("504 late", func(t *testing.T) {
		before := s.ctrl.Stats().Late
		r := fetch(t, client, base+"item=desk&slow=shipping&timeout=200ms")
		if r.status != http.StatusGatewayTimeout || len(r.rolledBack) == 0 || !strings.Contains(r.body, "shipping: no reply, rolled back\n") {
			t.Fatalf("%d %q, rolled back %v", r.status, r.body, r.rolledBack)
		}
		// The reply comes after the 504: recognised as late, compensated.
		for _, id := range r.rolledBack {
			tr.waitFor(t, "late", []string{id})
			tr.waitFor(t, "compensated", []string{id})
			tag, ok := s.ctrl.Tag(id)
			if !ok || !tag.Late {
				t.Errorf("Tag = %+v, %v", tag, ok)
			}
		}
		if late := s.ctrl.Stats().Late - before; late != uint64(len(r.rolledBack)) {
			t.Errorf("%d late replies, want %d", late, len(r.rolledBack))
		}
	})

	st := s.ctrl.Stats()
	if st.Open != 0 || st.Pending != 0 {
		t.Errorf("exchanges left open: %+v", st)
	}
	srv.Close()
	client.CloseIdleConnections()
	s.Close()
	// Goroutines return to baseline; server connections close asynchronously,
	// so wait for it, with a deadline.
	deadline := time.Now().Add(5 * time.Second)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for n := runtime.NumGoroutine(); n > baseline; n = runtime.NumGoroutine() {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines, %d before:\n%s", n, baseline, buf[:runtime.Stack(buf, true)])
		}
		<-tick.C
	}
}
