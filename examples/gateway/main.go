package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

func main() {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := run(ctx, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "gateway:", err)
		os.Exit(1)
	}
}

// reply is one HTTP response as a client sees it.
type reply struct {
	status int
	body   string
	// deadline is the request's deadline as the gateway set it (zero
	// when it did not say), and late how long after it the response came:
	// negative when it came before.
	deadline time.Time
	late     time.Duration
}

// step is one request of the demo and the status it must get.
type step struct {
	what   string
	query  string
	status int
}

var (
	answered = step{"answered", "n=7", http.StatusOK}
	lost     = step{"lost by the backend", "n=8&silent=1&timeout=200ms", http.StatusGatewayTimeout}
	slow     = step{"answered after its deadline", "n=9&delay=1s&timeout=200ms", http.StatusGatewayTimeout}
	queued   = step{"queued behind the slow one", "n=10&timeout=200ms", http.StatusGatewayTimeout}
)

// run is the demo: a backend with one worker, so that the fourth request
// waits behind the third.
func run(ctx context.Context, out io.Writer) (err error) {
	s, err := newSystem(ctx, config{workers: 1, queue: 16, out: out, events: true})
	if err != nil {
		return err
	}
	defer s.Close()

	g := &gateway{backend: s.client.Worker, logf: s.logf}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	hs := &http.Server{Handler: g.handler(), ReadHeaderTimeout: 5 * time.Second}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	defer func() {
		if e := hs.Shutdown(ctx); e != nil && err == nil {
			err = e
		}
		if e := <-served; !errors.Is(e, http.ErrServerClosed) && err == nil {
			err = e
		}
	}()
	s.logf("gateway: listening on http://%s", ln.Addr())

	client := &http.Client{}
	defer client.CloseIdleConnections()
	base := "http://" + ln.Addr().String() + "/square?"
	do := func(st step) error {
		r, err := get(ctx, client, base+st.query)
		if err != nil {
			return err
		}
		s.logf("client: %s (%s): %d %s, %s", st.query, st.what, r.status, http.StatusText(r.status), r.describe())
		if r.status != st.status {
			return fmt.Errorf("%s: status %d, want %d", st.query, r.status, st.status)
		}
		return nil
	}

	if err := do(answered); err != nil {
		return err
	}
	if err := do(lost); err != nil {
		return err
	}
	// The slow request holds the only worker past its caller's deadline;
	// the next one waits in the queue until its caller gives up too.
	var wg sync.WaitGroup
	var slowErr error
	wg.Go(func() { slowErr = do(slow) })
	if err := waitEvent(ctx, s, "started", 9); err != nil {
		wg.Wait()
		return err
	}
	err = do(queued)
	wg.Wait()
	if err = errors.Join(err, slowErr); err != nil {
		return err
	}
	// Both answers come later: the slow one's is recognised as late, and
	// the queued one is skipped, since its caller is gone.
	if err := waitEvent(ctx, s, "late", 9); err != nil {
		return err
	}
	if err := waitEvent(ctx, s, "skipped", 10); err != nil {
		return err
	}
	// Every caller has got its answer or given up: the server holds no
	// wait for any of them.
	if err := waitUntil(ctx, func() bool { return s.srv.PendingRequests() == 0 }); err != nil {
		return fmt.Errorf("requests left pending on the server: %d: %w", s.srv.PendingRequests(), err)
	}
	st := s.back.stats()
	s.logf("stats: %d answered (%d late), %d lost, %d skipped, %d busy; %d requests pending on the server",
		st.Answered, st.Late, st.Lost, st.Skipped, st.Busy, s.srv.PendingRequests())
	return nil
}

// describe tells the body of a 200, and when any other response came
// relative to its deadline.
func (r reply) describe() string {
	if r.status == http.StatusOK {
		return "result " + strings.TrimSpace(r.body)
	}
	return fmt.Sprintf("%.1f ms after its deadline", float64(r.late)/float64(time.Millisecond))
}

// get sends one GET and returns the response, and when it came relative to
// the deadline the gateway set for it.
func get(ctx context.Context, c *http.Client, url string) (reply, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return reply{}, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return reply{}, err
	}
	return readReply(resp, time.Now())
}

// readReply reads resp, which came at at.
func readReply(resp *http.Response, at time.Time) (reply, error) {
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return reply{}, err
	}
	r := reply{status: resp.StatusCode, body: string(body)}
	if v := resp.Header.Get(deadlineHeader); v != "" {
		ns, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return reply{}, fmt.Errorf("%s: %w", deadlineHeader, err)
		}
		r.deadline = time.Unix(0, ns)
		r.late = at.Sub(r.deadline)
	}
	return r, nil
}

// waitEvent waits for the backend's event kind about n, skipping others.
func waitEvent(ctx context.Context, s *system, kind string, n int) error {
	for {
		select {
		case e := <-s.events:
			if e.kind == kind && e.n == n {
				return nil
			}
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s n=%d: %w", kind, n, ctx.Err())
		}
	}
}

// waitUntil checks cond every millisecond until it holds, or ctx ends.
func waitUntil(ctx context.Context, cond func() bool) error {
	t := time.NewTicker(time.Millisecond)
	defer t.Stop()
	for !cond() {
		select {
		case <-t.C:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}
