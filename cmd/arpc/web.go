package main

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	am "github.com/arpc-go/arpc/pkg/machine"
	"github.com/arpc-go/arpc/pkg/rpc"
)

//go:embed web/index.html
var indexHTML []byte

var cmdWeb = &command{
	name:     "web",
	synopsis: "ADDR [--listen 127.0.0.1:0] [--read-only]",
	summary:  "serves a live inspector page for the machine",
	help: `Serves a web page that shows the machine at ADDR live: its schema as a graph
(states as nodes, relations as labelled edges), the active states with their
ticks, a timeline of changes streamed to the page (server-sent events), the
server's counters, and buttons to add or remove a state (hidden with
--read-only; a server's policy may still refuse them). The page is built in:
no CDN, no build step. arpc prints the page's address and serves it until
Ctrl-C (exit status 0).

  --listen ADDR   where to serve the page (default 127.0.0.1:0, a free port
                  on loopback; the page can mutate the machine, so think
                  twice before listening on other interfaces)
  --read-only     no add or remove from the page`,
	minArgs: 1, maxArgs: 1,
	flags: func(fs *flag.FlagSet, e *env) {
		fs.StringVar(&e.listen, "listen", "127.0.0.1:0", "")
		fs.BoolVar(&e.readOnly, "read-only", false, "")
	},
	run: runWeb,
}

func runWeb(e *env) int {
	dctx, cancel := e.ctx()
	c, err := e.dial(dctx, true)
	cancel()
	if err != nil {
		return e.fail(err)
	}
	defer c.Close()
	lis, err := (&net.ListenConfig{}).Listen(e.parent, "tcp", e.listen)
	if err != nil {
		return e.fail(err)
	}
	in := newInspector(c, e.pos[0], e.readOnly)
	url := "http://" + lis.Addr().String() + "/"
	if e.json {
		e.writeJSONLine(map[string]string{"url": url, "machine": c.Worker.ID()})
	} else {
		fmt.Fprintf(e.stdout, "inspector for %s at %s: %s (Ctrl-C to stop)\n", c.Worker.ID(), e.pos[0], url)
	}
	if err := in.serve(e.parent, lis); err != nil {
		return e.fail(err)
	}
	return exitOK
}

// inspector serves the page and its API for one machine. It follows the
// mirror's changes on one goroutine (run) and fans them out to the pages
// that listen (events).
type inspector struct {
	c        *rpc.Client
	addr     string
	readOnly bool
	mux      *http.ServeMux

	mu      sync.Mutex
	subs    map[chan change]struct{}
	backlog []change
}

// maxBacklog is how many past changes a page gets when it connects.
const maxBacklog = 200

// heartbeat is how often a quiet event stream gets a comment.
const heartbeat = 15 * time.Second

// subBuffer is how many changes a page may lag behind before it is
// disconnected (its EventSource reconnects and starts from a fresh view).
const subBuffer = 256

func newInspector(c *rpc.Client, addr string, readOnly bool) *inspector {
	in := &inspector{c: c, addr: addr, readOnly: readOnly, subs: map[chan change]struct{}{}}
	in.mux = http.NewServeMux()
	in.mux.HandleFunc("GET /{$}", in.page)
	in.mux.HandleFunc("GET /api/machine", in.machine)
	in.mux.HandleFunc("GET /api/events", in.events)
	in.mux.HandleFunc("GET /api/stats", in.stats)
	in.mux.HandleFunc("POST /api/mutate", in.mutate)
	return in
}

// ServeHTTP implements http.Handler.
func (in *inspector) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !literalHost(r.Host) {
		// a name that resolves here may be a rebinding attack from a
		// web page: only addresses and localhost are served
		http.Error(w, "use an IP address or localhost to reach the inspector", http.StatusMisdirectedRequest)
		return
	}
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("X-Frame-Options", "DENY")
	in.mux.ServeHTTP(w, r)
}

// serve serves the page on lis until ctx ends, then stops the HTTP server
// and the follower and returns once both are gone.
func (in *inspector) serve(ctx context.Context, lis net.Listener) error {
	base, stop := context.WithCancel(context.Background())
	defer stop()
	srv := &http.Server{
		Handler:           in,
		ReadHeaderTimeout: 10 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return base },
	}
	var wg sync.WaitGroup
	wg.Add(2)
	errc := make(chan error, 1)
	go func() {
		defer wg.Done()
		if err := srv.Serve(lis); !errors.Is(err, http.ErrServerClosed) {
			errc <- err
		}
	}()
	go func() {
		defer wg.Done()
		_ = in.run(base)
	}()
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	// end the event streams first: Shutdown waits for active handlers
	stop()
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(sctx)
	wg.Wait()
	return err
}

// run follows the mirror and publishes each change, until ctx ends.
func (in *inspector) run(ctx context.Context) error {
	return follow(ctx, in.c, in.publish)
}

// publish records a change and hands it to every listening page; a page
// too far behind is dropped.
func (in *inspector) publish(ch change) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.backlog = append(in.backlog, ch)
	if n := len(in.backlog) - maxBacklog; n > 0 {
		in.backlog = append(in.backlog[:0], in.backlog[n:]...)
	}
	for sub := range in.subs {
		select {
		case sub <- ch:
		default:
			delete(in.subs, sub)
			close(sub)
		}
	}
}

// subscribe returns a channel of the changes from now on, and the recent
// ones, taken together so that none is missed or repeated.
func (in *inspector) subscribe() (chan change, []change) {
	in.mu.Lock()
	defer in.mu.Unlock()
	sub := make(chan change, subBuffer)
	in.subs[sub] = struct{}{}
	return sub, append([]change(nil), in.backlog...)
}

func (in *inspector) unsubscribe(sub chan change) {
	in.mu.Lock()
	defer in.mu.Unlock()
	if _, ok := in.subs[sub]; ok {
		delete(in.subs, sub)
		close(sub)
	}
}

// subscribers counts the listening pages.
func (in *inspector) subscribers() int {
	in.mu.Lock()
	defer in.mu.Unlock()
	return len(in.subs)
}

func (in *inspector) page(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy",
		"default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:")
	_, _ = w.Write(indexHTML)
}

// pageView is what the page gets first: the machine and what it may do.
type pageView struct {
	machineView
	ReadOnly  bool `json:"readOnly"`
	Connected bool `json:"connected"`
}

func (in *inspector) view() pageView {
	return pageView{
		machineView: viewOf(in.c.Worker, in.c.Worker.ID(), in.addr),
		ReadOnly:    in.readOnly,
		Connected:   in.c.Worker.Ctx().Err() == nil && in.connected(),
	}
}

func (in *inspector) connected() bool { return in.c.Mach.Is1("Ready") }

func (in *inspector) machine(w http.ResponseWriter, _ *http.Request) {
	writeHTTPJSON(w, http.StatusOK, in.view())
}

// events streams the machine to a page: the view, the recent changes, then
// each change as it happens, as server-sent events.
func (in *inspector) events(w http.ResponseWriter, r *http.Request) {
	fl, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return
	}
	sub, backlog := in.subscribe()
	defer in.unsubscribe(sub)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	send := func(event string, v any) bool {
		b, err := json.Marshal(v)
		if err != nil {
			return false
		}
		if _, err := fmt.Fprintf(w, "event: %s\ndata: %s\n\n", event, b); err != nil {
			return false
		}
		fl.Flush()
		return true
	}
	if !send("machine", in.view()) {
		return
	}
	for _, ch := range backlog {
		if !send("backlog", ch) {
			return
		}
	}
	// a comment now and then keeps proxies from closing a quiet stream and
	// tells a vanished page from a quiet machine
	beat := time.NewTicker(heartbeat)
	defer beat.Stop()
	for {
		select {
		case ch, ok := <-sub:
			if !ok {
				return
			}
			if !send("change", ch) {
				return
			}
		case <-beat.C:
			if _, err := io.WriteString(w, ": heartbeat\n\n"); err != nil {
				return
			}
			fl.Flush()
		case <-r.Context().Done():
			return
		}
	}
}

// mutateRequest is the body of POST /api/mutate.
type mutateRequest struct {
	Op     string   `json:"op"`
	States []string `json:"states"`
}

// mutate adds or removes states for a button of the page. It takes JSON
// only and checks the origin, so that another site open in the same
// browser can't make it mutate the machine.
func (in *inspector) mutate(w http.ResponseWriter, r *http.Request) {
	if in.readOnly {
		writeHTTPJSON(w, http.StatusForbidden, map[string]string{"error": "read-only inspector"})
		return
	}
	if !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") ||
		!sameOrigin(r) {
		writeHTTPJSON(w, http.StatusForbidden, map[string]string{"error": "cross-origin or non-JSON request"})
		return
	}
	var req mutateRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
	if err := dec.Decode(&req); err != nil || len(req.States) == 0 {
		writeHTTPJSON(w, http.StatusBadRequest, map[string]string{"error": "want {\"op\": \"add\"|\"remove\", \"states\": [...]}"})
		return
	}
	var typ am.MutationType
	switch req.Op {
	case "add":
		typ = am.MutationAdd
	case "remove":
		typ = am.MutationRemove
	default:
		writeHTTPJSON(w, http.StatusBadRequest, map[string]string{"error": "op must be add or remove"})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), defaultTimeout)
	defer cancel()
	res, err := in.c.Worker.Mutate(ctx, typ, req.States, nil)
	out := map[string]string{"result": resultName(res, err)}
	status := http.StatusOK
	if err != nil {
		out["error"] = errText(err)
		switch {
		case errors.Is(err, am.ErrCanceled):
			// the machine's answer, not a failure of the call
		case errors.Is(err, am.ErrStateUnknown), errors.Is(err, rpc.ErrInvalidParams):
			status = http.StatusBadRequest
		default:
			status = http.StatusBadGateway
		}
	}
	writeHTTPJSON(w, status, out)
}

// sameOrigin tells whether a browser request comes from this page: its
// Origin (sent with every POST by browsers) names this host, and it was
// not made by another site.
func sameOrigin(r *http.Request) bool {
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" && site != "none" {
		return false
	}
	o := r.Header.Get("Origin")
	return o == "" || o == "http://"+r.Host
}

// literalHost tells whether a request's Host is an IP address or
// localhost.
func literalHost(hostport string) bool {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		host = hostport
	}
	return host == "localhost" || net.ParseIP(strings.Trim(host, "[]")) != nil
}

func writeHTTPJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
