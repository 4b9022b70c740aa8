package arpcnats_test

import (
	"context"
	"fmt"
	"time"

	"github.com/arpc-go/arpc/arpcnats"
	am "github.com/arpc-go/arpc/pkg/machine"
	"github.com/nats-io/nats.go"
)

// Serve a machine over an embedded NATS server and mutate it through a
// mirror.
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	e, err := arpcnats.StartEmbedded(ctx, arpcnats.EmbeddedConfig{})
	if err != nil {
		panic(err)
	}
	defer e.Close()
	nc, err := nats.Connect(e.ClientURL())
	if err != nil {
		panic(err)
	}
	defer nc.Close()

	schema := am.Struct{"Ready": {}, "Jobs": {Multi: true}}
	names := am.S{"Ready", "Jobs", am.Exception}
	source := am.New(context.Background(), schema, nil)
	defer source.Dispose()
	if err := source.VerifyStates(names); err != nil {
		panic(err)
	}
	srv, err := arpcnats.Serve(ctx, nc, source, "worker-1", arpcnats.WithAckPersisted(true))
	if err != nil {
		panic(err)
	}
	defer srv.Close()
	if err := srv.WaitLeader(ctx); err != nil {
		panic(err)
	}

	m, err := arpcnats.NewMirror(ctx, nc, "worker-1", schema, names)
	if err != nil {
		panic(err)
	}
	defer m.Dispose()
	res, err := m.Mutate(ctx, am.MutationAdd, am.S{"Ready"}, nil)
	fmt.Println(res, err, m.Is1("Ready"), source.Is1("Ready"))
	_, err = m.Mutate(ctx, am.MutationAdd, am.S{"Gone"}, nil)
	fmt.Println(err)
	// Output:
	// executed <nil> true true
	// state unknown: Gone
}
