package rpc_test

import (
	"context"
	"fmt"
	"time"

	am "github.com/arpc-go/arpc/pkg/machine"
	"github.com/arpc-go/arpc/pkg/rpc"
)

// A dashboard that shows whether a machine is Ready mirrors just that
// state: the server sends it none of the machine's other changes.
func ExampleWithSyncStates() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	schema := am.Struct{"Ready": {}, "Progress": {Multi: true}}
	names := am.S{"Ready", "Progress", am.Exception}

	source := am.New(ctx, schema, &am.Opts{ID: "job"})
	_ = source.VerifyStates(names)
	srv, err := rpc.Listen(ctx, "127.0.0.1:0", source)
	if err != nil {
		fmt.Println(err)
		return
	}
	dash, err := rpc.Dial(ctx, srv.Addr, schema, names, rpc.WithSyncStates("Ready"))
	if err != nil {
		fmt.Println(err)
		return
	}

	for range 100 {
		source.Add1("Progress", nil) // pushed to no one
	}
	source.Add1("Ready", nil)
	if err := am.WaitFor(ctx, dash.Worker, "Ready"); err != nil {
		fmt.Println(err)
	}
	fmt.Println("Ready:", dash.Worker.Is1("Ready"), "Progress tick:", dash.Worker.Tick("Progress"))

	_ = dash.Close()
	_ = srv.Close()
	source.Dispose()
	<-source.WhenDisposed()
	// Output:
	// Ready: true Progress tick: 0
}
