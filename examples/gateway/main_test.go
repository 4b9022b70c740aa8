package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
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
		"client: n=7 (answered): 200 OK, result 49\n",
		"backend: n=8 lost, it will never be answered\n",
		"client: n=8&silent=1&timeout=200ms (lost by the backend): 504 Gateway Timeout, ",
		"client: n=9&delay=1s&timeout=200ms (answered after its deadline): 504 Gateway Timeout, ",
		"client: n=10&timeout=200ms (queued behind the slow one): 504 Gateway Timeout, ",
		"server: late answer for n=9 (result 81): its caller had given up, compensating\n",
		"backend: n=10 skipped, its caller gave up while it was queued\n",
		"stats: 2 answered (1 late), 1 lost, 1 skipped, 0 busy; 0 requests pending on the server\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %q in output:\n%s", want, got)
		}
	}
}

// startGateway starts a quiet system and serves the gateway, plus the extra
// routes of mux if not nil, on an ephemeral loopback port; stop closes
// both.
func startGateway(t testing.TB, cfg config, mux *http.ServeMux) (s *system, url string, c *http.Client, stop func()) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := newSystem(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	h := (&gateway{backend: s.client.Worker, logf: s.logf}).handler()
	if mux != nil {
		mux.Handle("/square", h)
		h = mux
	}
	hs := httptest.NewServer(h)
	c = hs.Client()
	return s, hs.URL, c, func() {
		hs.Close()
		c.CloseIdleConnections()
		s.Close()
	}
}

// TestBadInput checks that malformed queries get a 400 and never reach the
// backend.
func TestBadInput(t *testing.T) {
	s, url, c, stop := startGateway(t, config{workers: 1, queue: 1}, nil)
	defer stop()
	for _, q := range []string{"", "n=x", "n=1&timeout=0s", "n=1&timeout=-1s", "n=1&timeout=11s",
		"n=1&timeout=soon", "n=1&delay=-1ms", "n=1&delay=1h"} {
		r, err := get(context.Background(), c, url+"/square?"+q)
		if err != nil {
			t.Fatal(err)
		}
		if r.status != http.StatusBadRequest {
			t.Errorf("%q: %d %q, want 400", q, r.status, r.body)
		}
	}
	if st := s.back.stats(); st != (stats{}) {
		t.Errorf("the backend saw bad input: %+v", st)
	}
}

// TestBusy checks that a full backend answers 503 at once, rather than
// block its machine or leave the request to its deadline.
func TestBusy(t *testing.T) {
	// no workers: the queue never drains
	s, url, c, stop := startGateway(t, config{workers: 0, queue: 1}, nil)
	defer stop()
	if r, err := get(context.Background(), c, url+"/square?n=1&timeout=500ms"); err != nil || r.status != http.StatusGatewayTimeout {
		t.Fatalf("queued: %+v, %v; want 504", r, err)
	}
	start := time.Now()
	r, err := get(context.Background(), c, url+"/square?n=2&timeout=5s")
	if err != nil || r.status != http.StatusServiceUnavailable || r.body != "backend: busy\n" {
		t.Fatalf("full: %+v, %v; want 503", r, err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("503 after %v, want at once", d)
	}
	if st := s.back.stats(); st.Accepted != 1 || st.Busy != 1 {
		t.Errorf("stats %+v", st)
	}
}
