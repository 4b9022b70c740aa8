package arpcnats

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Embedded is a NATS server with JetStream running inside this process,
// for examples, tests and single-process deployments: the default that
// needs no set-up. Point clients at ClientURL.
type Embedded struct {
	srv    *server.Server
	dir    string
	ownDir bool
}

// EmbeddedConfig configures StartEmbedded. The zero value is a standalone
// server on a random loopback port, storing JetStream data in a new
// temporary directory removed by Close.
type EmbeddedConfig struct {
	// Dir stores JetStream data; empty means a temporary directory.
	Dir string
	// Host and Port to listen on; "" means 127.0.0.1, 0 means random.
	Host string
	Port int
	// Name is the server name (required to be unique in a cluster).
	Name string
	// Cluster, when not empty, names the cluster this server joins;
	// ClusterPort is its route port (0: random), Routes the route URLs of
	// the other nodes ("nats://127.0.0.1:port").
	Cluster     string
	ClusterPort int
	Routes      []string
	// NoWait returns as soon as the server started, without waiting until
	// it accepts connections (see Ready): the first node of a cluster is
	// only ready once others joined it.
	NoWait bool
}

// StartEmbedded starts an embedded NATS server with JetStream and waits,
// within ctx, until it accepts connections.
func StartEmbedded(ctx context.Context, cfg EmbeddedConfig) (*Embedded, error) {
	e := &Embedded{dir: cfg.Dir}
	if e.dir == "" {
		d, err := os.MkdirTemp("", "arpcnats-")
		if err != nil {
			return nil, err
		}
		e.dir, e.ownDir = d, true
	}
	o := &server.Options{
		ServerName: cfg.Name,
		Host:       cfg.Host,
		Port:       cfg.Port,
		JetStream:  true,
		StoreDir:   e.dir,
		NoSigs:     true,
		NoLog:      true,
	}
	if o.Host == "" {
		o.Host = "127.0.0.1"
	}
	if o.Port == 0 {
		o.Port = -1
	}
	if cfg.Cluster != "" {
		o.Cluster = server.ClusterOpts{Name: cfg.Cluster, Host: o.Host, Port: cfg.ClusterPort}
		if o.Cluster.Port == 0 {
			o.Cluster.Port = -1
		}
		for _, r := range cfg.Routes {
			o.Routes = append(o.Routes, server.RoutesFromStr(r)...)
		}
	}
	srv, err := server.NewServer(o)
	if err != nil {
		e.removeDir()
		return nil, err
	}
	e.srv = srv
	srv.Start()
	if cfg.NoWait {
		return e, nil
	}
	if err := e.Ready(ctx); err != nil {
		e.Close()
		return nil, err
	}
	return e, nil
}

// Ready waits, within ctx (10s without a deadline), until the server
// accepts connections.
func (e *Embedded) Ready(ctx context.Context) error {
	deadline := 10 * time.Second
	if d, ok := ctx.Deadline(); ok {
		deadline = time.Until(d)
	}
	if !e.srv.ReadyForConnections(deadline) {
		return fmt.Errorf("arpcnats: embedded NATS not ready within %v", deadline)
	}
	return nil
}

// ClientURL returns the URL clients connect to.
func (e *Embedded) ClientURL() string { return e.srv.ClientURL() }

// ClusterURL returns the route URL other nodes use to join this one
// ("" when it isn't clustered).
func (e *Embedded) ClusterURL() string {
	if a := e.srv.ClusterAddr(); a != nil {
		return "nats://" + a.String()
	}
	return ""
}

// WaitClusterURL waits, within ctx, until the route listener is up and
// returns ClusterURL.
func (e *Embedded) WaitClusterURL(ctx context.Context) (string, error) {
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		if u := e.ClusterURL(); u != "" {
			return u, nil
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-tick.C:
		}
	}
}

// Server returns the underlying nats-server.
func (e *Embedded) Server() *server.Server { return e.srv }

// Close shuts the server down, waits for it, and removes a temporary
// data directory. Idempotent.
func (e *Embedded) Close() {
	if e.srv != nil {
		e.srv.Shutdown()
		e.srv.WaitForShutdown()
	}
	e.removeDir()
}

func (e *Embedded) removeDir() {
	if e.ownDir {
		_ = os.RemoveAll(e.dir)
		e.ownDir = false
	}
}
