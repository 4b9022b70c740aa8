// Command arpc looks at and pokes a running aRPC machine from the command
// line, and serves a live inspector page for it: it learns the machine's
// schema from the server (Describe), so it needs nothing but an address.
//
//	arpc inspect ADDR                         states, ticks, relations, clients
//	arpc add|remove|set ADDR STATE... [--arg key=value]...
//	arpc when ADDR STATE... [--not] [--timeout D]
//	arpc request ADDR STATE UNTIL [--arg key=value]... [--timeout D]
//	arpc watch ADDR                           one line per change, until Ctrl-C
//	arpc stats ADDR                           the server's counters
//	arpc web ADDR [--listen 127.0.0.1:0]      the live inspector page
//
// Every command takes --json (one JSON document on stdout; watch writes one
// per line) and --help. Exit status: 0 done (executed, holds, answered), 1
// error, 2 usage, 3 the mutation was canceled, 4 timeout, 130 interrupted.
// Run "arpc help" for the whole manual.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
