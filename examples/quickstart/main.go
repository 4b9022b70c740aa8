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

// The order machine: a request starts work, work ends in Done.
var (
	states = am.Struct{
		"Requested": {Multi: true},
		"Working":   {Remove: am.S{"Done"}},
		"Done":      {Remove: am.S{"Working"}},
	}
	names = am.S{"Requested", "Working", "Done", am.Exception}
)

// handlers run on the server, next to the machine.
type handlers struct {
	out io.Writer
	// jobs owns the asynchronous work, so main can wait for it.
	jobs sync.WaitGroup
}

// RequestedState starts the work asynchronously and returns at once.
func (h *handlers) RequestedState(e *am.Event) {
	id := e.Args["id"]
	fmt.Fprintf(h.out, "server: request %v accepted, working\n", id)
	e.Machine.Add1("Working", nil)
	h.jobs.Add(1)
	go func() {
		defer h.jobs.Done()
		// the asynchronous backend: here a short computation
		sum := 0
		for i := range 1000 {
			sum += i
		}
		fmt.Fprintf(h.out, "server: request %v done (result %d)\n", id, sum)
		e.Machine.Add1("Done", am.A{"result": sum})
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

	// 4. sync over async: mutate and wait for the answer, all under the
	// request's deadline
	reqCtx, reqCancel := context.WithTimeout(ctx, 2*time.Second)
	defer reqCancel()
	res, err := c.Worker.Mutate(reqCtx, am.MutationAdd, am.S{"Requested"}, am.A{"id": 1})
	if err != nil {
		return fmt.Errorf("request not taken: %w", err)
	}
	fmt.Fprintln(out, "client: Mutate(Add Requested) =", res)
	if err := wait(reqCtx, c.Worker, "Done"); err != nil {
		// an HTTP front would answer 504 Gateway Timeout here
		return fmt.Errorf("no answer in time: %w", err)
	}
	fmt.Fprintln(out, "client: Done, mirror is", c.Worker.String())
	fmt.Fprintln(out, "client: stopping")
	return nil
}

// wait waits for state on mach (a local machine or a mirror). A When
// channel also closes when its context ends, so the error says which it was.
func wait(ctx context.Context, mach am.Api, state string) error {
	<-mach.When1(state, ctx)
	if mach.Is1(state) {
		return nil
	}
	return ctx.Err()
}
