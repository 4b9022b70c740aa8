package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	am "github.com/arpc-go/arpc/pkg/machine"
	"github.com/arpc-go/arpc/pkg/rpc"
)

// The order desk.
var (
	states = am.Struct{
		"Open":      {Remove: am.S{"Closed"}},
		"Closed":    {Remove: am.S{"Open"}},
		"Requested": {Multi: true, Require: am.S{"Open"}},
		"Working":   {Require: am.S{"Open"}, Remove: am.S{"Idle"}},
		"Idle":      {Auto: true, Require: am.S{"Open"}, Remove: am.S{"Working"}},
		"Done":      {Multi: true, After: am.S{"Working"}},
	}
	names = am.S{"Open", "Closed", "Requested", "Working", "Idle", "Done", am.Exception}
)

// workTime is how long an order takes.
const workTime = 300 * time.Millisecond

// desk handles orders: each one works for workTime, then answers.
type desk struct {
	ctx context.Context
	out io.Writer
	// jobs owns the work goroutines, so run can wait for them
	jobs sync.WaitGroup
}

// RequestedState starts working on the order and answers it when done.
func (d *desk) RequestedState(e *am.Event) {
	id := rpc.CorrelationID(e.Args)
	order := e.Args["order"]
	e.Machine.Add1("Working", nil)
	d.jobs.Add(1)
	go func() {
		defer d.jobs.Done()
		t := time.NewTimer(workTime)
		defer t.Stop()
		select {
		case <-t.C:
		case <-d.ctx.Done():
			return
		}
		fmt.Fprintf(d.out, "order %v done\n", order)
		e.Machine.Add1("Done", rpc.Correlated(id, am.A{"order": order, "result": "shipped"}))
		e.Machine.Remove1("Working", nil)
	}()
}

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "address to serve the desk on")
	token := flag.String("token", "", "if set, clients must send this token (arpc --token)")
	flag.Parse()
	var opts []rpc.ServerOption
	if *token != "" {
		opts = append(opts, rpc.WithAuthenticator(rpc.TokenAuthenticator(map[string]string{*token: "operator"})))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *addr, os.Stdout, opts...); err != nil {
		fmt.Fprintln(os.Stderr, "orders:", err)
		os.Exit(1)
	}
}

// run serves the desk on addr until ctx ends.
func run(ctx context.Context, addr string, out io.Writer, opts ...rpc.ServerOption) error {
	mach := am.New(context.Background(), states, &am.Opts{ID: "orders"})
	defer func() {
		mach.Dispose()
		<-mach.WhenDisposed()
	}()
	d := &desk{ctx: ctx, out: out}
	if err := mach.VerifyStates(names); err != nil {
		return err
	}
	if err := mach.BindHandlers(d); err != nil {
		return err
	}
	mach.Add1("Open", nil)
	srv, err := rpc.Listen(ctx, addr, mach, opts...)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "orders: serving on %s (Ctrl-C to stop)\n", srv.Addr)
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = srv.Shutdown(sctx)
	_ = srv.Close()
	d.jobs.Wait()
	fmt.Fprintln(out, "orders: stopped")
	return nil
}
