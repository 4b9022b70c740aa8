package rpc_test

import (
	"context"
	"fmt"
	"time"

	am "github.com/arpc-go/arpc/pkg/machine"
	"github.com/arpc-go/arpc/pkg/rpc"
)

// backend answers every Requested with Done, carrying the request's
// correlation ID and the result; a negative n is never answered.
type backend struct {
	unanswered chan string
}

func (b *backend) RequestedState(e *am.Event) {
	id := rpc.CorrelationID(e.Args)
	n, _ := e.Args["n"].(int)
	if n < 0 {
		b.unanswered <- id
		return
	}
	e.Machine.Add1("Done", rpc.Correlated(id, am.A{"result": 2 * n}))
}

var (
	backendSchema = am.Struct{"Requested": {Multi: true}, "Done": {Multi: true}}
	backendNames  = am.S{"Requested", "Done", am.Exception}
)

// Request/response over a served machine: one call returns the answer's
// arguments, or the deadline's error; a late answer to a request whose
// caller gave up is recognised on the server.
func ExampleWorker_Request() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	b := &backend{unanswered: make(chan string, 1)}
	source := am.New(ctx, backendSchema, &am.Opts{ID: "backend"})
	_ = source.VerifyStates(backendNames)
	_ = source.BindHandlers(b)
	late := make(chan string, 1)
	srv, _ := rpc.Listen(ctx, "127.0.0.1:0", source,
		rpc.WithLateAnswer(func(id string, args am.A) { late <- fmt.Sprint("late answer: ", args["result"]) }))
	c, _ := rpc.Dial(ctx, srv.Addr, backendSchema, backendNames)

	// answered in the handler: one round trip
	res, err := c.Worker.Request(ctx, "Requested", am.A{"n": 21}, "Done")
	fmt.Println(res["result"], err)

	// never answered in time: the deadline, never a success
	short, cancelShort := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancelShort()
	_, err = c.Worker.Request(short, "Requested", am.A{"n": -1}, "Done")
	fmt.Println(err)

	// the backend answers anyway, later: the server recognises the answer
	// that reached no one, so it can be compensated
	id := <-b.unanswered
	source.Add1("Done", rpc.Correlated(id, am.A{"result": 0}))
	fmt.Println(<-late, srv.Abandoned(id))

	_ = c.Close()
	_ = srv.Close()
	source.Dispose()
	<-source.WhenDisposed()
	// Output:
	// 42 <nil>
	// context deadline exceeded
	// late answer: 0 true
}

// The same call on a local machine: code and tests can target either.
func ExampleRequest() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	source := am.New(ctx, backendSchema, &am.Opts{ID: "local"})
	_ = source.BindHandlers(&backend{unanswered: make(chan string, 1)})

	var api am.Api = source // or a client's Worker
	res, err := rpc.Request(ctx, api, "Requested", am.A{"n": 4}, "Done")
	fmt.Println(res["result"], err)

	source.Dispose()
	<-source.WhenDisposed()
	// Output:
	// 8 <nil>
}
