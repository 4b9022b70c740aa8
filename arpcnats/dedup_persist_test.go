package arpcnats_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/arpc-go/arpc/arpcnats"
	"github.com/nats-io/nats.go/jetstream"
)

// With WithAckPersisted a reply means the stored state holds the mutation
// and its outcome, even when a state write takes the mutation's effect
// before its outcome is recorded: a retry sent to the next leader is then
// answered from the stored outcome instead of running again.
func TestAckPersistedStoresOutcome(t *testing.T) {
	arpcnats.PersistBeforeRecord(t)
	e := startNATS(t)
	nc := connect(t, e.ClientURL())
	ctx := ctxT(t, 20*time.Second)
	srcA := newSource(t, schema, names)
	a := serve(t, nc, srcA, "dps", arpcnats.WithAckPersisted(true), arpcnats.WithLease(100*time.Millisecond))
	req := []byte(`{"id":"c.1","lo":1,"t":0,"s":["Count"]}`)
	resp, err := nc.RequestWithContext(ctx, "arpc.dps.mut", req)
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Data) < 3 || resp.Data[2] != 0 {
		t.Fatalf("reply %q", resp.Data)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	kv, err := js.KeyValue(ctx, "arpc")
	if err != nil {
		t.Fatal(err)
	}
	ent, err := kv.Get(ctx, "dps.state")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct{ Dedup []struct{ ID string } }
	if err := json.Unmarshal(ent.Value(), &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Dedup) != 1 || doc.Dedup[0].ID != "c.1" {
		t.Errorf("acknowledged, but the stored state lacks the outcome: dedup %v", doc.Dedup)
	}
	// the leader dies; its reply was lost, so the client retries on the
	// next leader, which must not run it again
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	srcB := newSource(t, schema, names)
	serve(t, nc, srcB, "dps", arpcnats.WithAckPersisted(true), arpcnats.WithLease(100*time.Millisecond))
	if _, err := nc.RequestWithContext(ctx, "arpc.dps.mut", req); err != nil {
		t.Fatal(err)
	}
	if got := srcB.Tick("Count"); got != 1 {
		t.Fatalf("Count tick %d after a retry on the next leader, want 1 (applied twice)", got)
	}
}
