package arpcnats_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/arpc-go/arpc/arpcnats"
	am "github.com/arpc-go/arpc/pkg/machine"
	"github.com/arpc-go/arpc/pkg/rpc"
)

var (
	reqSchema = am.Struct{"Requested": {Multi: true}, "Done": {Multi: true}}
	reqNames  = am.S{"Requested", "Done", am.Exception}
)

// squarer answers a request with n², or never when silent is set.
type squarer struct{}

func (squarer) RequestedState(e *am.Event) {
	args := e.Args
	if args["silent"] == true {
		return
	}
	n, _ := args["n"].(int)
	e.Machine.Add1("Done", rpc.Correlated(rpc.CorrelationID(args), am.A{"sq": n * n}))
}

// rpc.Request works on a Mirror: the leader adds the request and returns
// the correlated answer; an unanswered one ends with the caller's deadline.
func TestRequest(t *testing.T) {
	e := startNATS(t)
	nc := connect(t, e.ClientURL())
	src := newSource(t, reqSchema, reqNames)
	if err := src.BindHandlers(&squarer{}); err != nil {
		t.Fatal(err)
	}
	serve(t, nc, src, "sq")
	m := mirror(t, nc, "sq", reqSchema, reqNames)
	ctx := ctxT(t, 10*time.Second)
	ans, err := rpc.Request(ctx, m, "Requested", am.A{"n": 7}, "Done")
	if err != nil || ans["sq"] != 49 {
		t.Fatalf("answer %v, %v", ans, err)
	}
	if m.Tick("Done") == 0 {
		t.Fatal("the mirror doesn't show the answer's transition")
	}
	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	if _, err := rpc.Request(short, m, "Requested", am.A{"n": 8, "silent": true}, "Done"); err == nil {
		t.Fatal("an unanswered request returned no error")
	}
	if _, err := m.Request(ctx, "Nope", nil, "Done"); !errors.Is(err, am.ErrStateUnknown) {
		t.Fatalf("unknown state: %v", err)
	}
	none := mirror(t, nc, "nobody", reqSchema, reqNames)
	if _, err := none.Request(ctx, "Requested", nil, "Done"); !errors.Is(err, arpcnats.ErrNoServer) {
		t.Fatalf("no server: %v", err)
	}
}
