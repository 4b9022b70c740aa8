package rpc_test

import (
	"context"
	"fmt"
	"time"

	am "github.com/arpc-go/arpc/pkg/machine"
	"github.com/arpc-go/arpc/pkg/rpc"
	ssC "github.com/arpc-go/arpc/states/client"
	ssS "github.com/arpc-go/arpc/states/server"
)

// An order machine served on loopback: the client mutates it remotely and
// waits on its local mirror with a deadline.
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	schema := am.Struct{
		"Ordered": {},
		"Paid":    {Require: am.S{"Ordered"}},
		"Shipped": {Require: am.S{"Paid"}},
	}
	names := am.S{"Ordered", "Paid", "Shipped", am.Exception}

	// the server side
	source := am.New(ctx, schema, &am.Opts{ID: "orders"})
	_ = source.VerifyStates(names)
	srv, _ := rpc.NewServer(ctx, "127.0.0.1:0", "orders", source, nil)
	srv.Start()
	<-srv.Mach.When1(ssS.RpcReady, ctx)

	// the client side
	c, _ := rpc.NewClient(ctx, srv.Addr, "shop", schema, names)
	c.Start()
	<-c.Mach.When1(ssC.Ready, ctx)

	fmt.Println(c.Worker.Add(am.S{"Ordered", "Paid"}, nil))
	fmt.Println(c.Worker.Is1("Paid"))

	// the server ships; the change reaches the client in a push, and the
	// client waits for it locally
	source.Add1("Shipped", nil)
	select {
	case <-c.Worker.When1("Shipped", ctx):
		fmt.Println(c.Worker.String())
	case <-ctx.Done():
		fmt.Println("timeout")
	}

	c.Stop(ctx, true)
	srv.Stop(true)
	source.Dispose()
	<-source.WhenDisposed()
	// Output:
	// executed
	// true
	// (Ordered:1 Paid:1 Shipped:1)
}
