package arpcnats_test

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	am "github.com/arpc-go/arpc/pkg/machine"
	"github.com/arpc-go/arpc/pkg/machine/machinetest"
)

var suiteSeq atomic.Uint64

// TestMirrorBehaviour runs the engine's read-and-wait suite against a
// Mirror over NATS: every read and wait of am.Api behaves on the mirror as
// on the machine. One embedded server; each scenario serves its own machine
// id.
func TestMirrorBehaviour(t *testing.T) {
	e := startNATS(t)
	nc := connect(t, e.ClientURL())
	skip := machinetest.Skip("a mirror's unknown state doesn't add Exception to the shared source",
		"Unknown/MutationsAreCanceled")
	build := func(t *testing.T, s am.Struct, names am.S, h any, timeout time.Duration) am.Api {
		source := newSource(t, s, names)
		if h != nil {
			source.HandlerTimeout = timeout
			if err := source.BindHandlers(h); err != nil {
				t.Fatal(err)
			}
		}
		id := fmt.Sprintf("suite%d", suiteSeq.Add(1))
		serve(t, nc, source, id)
		return mirror(t, nc, id, s, names)
	}
	machinetest.Run(t, func(t *testing.T, s am.Struct, names am.S) am.Api {
		return build(t, s, names, nil, 0)
	}, skip, machinetest.WithHandlers(build))
}
