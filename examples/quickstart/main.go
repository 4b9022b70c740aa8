// Command quickstart runs a local state machine: a request starts work
// asynchronously, a handler reacts, and the caller waits for the result with
// When1 and a deadline, as an HTTP handler in front of asynchronous work
// would. (The networked version serves the same machine over aRPC.)
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	am "github.com/arpc-go/arpc/pkg/machine"
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

// handlers run next to the machine, on the goroutine processing its queue.
type handlers struct {
	out io.Writer
	// jobs owns the asynchronous work, so run can wait for it.
	jobs sync.WaitGroup
}

// RequestedState starts the work asynchronously and returns at once.
func (h *handlers) RequestedState(e *am.Event) {
	id := e.Args["id"]
	fmt.Fprintf(h.out, "handler: request %v accepted, working\n", id)
	e.Machine.Add1("Working", nil)
	h.jobs.Add(1)
	go func() {
		defer h.jobs.Done()
		// the asynchronous backend: here a short computation
		sum := 0
		for i := range 1000 {
			sum += i
		}
		fmt.Fprintf(h.out, "backend: request %v done (result %d)\n", id, sum)
		e.Machine.Add1("Done", am.A{"result": sum})
	}()
}

// DoneEnter refuses a result without a value: false cancels the transition.
func (h *handlers) DoneEnter(e *am.Event) bool {
	_, ok := e.Args["result"].(int)
	return ok
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
	// 1. the machine, with its handlers
	mach := am.New(ctx, states, &am.Opts{ID: "orders"})
	if err := mach.VerifyStates(names); err != nil {
		return err
	}
	h := &handlers{out: out}
	if err := mach.BindHandlers(h); err != nil {
		return err
	}
	defer func() {
		h.jobs.Wait()
		mach.Dispose()
		<-mach.WhenDisposed()
	}()
	fmt.Fprintln(out, "main: machine is", mach.StringAll())

	// 2. relations: Done and Working remove each other; a handler refuses a
	// Done without a result
	fmt.Fprintln(out, "main: Add1(Done) without a result =", mach.Add1("Done", nil))

	// 3. sync over async: mutate, then wait with a deadline
	res := mach.Add1("Requested", am.A{"id": 1})
	fmt.Fprintln(out, "main: Add1(Requested) =", res)
	reqCtx, reqCancel := context.WithTimeout(ctx, 2*time.Second)
	defer reqCancel()
	select {
	case <-mach.When1("Done", reqCtx):
	case <-reqCtx.Done():
	}
	if reqCtx.Err() != nil {
		// an HTTP front would answer 504 Gateway Timeout here
		return fmt.Errorf("no answer in time: %w", reqCtx.Err())
	}
	fmt.Fprintln(out, "main: Done, machine is", mach.String())
	fmt.Fprintln(out, "main: stopping")
	return nil
}
