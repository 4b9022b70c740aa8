package main

import (
	"context"
	"net/http"

	"github.com/arpc-go/arpc/pkg/rpc"
)

var cmdStats = &command{
	name:     "stats",
	synopsis: "ADDR",
	summary:  "prints the server's counters",
	help:     `Prints the counters of the server at ADDR.`,
	minArgs:  1, maxArgs: 1,
	run: func(e *env) int { return exitError },
}

func fetchClients(ctx context.Context, c *rpc.Client) *clientsView { return nil }

func (in *inspector) stats(w http.ResponseWriter, r *http.Request) {
	writeHTTPJSON(w, http.StatusNotFound, map[string]string{"error": "no stats"})
}
