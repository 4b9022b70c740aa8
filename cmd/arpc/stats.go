package main

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/arpc-go/arpc/pkg/rpc"
	"github.com/arpc-go/arpc/pkg/rpc2"
)

var cmdStats = &command{
	name:     "stats",
	synopsis: "ADDR",
	summary:  "prints the server's counters",
	help: `Prints the counters of the server at ADDR (rpc.Server.Stats), this arpc's own
connection included: connections and sessions now; since the server
started, handshakes, mutations by result, updates of the clients' streams
(and how many were pushes), bytes in and out, errors by code, and refused
or dropped peers. A server started with rpc.WithIntrospection(false)
refuses (exit status 1).`,
	minArgs: 1, maxArgs: 1,
	run: runStats,
}

func runStats(e *env) int {
	ctx, cancel := e.ctx()
	defer cancel()
	c, err := e.dial(ctx, false)
	if err != nil {
		return e.fail(err)
	}
	defer c.Close()
	st, err := c.Stats(ctx)
	if err != nil {
		return e.fail(err)
	}
	if e.json {
		e.writeJSON(statsJSON(st))
		return exitOK
	}
	printStats(e, st)
	return exitOK
}

// fetchClients counts the server's clients, or nil when it does not tell.
func fetchClients(ctx context.Context, c *rpc.Client) *clientsView {
	st, err := c.Stats(ctx)
	if err != nil {
		return nil
	}
	return &clientsView{Connections: st.Conns, Sessions: st.Sessions}
}

// statsJSON names the counters as the wire does.
func statsJSON(st rpc.Stats) map[string]any {
	errs := map[string]uint64{}
	for code, n := range st.Errors {
		errs[strconv.FormatUint(uint64(code), 10)] = n
	}
	return map[string]any{
		"conns": st.Conns, "sessions": st.Sessions, "handshakes": st.Handshakes,
		"mutationsExecuted": st.MutationsExecuted, "mutationsCanceled": st.MutationsCanceled,
		"mutationsQueued": st.MutationsQueued, "mutationsFailed": st.MutationsFailed,
		"updates": st.Updates, "pushes": st.Pushes, "pushesDeferred": st.PushesDeferred,
		"bytesIn": st.BytesIn, "bytesOut": st.BytesOut,
		"errors": errs, "refusedConns": st.RefusedConns, "refusedAuth": st.RefusedAuth,
		"refusedSessions": st.RefusedSessions, "forbidden": st.Forbidden,
		"handshakeTimeouts": st.HandshakeTimeouts, "idleTimeouts": st.IdleTimeouts, "slowPeers": st.SlowPeers,
	}
}

// codeNames names the error codes a server answers with.
var codeNames = map[rpc2.Code]string{
	rpc2.CodeApplication: "application", rpc2.CodeUnknownMethod: "unknown method",
	rpc2.CodeBadRequest: "bad request", rpc2.CodeInternal: "internal", rpc2.CodeCanceled: "canceled",
	rpc2.CodeDeadlineExceeded: "deadline", rpc2.CodeUnavailable: "unavailable",
	rpc.CodeInvalidParams: "invalid params", rpc.CodeSchemaMismatch: "schema mismatch",
	rpc.CodeNoSession: "no session", rpc.CodeNoGetter: "no getter", rpc.CodeTooManyWatches: "too many watches",
	rpc.CodeProtoVersion: "protocol version", rpc.CodeStopped: "stopped", rpc.CodeTooManyPending: "too many pending",
	rpc.CodeTooManyRequests: "too many requests", rpc.CodeIntrospectionOff: "introspection off",
	rpc.CodeUnauthenticated: "unauthenticated", rpc.CodeForbidden: "forbidden",
	rpc.CodeTooManySessions: "too many sessions",
}

func printStats(e *env, st rpc.Stats) {
	w := e.stdout
	fmt.Fprintf(w, "server at %s\n", e.pos[0])
	fmt.Fprintf(w, "  now         %d connections, %d sessions (this one included)\n", st.Conns, st.Sessions)
	fmt.Fprintf(w, "  handshakes  %d\n", st.Handshakes)
	fmt.Fprintf(w, "  mutations   %d executed, %d canceled, %d queued, %d failed\n",
		st.MutationsExecuted, st.MutationsCanceled, st.MutationsQueued, st.MutationsFailed)
	fmt.Fprintf(w, "  updates     %d (%d pushed, %d put off for slow clients)\n",
		st.Updates, st.Pushes, st.PushesDeferred)
	fmt.Fprintf(w, "  bytes       %d in, %d out\n", st.BytesIn, st.BytesOut)
	codes := make([]rpc2.Code, 0, len(st.Errors))
	for c := range st.Errors {
		codes = append(codes, c)
	}
	slices.Sort(codes)
	var errs []string
	for _, c := range codes {
		name := codeNames[c]
		if name == "" {
			name = "code"
		}
		errs = append(errs, fmt.Sprintf("%d %s: %d", c, name, st.Errors[c]))
	}
	if len(errs) == 0 {
		errs = []string{"none"}
	}
	fmt.Fprintf(w, "  errors      %s\n", strings.Join(errs, ", "))
	fmt.Fprintf(w, "  refused     %d connections, %d authentications, %d sessions, %d forbidden\n",
		st.RefusedConns, st.RefusedAuth, st.RefusedSessions, st.Forbidden)
	fmt.Fprintf(w, "  dropped     %d handshake timeouts, %d idle, %d slow peers\n",
		st.HandshakeTimeouts, st.IdleTimeouts, st.SlowPeers)
}

// stats serves the server's counters to the page.
func (in *inspector) stats(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), defaultTimeout)
	defer cancel()
	st, err := in.c.Stats(ctx)
	if err != nil {
		writeHTTPJSON(w, http.StatusNotFound, map[string]string{"error": err.Error()})
		return
	}
	writeHTTPJSON(w, http.StatusOK, statsJSON(st))
}
