package exchange_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/arpc-go/arpc/pkg/exchange"
)

// A request fans out to three backends over a queue; their consumer answers
// by correlation id alone, from its own goroutine.
func Example() {
	ctrl, err := exchange.NewController(exchange.Options{})
	if err != nil {
		panic(err)
	}
	type message struct{ id, body string }
	queue := make(chan message, 3)

	// The backends: read the queue, answer through the controller.
	var consumers sync.WaitGroup
	consumers.Go(func() {
		for m := range queue {
			if err := ctrl.Respond(m.id, "ok "+m.body); err != nil {
				fmt.Println("respond:", err)
			}
		}
	})

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	x := ctrl.Begin(ctx)
	defer x.Cancel()
	for _, body := range []string{"stock", "payment", "shipping"} {
		id, err := x.Request(body) // register first, then send
		if err != nil {
			panic(err)
		}
		queue <- message{id, body}
	}
	calls, err := x.Wait(ctx)
	close(queue)
	consumers.Wait()

	fmt.Println("err:", err)
	for _, c := range calls {
		fmt.Println(c.Request, c.Outcome, c.Response)
	}
	fmt.Printf("%+v\n", ctrl.Stats())
	// Output:
	// err: <nil>
	// stock answered ok stock
	// payment answered ok payment
	// shipping answered ok shipping
	// {Open:0 Pending:0 Begun:1 Answered:3 Failed:0 Unanswered:0 Late:0 Tags:0 Evicted:0}
}

// A failed request fails the exchange at once; the requests still pending are
// tagged for rollback, and the answered ones are the caller's to compensate.
func ExampleController_Fail() {
	ctrl, _ := exchange.NewController(exchange.Options{})
	x := ctrl.Begin(context.Background())
	stock, _ := x.Request("reserve 2 books")
	pay, _ := x.Request("charge 30 EUR")
	ship, _ := x.Request("book a courier")

	_ = ctrl.Respond(stock, "reserved")
	_ = ctrl.Fail(pay, errors.New("card declined"))

	calls, err := x.Wait(context.Background())
	fmt.Println(errors.Is(err, exchange.ErrFailed), err != nil)
	for _, c := range calls {
		fmt.Printf("%s: %s\n", c.Request, c.Outcome)
	}
	_, tagged := ctrl.Tag(ship)
	fmt.Println("courier request tagged for rollback:", tagged)
	// Output:
	// true true
	// reserve 2 books: answered
	// charge 30 EUR: failed
	// book a courier: unanswered
	// courier request tagged for rollback: true
}

// When the deadline passes first, Wait returns what it has; a response that
// arrives later is recognised as late, once, so its message can be
// acknowledged and its work compensated exactly once.
func ExampleController_Respond_late() {
	ctrl, _ := exchange.NewController(exchange.Options{TagLifespan: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	x := ctrl.Begin(ctx)
	id, _ := x.Request("book a courier")

	cancel() // the HTTP client gave up
	calls, err := x.Wait(context.Background())
	fmt.Println(calls[0].Outcome, errors.Is(err, exchange.ErrUnanswered), errors.Is(err, context.Canceled))

	// The courier service answers anyway; then its message is redelivered.
	for range 2 {
		err := ctrl.Respond(id, "courier booked")
		switch {
		case errors.Is(err, exchange.ErrDuplicateResponse):
			fmt.Println("redelivered: acknowledge only")
		case errors.Is(err, exchange.ErrRolledBack):
			tag, _ := ctrl.Tag(id)
			fmt.Printf("late: acknowledge, compensate %q\n", tag.Request)
		}
	}
	s := ctrl.Stats()
	fmt.Println("late responses:", s.Late, "live tags:", s.Tags)
	// Output:
	// unanswered true true
	// late: acknowledge, compensate "book a courier"
	// redelivered: acknowledge only
	// late responses: 2 live tags: 1
}

// Backends that bring their own correlation ids register them as they are.
func ExampleExchange_Register() {
	ctrl, _ := exchange.NewController(exchange.Options{})
	x := ctrl.Begin(context.Background())
	defer x.Cancel()
	fmt.Println(x.Register("webhook-81", "notify"))
	fmt.Println(errors.Is(x.Register("webhook-81", "again"), exchange.ErrDuplicateID))
	fmt.Println(ctrl.Respond("webhook-81", 204))
	calls, err := x.Wait(context.Background())
	fmt.Println(calls[0].Outcome, calls[0].Response, err)
	// Output:
	// <nil>
	// true
	// <nil>
	// answered 204 <nil>
}
