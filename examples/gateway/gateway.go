package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	am "github.com/arpc-go/arpc/pkg/machine"
	"github.com/arpc-go/arpc/pkg/rpc"
)

// Deadlines of one HTTP request: the default, and the most a client may ask
// for with ?timeout=.
const (
	defaultTimeout = time.Second
	maxTimeout     = 10 * time.Second
)

// deadlineHeader tells the client when its request's deadline was (Unix
// nanoseconds), so it can see how soon after it a 504 came.
const deadlineHeader = "X-Deadline"

// gateway is the HTTP front: GET /square?n=7 is one Request to the backend
// machine, under the HTTP request's deadline. It is safe for concurrent use,
// as net/http needs.
type gateway struct {
	// backend is where requests go: the client's Worker (a mirror of the
	// remote machine), or the machine itself, since rpc.Request serves
	// both.
	backend am.Api
	logf    func(format string, args ...any)
}

// handler returns the gateway's routes.
func (g *gateway) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /square", g.square)
	return mux
}

// square answers n² from the backend: 200 with the result, 504 at the
// deadline, 503 when the backend is full, 502 when it can't be reached, 400
// for bad input.
func (g *gateway) square(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	n, err := strconv.Atoi(q.Get("n"))
	if err != nil {
		http.Error(w, "n: want an integer", http.StatusBadRequest)
		return
	}
	timeout, err := duration(q.Get("timeout"), defaultTimeout, maxTimeout)
	if err != nil || timeout == 0 {
		http.Error(w, fmt.Sprintf("timeout: want a duration in (0, %v]", maxTimeout), http.StatusBadRequest)
		return
	}
	delay, err := duration(q.Get("delay"), 0, maxDelay)
	if err != nil {
		http.Error(w, fmt.Sprintf("delay: want a duration in [0, %v]", maxDelay), http.StatusBadRequest)
		return
	}
	args := am.A{"n": n}
	if q.Get("silent") == "1" {
		args["silent"] = true
	}
	if delay > 0 {
		args["delay"] = delay
	}

	// The request's deadline bounds the whole call; the client going away
	// ends it too.
	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	defer cancel()
	if d, ok := ctx.Deadline(); ok {
		w.Header().Set(deadlineHeader, strconv.FormatInt(d.UnixNano(), 10))
	}
	res, err := rpc.Request(ctx, g.backend, "Requested", args, "Done")
	switch {
	case err == nil:
	case errors.Is(err, context.DeadlineExceeded):
		// Request has released its wait here and on the server: nothing is
		// left behind, and a late answer will be recognised there.
		g.logf("gateway: n=%d: no answer in %v", n, timeout)
		http.Error(w, "the backend did not answer in time", http.StatusGatewayTimeout)
		return
	case errors.Is(err, rpc.ErrTooManyRequests):
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	default:
		// the client went away (nobody reads this), or the backend
		// can't be reached
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	if msg, ok := res["err"].(string); ok {
		http.Error(w, "backend: "+msg, http.StatusServiceUnavailable)
		return
	}
	g.logf("gateway: n=%d: answered %v", n, res["result"])
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprintf(w, "%v\n", res["result"])
}

// duration parses a query value: def when empty, an error when malformed,
// negative or above most.
func duration(v string, def, most time.Duration) (time.Duration, error) {
	if v == "" {
		return def, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, err
	}
	if d < 0 || d > most {
		return 0, fmt.Errorf("%v out of range", d)
	}
	return d, nil
}
