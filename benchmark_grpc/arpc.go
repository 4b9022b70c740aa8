package benchgrpc

import (
	"context"
	"errors"
	"fmt"
	"time"

	am "github.com/arpc-go/arpc/pkg/machine"
	arpc "github.com/arpc-go/arpc/pkg/rpc"
)

// Worker machine states.
const (
	StateStart  = "Start"
	StateCallOp = "CallOp"
	StateEvent  = "Event"
	StateValue1 = "Value1"
	StateValue2 = "Value2"
	StateValue3 = "Value3"
)

// WorkerStates is the schema of the worker state machine that aRPC serves: the value as three
// mutually exclusive states, the operation call and the notification as Multi states.
var WorkerStates = am.Struct{
	StateStart:   {},
	StateCallOp:  {Multi: true, Require: am.S{StateStart}},
	StateEvent:   {Multi: true, Require: am.S{StateStart}},
	StateValue1:  {Remove: am.S{StateValue2, StateValue3}},
	StateValue2:  {Remove: am.S{StateValue1, StateValue3}},
	StateValue3:  {Remove: am.S{StateValue1, StateValue2}},
	am.Exception: {Multi: true},
}

// WorkerStateNames is the ordered state list of WorkerStates, shared by server and client.
var WorkerStateNames = am.S{
	am.Exception, StateStart, StateCallOp, StateEvent, StateValue1, StateValue2, StateValue3,
}

// valueStates maps a value to its state; index 0 is unused.
var valueStates = [4]string{"", StateValue1, StateValue2, StateValue3}

// valueNames is the argument list of Switch, kept in a variable so the call does not allocate it.
var valueNames = []string{StateValue1, StateValue2, StateValue3}

// arpcStopTimeout bounds a client's Stop.
const arpcStopTimeout = 5 * time.Second

// workerHandlers binds a Worker to its state machine.
type workerHandlers struct {
	w *Worker
}

// StartState starts the Worker: its first value arrives through the listener as Event.
func (h *workerHandlers) StartState(*am.Event) { h.w.Start() }

// CallOpEnter accepts only an "Op" argument that is an int in 1..3.
func (h *workerHandlers) CallOpEnter(e *am.Event) bool {
	op, ok := e.Args["Op"].(int)
	return ok && op >= 1 && op <= 3
}

// CallOpState consumes the call and runs the operation; a mismatch raises Exception.
func (h *workerHandlers) CallOpState(e *am.Event) {
	e.Machine.Remove1(StateCallOp, nil)
	if !h.w.CallOp(e.Args["Op"].(int)) {
		e.Machine.AddErr(ErrMismatch, nil)
	}
}

// EventState consumes the notification and activates the new value's state.
func (h *workerHandlers) EventState(e *am.Event) {
	e.Machine.Remove1(StateEvent, nil)
	if v, ok := e.Args["Value"].(int); ok && v >= 1 && v <= 3 {
		e.Machine.Add1(valueStates[v], nil)
	}
}

// ArpcServer serves one Worker, wrapped in a state machine, over aRPC on an ephemeral loopback port.
// The machine is started before any client connects, so a client's handshake already carries the
// first value. Methods are safe for concurrent use; Close waits for the server's goroutines.
type ArpcServer struct {
	// Worker is the served workload; read its counters directly.
	Worker *Worker
	// Mach is the worker state machine.
	Mach *am.Machine

	srv *arpc.Server
}

// NewArpcServer builds the worker machine for NewWorker(seed), serves it on 127.0.0.1:0 and starts it.
// ctx bounds the set-up only: the machine and the server live until Close.
func NewArpcServer(ctx context.Context, seed uint64) (*ArpcServer, error) {
	w := NewWorker(seed)
	life := context.WithoutCancel(ctx)
	mach := am.New(life, WorkerStates, &am.Opts{ID: fmt.Sprintf("worker-%d", seed)})
	fail := func(err error) (*ArpcServer, error) {
		mach.Dispose()
		<-mach.WhenDisposed()
		return nil, fmt.Errorf("benchgrpc: arpc server: %w", err)
	}
	if err := mach.VerifyStates(WorkerStateNames); err != nil {
		return fail(err)
	}
	if err := mach.BindHandlers(&workerHandlers{w: w}); err != nil {
		return fail(err)
	}
	w.SetListener(func(v int) { mach.Add1(StateEvent, am.A{"Value": v}) })

	srv, err := arpc.NewServer(life, "127.0.0.1:0", fmt.Sprintf("worker-%d", seed), mach, nil)
	if err != nil {
		return fail(err)
	}
	s := &ArpcServer{Worker: w, Mach: mach, srv: srv}
	srv.Start()
	if err := am.WaitFor(ctx, srv.Mach, "RpcReady"); err != nil {
		_ = s.Close()
		return nil, fmt.Errorf("benchgrpc: arpc server not ready: %w", err)
	}
	if res := mach.Add1(StateStart, nil); res != am.Executed {
		_ = s.Close()
		return nil, fmt.Errorf("benchgrpc: arpc server: Start: %s", res)
	}
	return s, nil
}

// Addr returns the server's address, "127.0.0.1:port".
func (s *ArpcServer) Addr() string { return s.srv.Addr }

// Calls returns the calls and notifications the server originated.
func (s *ArpcServer) Calls() uint64 { return s.srv.CallCount() }

// Close stops the server, disposes the machine and waits for both.
func (s *ArpcServer) Close() error {
	s.srv.Stop(true)
	s.Mach.Dispose()
	<-s.Mach.WhenDisposed()
	return nil
}

// ArpcClient runs the cycle over aRPC: it reads the value from its local Worker mirror (no network),
// adds CallOp with the matching op (one call; the reply's clock diff carries the Event ticks and the
// new value), and waits locally for Event's tick to move by 2 (added and removed).
type ArpcClient struct {
	cli *arpc.Client
}

var _ Client = (*ArpcClient)(nil)

// NewArpcClient connects to an ArpcServer at addr and waits, bounded by ctx, until the mirror is
// ready and shows the worker's first value. ctx bounds the set-up only: the client lives until Close.
func NewArpcClient(ctx context.Context, addr, id string) (*ArpcClient, error) {
	cli, err := arpc.NewClient(context.WithoutCancel(ctx), addr, id, WorkerStates, WorkerStateNames)
	if err != nil {
		return nil, fmt.Errorf("benchgrpc: arpc client: %w", err)
	}
	c := &ArpcClient{cli: cli}
	cli.Start()
	// am.Wait, not a select on a When channel and ctx.Done(): a When
	// channel also closes when its ctx ends
	if err := am.WaitFor(ctx, cli.Mach, "Ready"); err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("benchgrpc: arpc client not ready: %w", err)
	}
	if err := am.Wait(ctx, cli.Worker, func(ctx context.Context) <-chan struct{} {
		return cli.Worker.WhenTicksEq(StateEvent, 2, ctx)
	}); err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("benchgrpc: arpc client: first value: %w", err)
	}
	return c, nil
}

// Cycle implements Client. ctx bounds the wait for the notification.
func (c *ArpcClient) Cycle(ctx context.Context) error {
	w := c.cli.Worker
	var op int
	switch w.Switch(valueNames...) {
	case StateValue1:
		op = 1
	case StateValue2:
		op = 2
	case StateValue3:
		op = 3
	default:
		return ErrNoNotification
	}
	tick := w.Tick(StateEvent)
	if res := w.Add1(StateCallOp, am.A{"Op": op}); res != am.Executed {
		return fmt.Errorf("benchgrpc: CallOp: %s (mirror's last error: %v)", res, w.Err())
	}
	if w.Is1(am.Exception) {
		return ErrMismatch
	}
	// the channel also closes when ctx ends: the tick tells which it was
	<-w.WhenTicksEq(StateEvent, tick+2, ctx)
	if w.Tick(StateEvent) >= tick+2 {
		return nil
	}
	return errors.Join(ErrNoNotification, ctx.Err())
}

// Calls returns the calls and notifications the client originated.
func (c *ArpcClient) Calls() uint64 { return c.cli.CallCount() }

// Close implements Client: it stops the client and waits (up to 5 s) for its goroutines.
func (c *ArpcClient) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), arpcStopTimeout)
	defer cancel()
	c.cli.Stop(ctx, true)
	return nil
}
