package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/arpc-go/arpc/arpcnats"
	am "github.com/arpc-go/arpc/pkg/machine"
	"github.com/arpc-go/arpc/pkg/rpc"
)

// The backend: each Requested carries n (and a correlation id); its
// handler answers with Done and n², unless the request says silent.
var (
	backendStates = am.Struct{"Requested": {Multi: true}, "Done": {Multi: true}}
	backendNames  = am.S{"Requested", "Done", am.Exception}
)

type backend struct{}

func (backend) RequestedState(e *am.Event) {
	if e.Args["silent"] == true {
		return // lost: the caller gets a 504 at its deadline
	}
	n, _ := e.Args["n"].(int)
	e.Machine.Add1("Done", rpc.Correlated(rpc.CorrelationID(e.Args), am.A{"square": n * n}))
}

// square is the HTTP front: GET /square?n=7[&timeout=200ms][&silent=1] is
// one rpc.Request over NATS under the HTTP request's deadline.
func square(backend am.Api) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		n, err := strconv.Atoi(r.URL.Query().Get("n"))
		if err != nil {
			http.Error(w, "n: want an integer", http.StatusBadRequest)
			return
		}
		timeout := time.Second
		if s := r.URL.Query().Get("timeout"); s != "" {
			if timeout, err = time.ParseDuration(s); err != nil || timeout <= 0 || timeout > 10*time.Second {
				http.Error(w, "timeout: want a duration in (0, 10s]", http.StatusBadRequest)
				return
			}
		}
		args := am.A{"n": n}
		if r.URL.Query().Get("silent") == "1" {
			args["silent"] = true
		}
		ctx, cancel := context.WithTimeout(r.Context(), timeout)
		defer cancel()
		ans, err := rpc.Request(ctx, backend, "Requested", args, "Done")
		switch {
		case errors.Is(err, context.DeadlineExceeded), errors.Is(err, am.ErrHandlerTimeout):
			http.Error(w, "backend did not answer in time", http.StatusGatewayTimeout)
		case errors.Is(err, arpcnats.ErrNoServer):
			http.Error(w, "no backend", http.StatusBadGateway)
		case err != nil:
			http.Error(w, err.Error(), http.StatusBadGateway)
		default:
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(map[string]any{"n": n, "square": ans["square"]})
		}
	}
}

// gateway serves the backend over NATS, puts an HTTP gateway in front of a
// mirror of it, and sends it a few requests.
func gateway(ctx context.Context, url string, o *out) (err error) {
	id := fmt.Sprintf("squares-%d", time.Now().UnixNano()%1_000_000)
	ncS, err := connect(url, "backend")
	if err != nil {
		return err
	}
	defer ncS.Close()
	mach := am.New(context.Background(), backendStates, &am.Opts{ID: "backend"})
	defer mach.Dispose()
	if err := mach.VerifyStates(backendNames); err != nil {
		return err
	}
	if err := mach.BindHandlers(&backend{}); err != nil {
		return err
	}
	srv, err := arpcnats.Serve(ctx, ncS, mach, id)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, srv.Shutdown(ctx)) }()
	if err := srv.WaitLeader(ctx); err != nil {
		return err
	}

	ncG, err := connect(url, "gateway")
	if err != nil {
		return err
	}
	defer ncG.Close()
	m, err := arpcnats.NewMirror(ctx, ncG, id, backendStates, backendNames)
	if err != nil {
		return err
	}
	defer m.Dispose()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle("GET /square", square(m))
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	defer func() {
		err = errors.Join(err, hs.Shutdown(ctx))
		if e := <-served; !errors.Is(e, http.ErrServerClosed) {
			err = errors.Join(err, e)
		}
	}()
	o.printf("gateway: http://%s/square?n=7 → NATS arpc.%s.req → backend", ln.Addr(), id)

	client := &http.Client{}
	defer client.CloseIdleConnections()
	for _, c := range []struct {
		query string
		want  int
	}{{"n=7", 200}, {"n=12", 200}, {"n=8&silent=1&timeout=200ms", 504}, {"n=x", 400}} {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+ln.Addr().String()+"/square?"+c.query, nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		body, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		o.printf("GET /square?%s: %d %s", c.query, resp.StatusCode, trim(body))
		if resp.StatusCode != c.want {
			return fmt.Errorf("%s: status %d, want %d", c.query, resp.StatusCode, c.want)
		}
	}
	return nil
}

func trim(b []byte) string {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == ' ') {
		b = b[:len(b)-1]
	}
	return string(b)
}
