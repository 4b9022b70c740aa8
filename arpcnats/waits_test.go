package arpcnats_test

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/arpc-go/arpc/arpcnats"
	am "github.com/arpc-go/arpc/pkg/machine"
)

// A durable wait survives a restart of the process that registered it and
// of the server: when its condition is met, the result reaches the
// callback subject and stays pollable.
func TestDurableWait(t *testing.T) {
	e := startNATS(t)
	ctx := ctxT(t, 20*time.Second)
	srv1 := serve(t, connect(t, e.ClientURL()), newSource(t, schema, names), "dw")

	waiter1 := connect(t, e.ClientURL())
	m1 := mirror(t, waiter1, "dw", schema, names)
	w := arpcnats.DurableWait{ID: "order-1", Reply: "callbacks.order-1",
		Cases: []arpcnats.WaitCase{arpcnats.OnActive("B"), arpcnats.OnTime([]string{"Count"}, []uint64{99})}}
	if r, err := m1.RegisterWait(ctx, w); err != nil || r != nil {
		t.Fatalf("RegisterWait: %v %v", r, err)
	}
	if _, err := m1.RegisterWait(ctx, arpcnats.DurableWait{ID: "bad", Cases: []arpcnats.WaitCase{arpcnats.OnActive("Nope")}}); !errors.Is(err, arpcnats.ErrInvalidRequest) {
		t.Fatalf("a wait on an unknown state: %v", err)
	}
	// the waiting process and the server die
	m1.Dispose()
	waiter1.Close()
	if err := srv1.Close(); err != nil {
		t.Fatal(err)
	}

	// both come back
	src2 := newSource(t, schema, names)
	serve(t, connect(t, e.ClientURL()), src2, "dw", arpcnats.WithLease(200*time.Millisecond))
	waiter2 := connect(t, e.ClientURL())
	cb, err := waiter2.SubscribeSync("callbacks.order-1")
	if err != nil {
		t.Fatal(err)
	}
	m2 := mirror(t, waiter2, "dw", schema, names)
	if r, err := m2.PollWait(ctx, "order-1"); err != nil || r != nil {
		t.Fatalf("PollWait before: %v %v", r, err)
	}

	// the condition is met
	if _, err := m2.Mutate(ctx, am.MutationAdd, am.S{"B"}, nil); err != nil {
		t.Fatal(err)
	}
	msg, err := cb.NextMsgWithContext(ctx)
	if err != nil {
		t.Fatalf("no callback: %v", err)
	}
	var res arpcnats.WaitResult
	if err := json.Unmarshal(msg.Data, &res); err != nil || res.ID != "order-1" || res.Index != 0 || res.Clock["B"] != 1 {
		t.Fatalf("callback %s (%v)", msg.Data, err)
	}
	polled, err := m2.PollWait(ctx, "order-1")
	if err != nil || polled == nil || polled.Index != 0 {
		t.Fatalf("PollWait after: %v %v", polled, err)
	}
	// registering again returns the stored result
	if r, err := m2.RegisterWait(ctx, w); err != nil || r == nil || r.Index != 0 {
		t.Fatalf("RegisterWait again: %v %v", r, err)
	}
	if err := m2.DeleteWait(ctx, "order-1"); err != nil {
		t.Fatal(err)
	}
	if _, err := m2.PollWait(ctx, "order-1"); !errors.Is(err, arpcnats.ErrWaitUnknown) {
		t.Fatalf("PollWait after delete: %v", err)
	}
}

// A leader resolving as many durable waits as it can refuses more with
// am.ErrQueueFull, storing nothing, rather than storing a wait that no
// one resolves; once one resolves, there is room again.
func TestDurableWaitsBound(t *testing.T) {
	e := startNATS(t)
	nc := connect(t, e.ClientURL())
	ctx := ctxT(t, 20*time.Second)
	serve(t, nc, newSource(t, schema, names), "dwb", arpcnats.WithMaxWaits(1))
	m := mirror(t, nc, "dwb", schema, names)
	cb, err := nc.SubscribeSync("callbacks.dwb")
	if err != nil {
		t.Fatal(err)
	}
	first := arpcnats.DurableWait{ID: "first", Reply: "callbacks.dwb", Cases: []arpcnats.WaitCase{arpcnats.OnActive("B")}}
	second := arpcnats.DurableWait{ID: "second", Cases: []arpcnats.WaitCase{arpcnats.OnActive("A")}}
	if _, err := m.RegisterWait(ctx, first); err != nil {
		t.Fatal(err)
	}
	if _, err := m.RegisterWait(ctx, second); !errors.Is(err, am.ErrQueueFull) {
		t.Fatalf("a wait past the bound: %v, want am.ErrQueueFull", err)
	}
	if _, err := m.PollWait(ctx, "second"); !errors.Is(err, arpcnats.ErrWaitUnknown) {
		t.Fatalf("the refused wait was stored: %v", err)
	}
	// registering the running one again is still a no-op
	if r, err := m.RegisterWait(ctx, first); err != nil || r != nil {
		t.Fatalf("registering again: %v %v", r, err)
	}
	if _, err := m.RegisterWait(ctx, arpcnats.DurableWait{ID: "wild", Reply: "callbacks.>",
		Cases: first.Cases}); !errors.Is(err, arpcnats.ErrInvalidID) {
		t.Fatalf("a wildcard reply subject: %v", err)
	}
	if _, err := m.Mutate(ctx, am.MutationAdd, am.S{"B"}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := cb.NextMsgWithContext(ctx); err != nil {
		t.Fatalf("the first wait's result: %v", err)
	}
	// its resolver was released before the result was published
	if _, err := m.RegisterWait(ctx, second); err != nil {
		t.Fatalf("a wait after the first resolved: %v", err)
	}
}
