package arpcnats_test

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/arpc-go/arpc/arpcnats"
	am "github.com/arpc-go/arpc/pkg/machine"
	"github.com/nats-io/nats.go/jetstream"
)

// A leader whose state key was written by someone else (another leader
// took over) is fenced: its next write fails, the mutation it held is not
// acknowledged (ErrNotLeader) and not stored, and it stops serving that
// term.
func TestFencing(t *testing.T) {
	e := startNATS(t)
	nc := connect(t, e.ClientURL())
	ctx := ctxT(t, 10*time.Second)
	src := newSource(t, schema, names)
	srv := serve(t, nc, src, "fence", arpcnats.WithAckPersisted(true), arpcnats.WithLease(time.Second))
	m := mirror(t, nc, "fence", schema, names)
	if _, err := m.Mutate(ctx, am.MutationAdd, am.S{"A"}, nil); err != nil {
		t.Fatal(err)
	}
	// "another leader" writes the state
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	kv, err := js.KeyValue(ctx, "arpc")
	if err != nil {
		t.Fatal(err)
	}
	ent, err := kv.Get(ctx, "fence.state")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Update(ctx, "fence.state", ent.Value(), ent.Revision()); err != nil {
		t.Fatal(err)
	}
	_, err = m.Mutate(ctx, am.MutationAdd, am.S{"Count"}, nil)
	if !errors.Is(err, arpcnats.ErrNotLeader) {
		t.Fatalf("a mutation of a fenced leader: %v, want ErrNotLeader", err)
	}
	ent, err = kv.Get(ctx, "fence.state")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct{ Time []uint64 }
	if err := json.Unmarshal(ent.Value(), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Time[2] != 0 {
		t.Fatalf("the fenced leader stored its mutation: %v", doc.Time)
	}
	// it leads again once it has restored the stored state (its own lease
	// is still there): the unacknowledged mutation is gone from its source
	if err := srv.WaitLeader(ctx); err != nil {
		t.Fatal(err)
	}
	if err := m.Resync(ctx); err != nil {
		t.Fatal(err)
	}
	if ep, _ := m.Version(); ep < 2 || src.Tick("Count") != 0 {
		t.Fatalf("epoch %d, source Count %d after re-leading", ep, src.Tick("Count"))
	}
}
