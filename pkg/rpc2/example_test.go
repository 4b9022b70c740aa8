package rpc2_test

import (
	"context"
	"errors"
	"fmt"
	"net"

	"github.com/arpc-go/arpc/pkg/rpc2"
)

// Method numbers are the wire contract: keep them stable.
const (
	MethodGreet rpc2.Method = 1 // served by the server
	MethodNote  rpc2.Method = 2 // served by the client (a callback)
)

type GreetArgs struct{ Name string }
type GreetReply struct{ Text string }

// Example shows both ends of one connection serving each other: the server's
// handler calls back into the client before it replies.
func Example() {
	server := rpc2.NewRegistry()
	_ = rpc2.HandleFunc(server, MethodGreet, "greet",
		func(ctx context.Context, c *rpc2.Conn, args *GreetArgs, reply *GreetReply) error {
			if args.Name == "" {
				return rpc2.Errorf(rpc2.CodeApplication, "no name")
			}
			var seen int
			if err := c.Call(ctx, MethodNote, args, &seen); err != nil { // call back
				return err
			}
			reply.Text = fmt.Sprintf("hello %s (greeting #%d)", args.Name, seen)
			return nil
		})

	client := rpc2.NewRegistry()
	count := 0
	_ = rpc2.HandleFunc(client, MethodNote, "note",
		func(ctx context.Context, c *rpc2.Conn, args *GreetArgs, reply *int) error {
			count++
			*reply = count
			return nil
		})

	a, b := net.Pipe()
	srv := rpc2.NewConn(a, server)
	cli := rpc2.NewConn(b, client)
	defer srv.Close()
	defer cli.Close()

	ctx := context.Background()
	var reply GreetReply
	if err := cli.Call(ctx, MethodGreet, &GreetArgs{Name: "ada"}, &reply); err != nil {
		fmt.Println("error:", err)
	}
	fmt.Println(reply.Text)

	err := cli.Call(ctx, MethodGreet, &GreetArgs{}, &reply)
	var rerr *rpc2.Error
	if errors.As(err, &rerr) {
		fmt.Println(rerr.Code, "-", rerr.Message)
	}

	err = cli.Call(ctx, 99, nil, nil)
	fmt.Println(errors.Is(err, &rpc2.Error{Code: rpc2.CodeUnknownMethod}))
	// Output:
	// hello ada (greeting #1)
	// application error - no name
	// true
}

// ExampleServer serves a registry on a loopback listener and shuts it down.
func ExampleServer() {
	reg := rpc2.NewRegistry()
	_ = rpc2.HandleFunc(reg, 1, "double", func(ctx context.Context, c *rpc2.Conn, n *int, out *int) error {
		*out = 2 * *n
		return nil
	})
	srv := rpc2.NewServer(reg, rpc2.WithMaxConcurrency(16))
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Println(err)
		return
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(context.Background(), lis) }()

	nc, err := net.Dial("tcp", lis.Addr().String())
	if err != nil {
		fmt.Println(err)
		return
	}
	conn := rpc2.NewConn(nc, nil)
	n, out := 21, 0
	fmt.Println(conn.Call(context.Background(), 1, &n, &out), out)

	fmt.Println(srv.Shutdown(context.Background()))
	fmt.Println(errors.Is(<-served, rpc2.ErrServerClosed))
	<-conn.Done()
	fmt.Println(errors.Is(conn.Err(), rpc2.ErrConnLost))
	// Output:
	// <nil> 42
	// <nil>
	// true
	// true
}

// ExampleInline applies ordered updates on the client's read loop: the
// server queues an update and replies in one write, and when the reply
// arrives the update has been applied.
func ExampleInline() {
	const (
		MethodSet   rpc2.Method = 1 // served by the server
		MethodApply rpc2.Method = 2 // served by the client, inline
	)
	server := rpc2.NewRegistry()
	_ = rpc2.HandleFunc(server, MethodSet, "set",
		func(ctx context.Context, c *rpc2.Conn, v *int, version *int) error {
			*version = *v // a real server would apply v and bump a version
			return c.Queue(ctx, MethodApply, v)
		})
	client := rpc2.NewRegistry()
	applied := 0 // written by the client's read loop only
	_ = rpc2.HandleFunc(client, MethodApply, "apply",
		func(ctx context.Context, c *rpc2.Conn, v *int, _ *struct{}) error {
			applied = *v
			return nil
		}, rpc2.Inline())

	a, b := net.Pipe()
	srv := rpc2.NewConn(a, server)
	cli := rpc2.NewConn(b, client)
	defer srv.Close()
	defer cli.Close()

	for v := 1; v <= 3; v++ {
		var version int
		if err := cli.Call(context.Background(), MethodSet, &v, &version); err != nil {
			fmt.Println(err)
			return
		}
		fmt.Println(version, applied)
	}
	// Output:
	// 1 1
	// 2 2
	// 3 3
}
