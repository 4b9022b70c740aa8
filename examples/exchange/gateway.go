package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/arpc-go/arpc/pkg/exchange"
)

// Deadlines of one HTTP request: the default, and the most a client may ask
// for with ?timeout=.
const (
	defaultTimeout = 200 * time.Millisecond
	maxTimeout     = 5 * time.Second
)

// gateway is the HTTP front: GET /order?item=book fans out to every backend.
// ?fail=, ?silent= and ?slow= name a backend that misbehaves; ?timeout= sets
// the deadline.
type gateway struct{ s *system }

func (g gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	item := q.Get("item")
	if item == "" {
		http.Error(w, "missing item", http.StatusBadRequest)
		return
	}
	timeout := defaultTimeout
	if v := q.Get("timeout"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 || d > maxTimeout {
			http.Error(w, "bad timeout", http.StatusBadRequest)
			return
		}
		timeout = d
	}
	modes := map[string]string{}
	for _, mode := range []string{modeFail, modeSilent, modeSlow} {
		if name := q.Get(mode); name != "" {
			modes[name] = mode
		}
	}

	// The exchange lives no longer than the request: its deadline, or the
	// client going away.
	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	defer cancel()
	x := g.s.ctrl.Begin(ctx)
	defer x.Cancel()
	for _, b := range g.s.backends {
		id, err := x.Request(order{backend: b.name, item: item})
		if err != nil {
			break // the deadline passed already; Wait reports it
		}
		select {
		case b.inbox <- message{id: id, item: item, mode: modes[b.name]}:
		case <-ctx.Done():
		}
	}
	calls, err := x.Wait(ctx)

	var body strings.Builder
	for _, c := range calls {
		o := c.Request.(order)
		switch c.Outcome {
		case exchange.Answered:
			fmt.Fprintf(&body, "%s: %s\n", o.backend, c.Response)
		case exchange.Failed:
			fmt.Fprintf(&body, "%s: failed: %v\n", o.backend, c.Err)
		default:
			fmt.Fprintf(&body, "%s: no reply, rolled back\n", o.backend)
		}
	}
	status := http.StatusOK
	if err != nil {
		status = http.StatusGatewayTimeout
		if errors.Is(err, exchange.ErrFailed) {
			status = http.StatusBadGateway
		}
		compensated, tagged := g.rollback(item, calls)
		// The ids let a client (and the test) follow the rollback.
		w.Header().Set("X-Compensated", strings.Join(compensated, ","))
		w.Header().Set("X-Rolled-Back", strings.Join(tagged, ","))
	}
	g.s.logf("gateway: %s -> %d %s", r.URL.RequestURI(), status, http.StatusText(status))
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(status)
	fmt.Fprint(w, body.String())
}

// rollback compensates the answered requests of a failed exchange, and
// returns their ids and those of the unanswered ones, which the controller
// has tagged: the consumer compensates those if their reply ever arrives.
func (g gateway) rollback(item string, calls []exchange.Call) (compensated, tagged []string) {
	for _, c := range calls {
		o := c.Request.(order)
		switch c.Outcome {
		case exchange.Answered:
			g.s.logf("gateway: rolling back: compensating %s for %s", o.backend, c.ID)
			g.s.send(g.s.backend(o.backend), message{id: c.ID, undo: true, item: item})
			compensated = append(compensated, c.ID)
		case exchange.Unanswered:
			g.s.logf("gateway: rolling back: %s unanswered, %s tagged", o.backend, c.ID)
			tagged = append(tagged, c.ID)
		}
	}
	return compensated, tagged
}
