package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"
)

func main() {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := run(ctx, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "exchange:", err)
		os.Exit(1)
	}
}

// step is one request of the demo and the status it must get.
type step struct {
	what   string
	query  string
	status int
}

var steps = []step{
	{"every backend answers", "item=book", http.StatusOK},
	{"payment fails", "item=lamp&fail=payment", http.StatusBadGateway},
	{"shipping stays silent", "item=chair&silent=shipping", http.StatusGatewayTimeout},
	{"shipping answers after the deadline", "item=desk&slow=shipping", http.StatusGatewayTimeout},
}

func run(ctx context.Context, out io.Writer) (err error) {
	s, err := newSystem(out)
	if err != nil {
		return err
	}
	defer s.Close()

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: gateway{s}, ReadHeaderTimeout: 5 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	defer func() {
		if e := srv.Shutdown(ctx); e != nil && err == nil {
			err = e
		}
		if e := <-served; !errors.Is(e, http.ErrServerClosed) && err == nil {
			err = e
		}
	}()
	s.logf("gateway: listening on %s", ln.Addr())

	client := &http.Client{}
	defer client.CloseIdleConnections()
	var rolledBack []string
	for i, st := range steps {
		status, body, tagged, err := get(ctx, client, "http://"+ln.Addr().String()+"/order?"+st.query)
		if err != nil {
			return err
		}
		s.logf("client: request %d (%s): %d %s\n%s", i+1, st.what, status, http.StatusText(status), indent(body))
		if status != st.status {
			return fmt.Errorf("request %d (%s): status %d, want %d", i+1, st.what, status, st.status)
		}
		rolledBack = tagged
	}

	// The last request's shipping reply comes after its 504: wait until the
	// consumer has recognised it as late and shipping has compensated it.
	for _, id := range rolledBack {
		if err := waitEvent(ctx, s, "late", id); err != nil {
			return err
		}
		if err := waitEvent(ctx, s, "compensated", id); err != nil {
			return err
		}
	}
	st := s.ctrl.Stats()
	s.logf("stats: %d exchanges, %d answered, %d failed, %d unanswered, %d late replies, %d live rollback tags",
		st.Begun, st.Answered, st.Failed, st.Unanswered, st.Late, st.Tags)
	return nil
}

// get sends one GET and returns the status, the body and the rolled-back ids.
func get(ctx context.Context, c *http.Client, url string) (int, string, []string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, "", nil, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, "", nil, err
	}
	return resp.StatusCode, string(body), ids(resp.Header, "X-Rolled-Back"), nil
}

// waitEvent waits for the event kind about id, skipping others.
func waitEvent(ctx context.Context, s *system, kind, id string) error {
	for {
		select {
		case e := <-s.events:
			if e.kind == kind && e.id == id {
				return nil
			}
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s %s: %w", kind, id, ctx.Err())
		}
	}
}

// ids returns the comma-separated ids of header key.
func ids(h http.Header, key string) []string {
	if v := h.Get(key); v != "" {
		return strings.Split(v, ",")
	}
	return nil
}

func indent(s string) string {
	return "  " + strings.ReplaceAll(strings.TrimSuffix(s, "\n"), "\n", "\n  ")
}
