package arpcnats_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/arpc-go/arpc/arpcnats"
	am "github.com/arpc-go/arpc/pkg/machine"
)

// Graceful termination under load: the leader stops its intake (and says
// so), finishes and persists what is in flight, releases the lease, and a
// standby takes over at once. Nothing acknowledged is lost or doubled, in
// both durability modes.
func TestShutdownUnderLoad(t *testing.T) {
	for _, persisted := range []bool{false, true} {
		t.Run(fmt.Sprintf("ackPersisted=%v", persisted), func(t *testing.T) {
			e := startNATS(t)
			ctx := ctxT(t, 30*time.Second)
			id := fmt.Sprintf("gs%v", persisted)
			opts := []arpcnats.Option{arpcnats.WithAckPersisted(persisted), arpcnats.WithLease(time.Second)}
			srcA := newSource(t, schema, names)
			a := serve(t, connect(t, e.ClientURL()), srcA, id, opts...)
			srcB := newSource(t, schema, names)
			b, err := arpcnats.Serve(ctx, connect(t, e.ClientURL()), srcB, id, opts...)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = b.Close() })
			var ms []*arpcnats.Mirror
			for i := 0; i < 4; i++ {
				ms = append(ms, mirror(t, connect(t, e.ClientURL()), id, schema, names,
					arpcnats.WithRetry(true), arpcnats.WithAttemptTimeout(2*time.Second)))
			}
			l := runLoad(ctx, ms, 200)
			waitFor(t, l.started, "load to start")
			start := time.Now()
			if err := a.Shutdown(ctx); err != nil {
				t.Fatal(err)
			}
			waitFor(t, a.IntakeStopped(), "intake stopped")
			took := time.Since(start)
			if err := b.WaitLeader(ctx); err != nil {
				t.Fatal(err)
			}
			handover := time.Since(start)
			l.wg.Wait()
			got := applied(srcB.Tick("Count"))
			t.Logf("shutdown took %v, standby led %v after it began; %d acked, %d failed, %d applied",
				took, handover, l.acked.Load(), l.failed.Load(), got)
			if l.failed.Load() != 0 || got != l.acked.Load() {
				t.Fatalf("applied %d, acked %d, failed %d", got, l.acked.Load(), l.failed.Load())
			}
			if err := a.Shutdown(ctx); err != arpcnats.ErrClosed {
				t.Fatalf("second Shutdown: %v", err)
			}
			for i, m := range ms {
				waitFor(t, m.WhenTime(names, srcB.Time(nil), ctx), fmt.Sprintf("mirror %d", i))
			}
		})
	}
}

// After Shutdown with no standby, mutations fail at once with ErrNoServer.
func TestShutdownNoStandby(t *testing.T) {
	e := startNATS(t)
	nc := connect(t, e.ClientURL())
	ctx := ctxT(t, 10*time.Second)
	srv := serve(t, nc, newSource(t, schema, names), "gone")
	m := mirror(t, nc, "gone", schema, names)
	if _, err := m.Mutate(ctx, am.MutationAdd, am.S{"A"}, nil); err != nil {
		t.Fatal(err)
	}
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Mutate(ctx, am.MutationAdd, am.S{"B"}, nil); !errors.Is(err, arpcnats.ErrNoServer) {
		t.Fatalf("a mutation after Shutdown: %v, want ErrNoServer", err)
	}
}

// Close stops at once, also while a Shutdown waits for a request in
// flight; that Shutdown then returns ErrClosed.
func TestCloseDuringShutdown(t *testing.T) {
	e := startNATS(t)
	nc := connect(t, e.ClientURL())
	ctx := ctxT(t, 20*time.Second)
	src := newSource(t, reqSchema, reqNames)
	if err := src.BindHandlers(&squarer{}); err != nil {
		t.Fatal(err)
	}
	srv := serve(t, nc, src, "closing")
	m := mirror(t, nc, "closing", reqSchema, reqNames)
	requested := src.When1("Requested", ctx)
	reqDone := make(chan error, 1)
	go func() {
		_, err := m.Request(ctx, "Requested", am.A{"silent": true}, "Done")
		reqDone <- err
	}()
	waitFor(t, requested, "the request to reach the source")
	shutDone := make(chan error, 1)
	go func() { shutDone <- srv.Shutdown(context.Background()) }()
	waitFor(t, srv.IntakeStopped(), "intake to stop")
	closed := make(chan struct{})
	go func() {
		_ = srv.Close()
		close(closed)
	}()
	select {
	case <-closed:
	case <-time.After(3 * time.Second):
		t.Fatal("Close waited for the graceful Shutdown's request in flight")
	}
	if err := <-shutDone; !errors.Is(err, arpcnats.ErrClosed) {
		t.Fatalf("the interrupted Shutdown: %v, want ErrClosed", err)
	}
	if err := <-reqDone; err == nil {
		t.Fatal("the request cut by Close returned no error")
	}
}
