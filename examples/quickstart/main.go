package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	am "github.com/arpc-go/arpc/pkg/machine"
	"github.com/arpc-go/arpc/pkg/rpc"
)

// The order machine: a request starts work; the work ends in Done, which
// answers that request (both Multi: each request and answer is an
// activation of its own).
var (
	states = am.Struct{
		"Requested": {Multi: true},
		"Done":      {Multi: true},
	}
	names = am.S{"Requested", "Done", am.Exception}
)

// handlers run on the server, next to the machine.
type handlers struct {
	out io.Writer
	// jobs owns the asynchronous work, so main can wait for it.
	jobs sync.WaitGroup
}

// RequestedState starts the work asynchronously and returns at once; the
// work answers the request by its correlation ID.
func (h *handlers) RequestedState(e *am.Event) {
	id := rpc.CorrelationID(e.Args)
	order := e.Args["order"]
	fmt.Fprintf(h.out, "server: order %v accepted, working\n", order)
	h.jobs.Add(1)
	go func() {
		defer h.jobs.Done()
		// the asynchronous backend: here a short computation
		sum := 0
		for i := range 1000 {
			sum += i
		}
		fmt.Fprintf(h.out, "server: order %v done (result %d)\n", order, sum)
		e.Machine.Add1("Done", rpc.Correlated(id, am.A{"result": sum}))
	}()
}

func main() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := run(ctx, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "quickstart:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, out io.Writer) error {
	// 1. the machine to expose, with its handlers
	worker := am.New(ctx, states, &am.Opts{ID: "orders"})
	if err := worker.VerifyStates(names); err != nil {
		return err
	}
	h := &handlers{out: out}
	if err := worker.BindHandlers(h); err != nil {
		return err
	}
	defer func() {
		h.jobs.Wait()
		worker.Dispose()
		<-worker.WhenDisposed()
	}()

	// 2. the server, on an ephemeral loopback port
	srv, err := rpc.Listen(ctx, "127.0.0.1:0", worker)
	if err != nil {
		return err
	}
	defer func() {
		// let what is in flight finish, say goodbye, then dispose
		sctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
		_ = srv.Close()
	}()
	fmt.Fprintln(out, "server: ready")

	// 3. the client, mirroring the machine; ctx bounds connecting only
	c, err := rpc.Dial(ctx, srv.Addr, states, names)
	if err != nil {
		return err
	}
	defer c.Close()
	fmt.Fprintln(out, "client: connected, mirror is", c.Worker.StringAll())

	// 4. sync over async: one request, answered asynchronously, under the
	// request's deadline
	reqCtx, reqCancel := context.WithTimeout(ctx, 2*time.Second)
	defer reqCancel()
	answer, err := c.Worker.Request(reqCtx, "Requested", am.A{"order": 1}, "Done")
	if err != nil {
		// an HTTP front would answer 504 Gateway Timeout on a deadline
		return fmt.Errorf("no answer: %w", err)
	}
	fmt.Fprintln(out, "client: order 1 answered, result", answer["result"])
	fmt.Fprintln(out, "client: mirror is", c.Worker.String())
	fmt.Fprintln(out, "client: stopping")
	return nil
}
