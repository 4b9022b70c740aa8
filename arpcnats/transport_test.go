package arpcnats_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/arpc-go/arpc/arpcnats"
	am "github.com/arpc-go/arpc/pkg/machine"
)

var (
	schema = am.Struct{
		"A":     {},
		"B":     {Remove: am.S{"A"}},
		"Count": {Multi: true},
	}
	names = am.S{"A", "B", "Count", am.Exception}
)

func ctxT(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// Mutations return the source's results and errors, per call; the mirror
// reflects a mutation when the call returns.
func TestMutations(t *testing.T) {
	e := startNATS(t)
	nc := connect(t, e.ClientURL())
	src := newSource(t, schema, names)
	serve(t, nc, src, "mut")
	m := mirror(t, nc, "mut", schema, names)
	ctx := ctxT(t, 10*time.Second)

	res, err := m.Mutate(ctx, am.MutationAdd, am.S{"A"}, am.A{"n": 1})
	if err != nil || res != am.Executed {
		t.Fatalf("Add A: %v %v", res, err)
	}
	if !m.Is1("A") || !src.Is1("A") {
		t.Fatal("A not active on the mirror or the source after Add returned")
	}
	// unknown state: the call's own error, nothing sent
	if _, err := m.Mutate(ctx, am.MutationAdd, am.S{"Nope"}, nil); !errors.Is(err, am.ErrStateUnknown) {
		t.Fatalf("unknown state: %v", err)
	}
	if src.IsErr() {
		t.Fatal("unknown state reached the source")
	}
	// precondition
	tick := m.Tick("A")
	if _, err := m.MutateIf(ctx, am.Clock{"A": tick + 5}, am.MutationRemove, am.S{"A"}, nil); !errors.Is(err, am.ErrPrecondition) {
		t.Fatalf("stale precondition: %v", err)
	}
	if res, err := m.MutateIf(ctx, am.Clock{"A": tick}, am.MutationRemove, am.S{"A"}, nil); err != nil || res != am.Executed {
		t.Fatalf("precondition held: %v %v", res, err)
	}
	// args that don't marshal
	if _, err := m.Mutate(ctx, am.MutationAdd, am.S{"A"}, am.A{"ch": make(chan int)}); !errors.Is(err, arpcnats.ErrArgs) {
		t.Fatalf("bad args: %v", err)
	}
	// a veto on the source
	if err := src.BindHandlers(&vetoB{}); err != nil {
		t.Fatal(err)
	}
	if res, err := m.Mutate(ctx, am.MutationAdd, am.S{"B"}, nil); res != am.Canceled || !errors.Is(err, am.ErrCanceled) {
		t.Fatalf("veto: %v %v", res, err)
	}
	// a mirror that joins late starts from the current state
	m2 := mirror(t, nc, "mut", schema, names)
	if !m2.IsTime(m.Time(nil), nil) {
		t.Fatalf("late mirror %v, first %v", m2.Time(nil), m.Time(nil))
	}
}

type vetoB struct{}

func (vetoB) BEnter(*am.Event) bool { return false }

// A machine nobody serves fails at once with ErrNoServer.
func TestNoServer(t *testing.T) {
	e := startNATS(t)
	nc := connect(t, e.ClientURL())
	m := mirror(t, nc, "nobody", schema, names)
	start := time.Now()
	_, err := m.Mutate(ctxT(t, 10*time.Second), am.MutationAdd, am.S{"A"}, nil)
	if !errors.Is(err, arpcnats.ErrNoServer) {
		t.Fatalf("err %v, want ErrNoServer", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("no-server error took %v", d)
	}
	if m.Add1("A", nil) != am.Canceled || !errors.Is(m.Err(), arpcnats.ErrNoServer) {
		t.Fatalf("Add1 without a server: Err %v", m.Err())
	}
}

// One update per queue pass reaches every mirror (NATS fans it out); the
// mirrors converge, also those that share a connection.
func TestFanOut(t *testing.T) {
	e := startNATS(t)
	nc := connect(t, e.ClientURL())
	nc2 := connect(t, e.ClientURL())
	src := newSource(t, schema, names)
	serve(t, nc, src, "fan")
	var ms []*arpcnats.Mirror
	for i := 0; i < 20; i++ {
		c := nc
		if i%2 == 1 {
			c = nc2
		}
		ms = append(ms, mirror(t, c, "fan", schema, names))
	}
	ctx := ctxT(t, 10*time.Second)
	for i := 0; i < 50; i++ {
		// local mutations on the source, not through any mirror
		src.Add1("Count", nil)
	}
	src.Add1("B", nil)
	want := src.Time(nil)
	for i, m := range ms {
		waitFor(t, m.WhenTime(names, want, ctx), "mirror to converge")
		if !m.IsTime(want, nil) || !m.Is1("B") {
			t.Fatalf("mirror %d: %v, want %v", i, m.Time(nil), want)
		}
	}
}

// Bytes that aren't requests don't crash the server or change the source;
// bad updates are counted and dropped by mirrors.
func TestMalformed(t *testing.T) {
	e := startNATS(t)
	nc := connect(t, e.ClientURL())
	src := newSource(t, schema, names)
	serve(t, nc, src, "bad")
	m := mirror(t, nc, "bad", schema, names)
	ctx := ctxT(t, 10*time.Second)
	junk := [][]byte{nil, []byte("{"), []byte(`{"id":"x","t":9,"s":["A"]}`), []byte(`{"t":0,"s":["A"]}`),
		[]byte(`{"id":"y","t":0,"s":[]}`), make([]byte, 100<<10), []byte(`{"id":"z","t":0,"s":["A"],"c":{"Zzz":1}}`)}
	for _, j := range junk {
		resp, err := nc.RequestWithContext(ctx, "arpc.bad.mut", j)
		if err != nil {
			t.Fatalf("request %q: %v", j, err)
		}
		// a reply whose code (after magic and result) isn't empty
		if len(resp.Data) < 3 || resp.Data[0] != 0xB1 || resp.Data[2] == 0 {
			t.Fatalf("reply to junk %.40q: %q", j, resp.Data)
		}
		_ = nc.Publish("arpc.bad.upd", j)
		_ = nc.Publish("arpc.bad.mut", j)
	}
	_ = nc.Publish("arpc.bad.upd", []byte{0xA1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	if src.Is1("A") {
		t.Fatal("junk activated A")
	}
	// still serving
	if res, err := m.Mutate(ctx, am.MutationAdd, am.S{"A"}, nil); err != nil || res != am.Executed {
		t.Fatalf("after junk: %v %v", res, err)
	}
	if m.Dropped() == 0 {
		t.Fatal("the mirror counted no dropped update")
	}
}

// A request id runs once: a retry gets the first outcome.
func TestDedup(t *testing.T) {
	e := startNATS(t)
	nc := connect(t, e.ClientURL())
	src := newSource(t, schema, names)
	serve(t, nc, src, "dd")
	ctx := ctxT(t, 10*time.Second)
	req := []byte(`{"id":"same","t":0,"s":["Count"]}`)
	for i := 0; i < 5; i++ {
		if _, err := nc.RequestWithContext(ctx, "arpc.dd.mut", req); err != nil {
			t.Fatal(err)
		}
	}
	if got := src.Tick("Count"); got != 1 {
		t.Fatalf("Count tick %d after 5 sends of one request id, want 1", got)
	}
}

// The state survives the server: a new server restores it into a new
// source, and a mirror with no server reads it from JetStream.
func TestRestore(t *testing.T) {
	e := startNATS(t)
	nc := connect(t, e.ClientURL())
	ctx := ctxT(t, 10*time.Second)
	src := newSource(t, schema, names)
	srv := serve(t, nc, src, "rs", arpcnats.WithAckPersisted(true))
	m := mirror(t, nc, "rs", schema, names)
	for i := 0; i < 3; i++ {
		if _, err := m.Mutate(ctx, am.MutationAdd, am.S{"Count"}, nil); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := m.Mutate(ctx, am.MutationAdd, am.S{"A"}, am.A{"k": "v"}); err != nil {
		t.Fatal(err)
	}
	want := src.Time(nil)
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	late := mirror(t, nc, "rs", schema, names)
	if !late.IsTime(want, nil) {
		t.Fatalf("mirror without a server %v, want %v", late.Time(nil), want)
	}
	src2 := newSource(t, schema, names)
	serve(t, nc, src2, "rs")
	if !src2.IsTime(want, nil) {
		t.Fatalf("restored source %v, want %v", src2.Time(nil), want)
	}
	if _, err := m.Mutate(ctx, am.MutationAdd, am.S{"Count"}, nil); err != nil {
		t.Fatal(err)
	}
	if got := m.Tick("Count"); got != want[2]+2 {
		t.Fatalf("Count %d after restore and one more Add, want %d", got, want[2]+2)
	}
	ep, _ := m.Version()
	if ep != 2 {
		t.Fatalf("epoch %d after one takeover, want 2", ep)
	}
}

// AddNS doesn't wait; Sync brings the change.
func TestAddNS(t *testing.T) {
	e := startNATS(t)
	nc := connect(t, e.ClientURL())
	src := newSource(t, schema, names)
	serve(t, nc, src, "ns")
	m := mirror(t, nc, "ns", schema, names)
	for i := 0; i < 10; i++ {
		if res := m.Add1NS("Count", nil); res != am.Queued {
			t.Fatalf("AddNS: %v", res)
		}
	}
	if m.Add1NS("Nope", nil) != am.Canceled || !errors.Is(m.Err(), am.ErrStateUnknown) {
		t.Fatalf("AddNS of an unknown state: %v", m.Err())
	}
	ctx := ctxT(t, 10*time.Second)
	waitFor(t, m.WhenTicksEq("Count", 19, ctx), "10 AddNS to reach the mirror")
	if got := m.Sync(); got[2] != 19 || src.Tick("Count") != 19 {
		t.Fatalf("Sync: %v, source %d", got, src.Tick("Count"))
	}
}

// An idle leader republishes its state every heartbeat, so a mirror that
// missed the last update (a reconnect) catches up without a new change.
func TestHeartbeat(t *testing.T) {
	e := startNATS(t)
	nc := connect(t, e.ClientURL())
	sub, err := nc.SubscribeSync("arpc.hb.upd")
	if err != nil {
		t.Fatal(err)
	}
	src := newSource(t, schema, names)
	src.Add1("A", nil)
	serve(t, nc, src, "hb", arpcnats.WithHeartbeat(20*time.Millisecond))
	ctx := ctxT(t, 10*time.Second)
	for i := 0; i < 3; i++ {
		msg, err := sub.NextMsgWithContext(ctx)
		if err != nil {
			t.Fatalf("heartbeat %d: %v", i, err)
		}
		if len(msg.Data) < 5 || msg.Data[0] != 0xA1 {
			t.Fatalf("heartbeat %d: %q", i, msg.Data)
		}
	}
}
