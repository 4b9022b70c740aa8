package arpcnats_test

import (
	"context"
	"testing"
	"time"

	"github.com/arpc-go/arpc/arpcnats"
	am "github.com/arpc-go/arpc/pkg/machine"
	"github.com/nats-io/nats.go"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// startNATS starts an embedded standalone server, closed at cleanup.
func startNATS(t testing.TB) *arpcnats.Embedded {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	e, err := arpcnats.StartEmbedded(ctx, arpcnats.EmbeddedConfig{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	return e
}

// connect opens a NATS connection to urls, closed at cleanup.
func connect(t testing.TB, urls string, opts ...nats.Option) *nats.Conn {
	t.Helper()
	opts = append([]nats.Option{nats.MaxReconnects(-1), nats.ReconnectWait(20 * time.Millisecond)}, opts...)
	nc, err := nats.Connect(urls, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// newSource builds a verified machine, disposed at cleanup.
func newSource(t testing.TB, s am.Struct, names am.S) *am.Machine {
	t.Helper()
	m := am.New(context.Background(), s, nil)
	if err := m.VerifyStates(names); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Dispose)
	return m
}

// serve serves source and waits until it leads; closed at cleanup.
func serve(t testing.TB, nc *nats.Conn, source *am.Machine, id string, opts ...arpcnats.Option) *arpcnats.Server {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	srv, err := arpcnats.Serve(ctx, nc, source, id, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	if err := srv.WaitLeader(ctx); err != nil {
		t.Fatalf("WaitLeader: %v (server err %v)", err, srv.Err())
	}
	return srv
}

// mirror returns a mirror of id, closed at cleanup.
func mirror(t testing.TB, nc *nats.Conn, id string, s am.Struct, names am.S, opts ...arpcnats.MirrorOption) *arpcnats.Mirror {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	m, err := arpcnats.NewMirror(ctx, nc, id, s, names, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Dispose)
	return m
}

// waitFor waits for ch with a deadline.
func waitFor(t testing.TB, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
	}
}
