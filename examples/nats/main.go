package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/arpc-go/arpc/arpcnats"
	"github.com/nats-io/nats.go"
)

func main() {
	url := flag.String("nats", os.Getenv("NATS_URL"), "NATS URL(s) of an external cluster (default $NATS_URL; empty: embedded)")
	gw := flag.Bool("gateway", false, "run the HTTP → NATS → HTTP gateway demo")
	flag.Parse()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	run := demo
	if *gw {
		run = gateway
	}
	if err := withNATS(ctx, *url, os.Stdout, run); err != nil {
		fmt.Fprintln(os.Stderr, "nats:", err)
		os.Exit(1)
	}
}

// out serialises the demo's lines.
type out struct {
	mu sync.Mutex
	w  io.Writer
}

func (o *out) printf(format string, args ...any) {
	o.mu.Lock()
	defer o.mu.Unlock()
	fmt.Fprintf(o.w, format+"\n", args...)
}

// withNATS runs fn with the URL of the cluster at url, or of an embedded
// server with JetStream in a temporary directory (removed afterwards).
func withNATS(ctx context.Context, url string, w io.Writer, fn func(ctx context.Context, url string, o *out) error) error {
	o := &out{w: w}
	if url == "" {
		e, err := arpcnats.StartEmbedded(ctx, arpcnats.EmbeddedConfig{})
		if err != nil {
			return err
		}
		defer e.Close()
		url = e.ClientURL()
		o.printf("embedded NATS with JetStream at %s", url)
	} else {
		o.printf("NATS at %s", url)
	}
	return fn(ctx, url, o)
}

// connect opens a connection that reconnects for ever.
func connect(url, name string) (*nats.Conn, error) {
	return nats.Connect(url, nats.Name(name), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
}
