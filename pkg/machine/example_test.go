package machine_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	am "github.com/arpc-go/arpc/pkg/machine"
)

// Build a machine, mutate it and check its states.
func ExampleNew() {
	m := am.New(context.Background(), am.Struct{
		"Ready": {},
		"Busy":  {},
	}, nil)
	defer func() { m.Dispose(); <-m.WhenDisposed() }()

	fmt.Println(m.Add1("Ready", nil))
	fmt.Println(m.Is1("Ready"), m.Is1("Busy"))
	fmt.Println(m.Add(am.S{"Busy"}, nil), m.ActiveStates())
	fmt.Println(m.Remove1("Ready", nil), m.Is(am.S{"Ready", "Busy"}))
	// Output:
	// executed
	// true false
	// executed [Busy Ready]
	// executed false
}

// Relations decide what a mutation really does.
func ExampleState_relations() {
	m := am.New(context.Background(), am.Struct{
		"Connected":  {Add: am.S{"Online"}, Remove: am.S{"Offline"}},
		"Online":     {Require: am.S{"Connected"}},
		"Offline":    {Remove: am.S{"Connected"}},
		"Processing": {Require: am.S{"Online"}},
	}, nil)
	defer func() { m.Dispose(); <-m.WhenDisposed() }()

	fmt.Println(m.Add1("Processing", nil), m.Is1("Processing")) // requires Online
	fmt.Println(m.Add1("Connected", nil), m.Is(am.S{"Connected", "Online"}))
	fmt.Println(m.Add1("Processing", nil))
	fmt.Println(m.Add1("Offline", nil), m.Not(am.S{"Connected", "Online", "Processing"}))
	// Output:
	// canceled false
	// executed true
	// executed
	// executed true
}

// greeter is a handler struct: methods named after states run on their
// transitions.
type greeter struct{}

// NameEnter runs before Name activates; false cancels the transition.
func (g *greeter) NameEnter(e *am.Event) bool {
	name, ok := e.Args["name"].(string)
	return ok && name != ""
}

// NameState runs after Name activated.
func (g *greeter) NameState(e *am.Event) {
	fmt.Println("hello,", e.Args["name"])
}

// Handlers are methods of a struct, bound by name.
func ExampleMachine_BindHandlers() {
	m := am.New(context.Background(), am.Struct{"Name": {}}, nil)
	defer func() { m.Dispose(); <-m.WhenDisposed() }()
	if err := m.BindHandlers(&greeter{}); err != nil {
		fmt.Println(err)
		return
	}

	fmt.Println(m.Add1("Name", am.A{"name": ""}))
	fmt.Println(m.Add1("Name", am.A{"name": "gopher"}))
	// Output:
	// canceled
	// hello, gopher
	// executed
}

// When returns a channel closed once the states are active; a context bounds
// the wait.
func ExampleMachine_When() {
	m := am.New(context.Background(), am.Struct{"Downloaded": {}, "Parsed": {}}, nil)
	defer func() { m.Dispose(); <-m.WhenDisposed() }()

	ready := m.When(am.S{"Downloaded", "Parsed"}, nil)
	done := make(chan struct{})
	go func() {
		defer close(done)
		m.Add1("Downloaded", nil)
		m.Add1("Parsed", nil)
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	select {
	case <-ready:
		fmt.Println("ready")
	case <-ctx.Done():
		fmt.Println("timeout")
	}
	<-done

	// A wait whose context ends is released without a match.
	ctx2, cancel2 := context.WithCancel(context.Background())
	never := m.When1("Missing", ctx2)
	cancel2()
	<-never
	fmt.Println("released by ctx:", m.Is1("Missing"))
	// Output:
	// ready
	// released by ctx: false
}

// Every activation and deactivation ticks a state's clock: odd means active.
func ExampleMachine_Clock() {
	m := am.New(context.Background(), am.Struct{"A": {}, "B": {Multi: true}}, nil)
	defer func() { m.Dispose(); <-m.WhenDisposed() }()
	if err := m.VerifyStates(am.S{"A", "B", am.Exception}); err != nil {
		fmt.Println(err)
		return
	}

	before := m.Time(nil)
	m.Add(am.S{"A", "B"}, nil)
	m.Add1("B", nil) // Multi: re-entered, +2
	m.Remove1("A", nil)
	fmt.Println(m.Time(nil), m.Tick("B"))
	fmt.Println(m.Clock(am.S{"A", "B"}))
	fmt.Println(am.IsTimeAfter(m.Time(nil), before), m.IsClock(m.Clock(nil)))
	fmt.Println(m.StringAll())
	// Output:
	// [2 3 0] 3
	// map[A:2 B:3]
	// true true
	// (B:3)[A:2 Exception:0]
}

// Errors are states too: AddErr activates Exception and keeps the error.
func ExampleMachine_AddErr() {
	m := am.New(context.Background(), am.Struct{
		"ErrNetwork": {Require: am.S{am.Exception}},
	}, nil)
	defer func() { m.Dispose(); <-m.WhenDisposed() }()

	errTimeout := errors.New("dial timeout")
	m.AddErrState("ErrNetwork", errTimeout, nil)
	fmt.Println(m.IsErr(), m.Is1("ErrNetwork"), errors.Is(m.Err(), errTimeout))
	fmt.Println(m.Err())

	// Removing Exception drops the error state that requires it.
	m.Remove1(am.Exception, nil)
	fmt.Println(m.IsErr(), m.Is1("ErrNetwork"))
	// Output:
	// true true true
	// dial timeout
	// false false
}

// A mirror of a remote machine keeps a Model and feeds it the clock diffs
// it receives; reads and waits are then answered locally.
func ExampleNewModel() {
	s := am.Struct{"Ready": {}, "Busy": {Multi: true}}
	names := am.S{"Busy", "Ready", am.Exception}
	md, w, err := am.NewModel(context.Background(), s, names)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer w.Close()

	// the handshake's full clock
	_ = w.SetTime(am.Time{0, 1, 0})
	busy := md.When1("Busy", nil)

	// one diff: Busy activated, then deactivated, before the next update
	w.Apply([]am.TickDelta{{Index: md.Index("Busy"), Delta: 2}})
	<-busy
	fmt.Println(md.StringAll())
	fmt.Println(md.Is1("Busy"), md.Tick("Busy"))
	// Output:
	// (Ready:1)[Busy:2 Exception:0]
	// false 2
}

// Wait for a state with a deadline, and know whether it was reached: a
// When channel alone also closes when its context ends.
func ExampleWaitFor() {
	m := am.New(context.Background(), am.Struct{"Started": {}, "Done": {}}, nil)
	defer func() { m.Dispose(); <-m.WhenDisposed() }()

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	// nothing activates Done: the deadline is reported, not a success
	fmt.Println(am.WaitFor(ctx, m, "Done"))

	go m.Add1("Started", nil)
	fmt.Println(am.WaitFor(context.Background(), m, "Started"))
	// Output:
	// context deadline exceeded
	// <nil>
}
