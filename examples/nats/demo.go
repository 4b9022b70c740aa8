package main

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/arpc-go/arpc/arpcnats"
	am "github.com/arpc-go/arpc/pkg/machine"
)

// The machine: an order that is paid, then shipped; Jobs counts work items.
var (
	states = am.Struct{
		"Paid":    {},
		"Shipped": {Require: am.S{"Paid"}},
		"Jobs":    {Multi: true},
	}
	names = am.S{"Paid", "Shipped", "Jobs", am.Exception}
)

// newMachine returns a verified machine of the schema.
func newMachine(id string) (*am.Machine, error) {
	m := am.New(context.Background(), states, &am.Opts{ID: id})
	if err := m.VerifyStates(names); err != nil {
		m.Dispose()
		return nil, err
	}
	return m, nil
}

// demo serves the machine "order-1" from two processes' worth of servers
// (a leader and a standby) and follows it with three mirrors sharing one
// connection.
func demo(ctx context.Context, url string, o *out) error {
	// a fresh machine id per run, so an external cluster's stored state
	// from an earlier run doesn't leak in
	id := fmt.Sprintf("order-%d", time.Now().UnixNano()%1_000_000)
	opts := []arpcnats.Option{arpcnats.WithAckPersisted(true), arpcnats.WithLease(time.Second)}

	// the leader and the standby, each with its own connection and machine
	ncA, err := connect(url, "server-a")
	if err != nil {
		return err
	}
	defer ncA.Close()
	machA, err := newMachine("a")
	if err != nil {
		return err
	}
	defer machA.Dispose()
	a, err := arpcnats.Serve(ctx, ncA, machA, id, append(opts, arpcnats.WithInstance("a"))...)
	if err != nil {
		return err
	}
	defer a.Close()
	if err := a.WaitLeader(ctx); err != nil {
		return err
	}
	ncB, err := connect(url, "server-b")
	if err != nil {
		return err
	}
	defer ncB.Close()
	machB, err := newMachine("b")
	if err != nil {
		return err
	}
	defer machB.Dispose()
	b, err := arpcnats.Serve(ctx, ncB, machB, id, append(opts, arpcnats.WithInstance("b"))...)
	if err != nil {
		return err
	}
	defer b.Close()
	o.printf("serving %s: server a leads, server b stands by", id)

	// three mirrors on one connection: one subscription, one delivery
	nc, err := connect(url, "mirrors")
	if err != nil {
		return err
	}
	defer nc.Close()
	var ms []*arpcnats.Mirror
	for range 3 {
		m, err := arpcnats.NewMirror(ctx, nc, id, states, names, arpcnats.WithRetry(true))
		if err != nil {
			return err
		}
		defer m.Dispose()
		ms = append(ms, m)
	}

	// a durable wait: "Shipped", kept in JetStream, result to a subject
	cb, err := nc.SubscribeSync("orders.shipped")
	if err != nil {
		return err
	}
	defer func() { _ = cb.Unsubscribe() }()
	if _, err := ms[0].RegisterWait(ctx, arpcnats.DurableWait{ID: "ship-" + id, Reply: "orders.shipped",
		Cases: []arpcnats.WaitCase{arpcnats.OnActive("Shipped")}}); err != nil {
		return err
	}
	o.printf("durable wait registered: Shipped → orders.shipped")

	// mutations from mirror 0; mirror 2 sees them
	paid := ms[2].When1("Paid", ctx)
	for range 3 {
		if _, err := ms[0].Mutate(ctx, am.MutationAdd, am.S{"Jobs"}, nil); err != nil {
			return err
		}
	}
	if _, err := ms[0].Mutate(ctx, am.MutationAdd, am.S{"Paid"}, am.A{"amount": 42}); err != nil {
		return err
	}
	select {
	case <-paid:
	case <-ctx.Done():
		return ctx.Err()
	}
	o.printf("mirror 2 sees Paid; Jobs tick %d", ms[2].Tick("Jobs"))

	// a mutation naming an unknown state is this call's error only
	if _, err := ms[1].Mutate(ctx, am.MutationAdd, am.S{"Refunded"}, nil); err != nil {
		o.printf("unknown state: %v", err)
	}

	// graceful handover: a stops its intake, persists, releases the lease
	start := time.Now()
	if err := a.Shutdown(ctx); err != nil {
		return err
	}
	if err := b.WaitLeader(ctx); err != nil {
		return err
	}
	o.printf("server a shut down; server b leads (restored Paid=%v, Jobs tick %d)", machB.Is1("Paid"), machB.Tick("Jobs"))
	o.printf("handover took %v", time.Since(start).Round(time.Millisecond))

	// mirrors follow without code of theirs
	if _, err := ms[1].Mutate(ctx, am.MutationAdd, am.S{"Shipped"}, nil); err != nil {
		return err
	}
	msg, err := cb.NextMsgWithContext(ctx)
	if err != nil {
		return err
	}
	var res arpcnats.WaitResult
	if err := json.Unmarshal(msg.Data, &res); err != nil {
		return err
	}
	o.printf("durable wait resolved by server b: case %d, clock %v", res.Index, res.Clock)
	for i, m := range ms {
		select {
		case <-m.When1("Shipped", ctx):
		case <-ctx.Done():
			return ctx.Err()
		}
		o.printf("mirror %d: %s", i, m.String())
	}
	_ = ms[0].DeleteWait(ctx, "ship-"+id)
	return b.Shutdown(ctx)
}
