package arpcnats_test

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/arpc-go/arpc/arpcnats"
	am "github.com/arpc-go/arpc/pkg/machine"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// cluster is an in-process 3-node NATS cluster with JetStream.
type cluster struct {
	nodes []*arpcnats.Embedded
	dead  []bool
	urls  string
}

func startCluster(t *testing.T) *cluster {
	t.Helper()
	ctx := ctxT(t, 30*time.Second)
	c := &cluster{}
	c.dead = make([]bool, 3)
	t.Cleanup(func() {
		for i, n := range c.nodes {
			if !c.dead[i] {
				n.Close()
			}
		}
	})
	// JetStream clustering needs every node's routes configured up front:
	// take three ephemeral loopback ports for the route listeners.
	ports := make([]int, 3)
	var routes []string
	for i := range ports {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ports[i] = l.Addr().(*net.TCPAddr).Port
		_ = l.Close()
		routes = append(routes, fmt.Sprintf("nats://127.0.0.1:%d", ports[i]))
	}
	for i := range ports {
		n, err := arpcnats.StartEmbedded(ctx, arpcnats.EmbeddedConfig{Name: fmt.Sprintf("n%d", i+1), Cluster: "arpc",
			ClusterPort: ports[i], Routes: routes, NoWait: true})
		if err != nil {
			t.Fatal(err)
		}
		c.nodes = append(c.nodes, n)
	}
	for _, n := range c.nodes {
		if err := n.Ready(ctx); err != nil {
			t.Fatal(err)
		}
	}
	var us []string
	for _, n := range c.nodes {
		us = append(us, n.ClientURL())
	}
	c.urls = strings.Join(us, ",")
	// JetStream is ready once the meta group has a leader and a replicated
	// bucket can be created: retry, bounded by ctx.
	nc := connect(t, c.urls)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	for {
		cctx, ccancel := context.WithTimeout(ctx, 2*time.Second)
		_, err := js.CreateOrUpdateKeyValue(cctx, jetstream.KeyValueConfig{Bucket: "arpc", Replicas: 3})
		ccancel()
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("JetStream cluster not ready: %v (last error %v)", ctx.Err(), err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(50 * time.Millisecond):
		}
	}
	return c
}

// kill stops node i abruptly.
func (c *cluster) kill(i int) {
	c.dead[i] = true
	c.nodes[i].Server().Shutdown()
	c.nodes[i].Close()
}

// load runs workers that each Add Count n times through their mirror,
// retrying until acknowledged; it returns the number acknowledged and the
// worst call latency.
type load struct {
	acked   atomic.Int64
	failed  atomic.Int64
	maxLat  atomic.Int64
	started chan struct{}
	wg      sync.WaitGroup
}

func runLoad(ctx context.Context, ms []*arpcnats.Mirror, n int) *load {
	l := &load{started: make(chan struct{})}
	var once sync.Once
	for _, m := range ms {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for i := 0; i < n; i++ {
				start := time.Now()
				_, err := m.Mutate(ctx, am.MutationAdd, am.S{"Count"}, nil)
				if d := int64(time.Since(start)); d > l.maxLat.Load() {
					l.maxLat.Store(d)
				}
				if err != nil {
					l.failed.Add(1)
					continue
				}
				if l.acked.Add(1) >= 20 {
					once.Do(func() { close(l.started) })
				}
			}
		}()
	}
	return l
}

// applied is how many Adds of the Multi state Count a tick shows: the
// first activates it (1), each later one re-enters it (+2).
func applied(tick uint64) int64 {
	if tick == 0 {
		return 0
	}
	return int64(tick+1) / 2
}

// TestFailover runs a machine on a 3-node NATS cluster (replicas 3) with a
// leader and a standby aRPC server and mirrors under load, then kills the
// aRPC leader (its NATS connection closed, no goodbye) and, separately,
// one NATS node. Every acknowledged mutation is in the final state exactly
// once, and every mirror converges to it.
func TestFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster test")
	}
	c := startCluster(t)
	ctx := ctxT(t, 60*time.Second)
	opts := []arpcnats.Option{arpcnats.WithReplicas(3), arpcnats.WithAckPersisted(true),
		arpcnats.WithLease(400 * time.Millisecond), arpcnats.WithHeartbeat(100 * time.Millisecond)}
	type proc struct {
		nc  *nats.Conn
		src *am.Machine
		srv *arpcnats.Server
	}
	start := func(name string) *proc {
		p := &proc{nc: connect(t, c.urls), src: newSource(t, schema, names)}
		srv, err := arpcnats.Serve(ctx, p.nc, p.src, "fo", append(opts, arpcnats.WithInstance(name))...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = srv.Close() })
		p.srv = srv
		return p
	}
	a := start("a")
	if err := a.srv.WaitLeader(ctx); err != nil {
		t.Fatal(err)
	}
	b := start("b")
	var ms []*arpcnats.Mirror
	for i := 0; i < 4; i++ {
		ms = append(ms, mirror(t, connect(t, c.urls), "fo", schema, names,
			arpcnats.WithRetry(true), arpcnats.WithAttemptTimeout(time.Second)))
	}

	t.Run("aRPC leader killed", func(t *testing.T) {
		l := runLoad(ctx, ms, 150)
		waitFor(t, l.started, "load to start")
		killed := time.Now()
		a.nc.Close() // the leader's process "dies": no Shutdown, no lease release
		if err := b.srv.WaitLeader(ctx); err != nil {
			t.Fatal(err)
		}
		took := time.Since(killed)
		l.wg.Wait()
		final := b.src.Time(nil)
		got := applied(final[2])
		t.Logf("failover: standby leads %v after the leader died (lease 400ms); %d acked, %d failed, %d applied; worst call %v",
			took, l.acked.Load(), l.failed.Load(), got, time.Duration(l.maxLat.Load()))
		if l.failed.Load() != 0 {
			t.Errorf("%d calls failed despite retries", l.failed.Load())
		}
		if got != l.acked.Load() {
			t.Fatalf("applied %d, acknowledged %d: lost or doubled", got, l.acked.Load())
		}
		for i, m := range ms {
			waitFor(t, m.WhenTime(names, final, ctx), fmt.Sprintf("mirror %d to converge", i))
		}
	})

	t.Run("NATS node killed", func(t *testing.T) {
		before := applied(b.src.Tick("Count"))
		l := runLoad(ctx, ms, 150)
		waitFor(t, l.started, "load to start")
		// kill the node the leader is connected to
		victim := 0
		url := b.nc.ConnectedUrl()
		for i, n := range c.nodes {
			if n.ClientURL() == url {
				victim = i
			}
		}
		killed := time.Now()
		c.kill(victim)
		l.wg.Wait()
		t.Logf("NATS node %d killed: load done %v later; %d acked, %d failed; worst call %v",
			victim+1, time.Since(killed), l.acked.Load(), l.failed.Load(), time.Duration(l.maxLat.Load()))
		// whoever leads now holds the final state
		var leader *proc
		for _, p := range []*proc{a, b} {
			if p.srv.IsLeader() {
				leader = p
			}
		}
		if leader == nil {
			if err := b.srv.WaitLeader(ctx); err != nil {
				t.Fatal(err)
			}
			leader = b
		}
		final := leader.src.Time(nil)
		got := applied(final[2]) - before
		if l.failed.Load() != 0 {
			t.Errorf("%d calls failed despite retries", l.failed.Load())
		}
		if got != l.acked.Load() {
			t.Fatalf("applied %d, acknowledged %d: lost or doubled", got, l.acked.Load())
		}
		for i, m := range ms {
			waitFor(t, m.WhenTime(names, final, ctx), fmt.Sprintf("mirror %d to converge", i))
		}
	})
}
