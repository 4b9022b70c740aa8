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

// The two machines the process waits on, each behind its own server.
var (
	payments      = am.Struct{"Paid": {}}
	paymentsNames = am.S{"Paid", am.Exception}
	warehouse     = am.Struct{"Packed": {}}
	warehouseName = am.S{"Packed", am.Exception}
)

func main() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := run(ctx, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "select:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, out io.Writer) error {
	if err := waitOnTwo(ctx, out); err != nil {
		return err
	}
	start := time.Now()
	st, err := takeJobs(ctx, jobCount, consumers)
	if err != nil {
		return err
	}
	st.print(out, time.Since(start))
	return st.check()
}

// serve exposes a new machine of schema s on a loopback port; stop shuts
// the server down and disposes the machine.
func serve(ctx context.Context, id string, s am.Struct, names am.S, handlers any,
	opts ...rpc.ServerOption,
) (src *am.Machine, srv *rpc.Server, stop func(), err error) {
	src = am.New(ctx, s, &am.Opts{ID: id})
	stopSrc := func() {
		src.Dispose()
		<-src.WhenDisposed()
	}
	if err = src.VerifyStates(names); err == nil && handlers != nil {
		err = src.BindHandlers(handlers)
	}
	if err == nil {
		srv, err = rpc.Listen(ctx, "127.0.0.1:0", src, opts...)
	}
	if err != nil {
		stopSrc()
		return nil, nil, nil, err
	}
	return src, srv, func() {
		sctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
		_ = srv.Close()
		stopSrc()
	}, nil
}

// waitOnTwo waits on a state of each of two remote machines and a timer,
// twice: first nothing comes and the timer wins, then the warehouse packs
// the order.
func waitOnTwo(ctx context.Context, out io.Writer) error {
	_, paySrv, stopPay, err := serve(ctx, "payments", payments, paymentsNames, nil)
	if err != nil {
		return err
	}
	defer stopPay()
	whSrc, whSrv, stopWh, err := serve(ctx, "warehouse", warehouse, warehouseName, nil)
	if err != nil {
		return err
	}
	defer stopWh()
	pay, err := rpc.Dial(ctx, paySrv.Addr, payments, paymentsNames)
	if err != nil {
		return err
	}
	defer pay.Close()
	wh, err := rpc.Dial(ctx, whSrv.Addr, warehouse, warehouseName)
	if err != nil {
		return err
	}
	defer wh.Close()

	// the cases, built at run time over two mirrors
	cases := []am.SelectCase{
		am.OnActive(pay.Worker, "Paid"),
		am.OnActive(wh.Worker, "Packed"),
		am.Timer(50 * time.Millisecond),
	}
	what := []string{"payments: Paid", "warehouse: Packed", "timer: nothing within 50ms"}
	sel, err := am.Select(ctx, cases...)
	if err != nil {
		return err
	}
	fmt.Fprintln(out, "wait 1:", what[sel.Index])

	// the warehouse packs, on its own goroutine, while we wait
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() { whSrc.Add1("Packed", nil) })
	cases[2] = am.Timer(5 * time.Second)
	sel, err = am.Select(ctx, cases...)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "wait 2: %s (tick %d)\n", what[sel.Index], sel.Clock["Packed"])
	return nil
}
