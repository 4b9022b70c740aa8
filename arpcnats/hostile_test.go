package arpcnats_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/arpc-go/arpc/arpcnats"
	am "github.com/arpc-go/arpc/pkg/machine"
)

// One client's large requests can't stop the leader from persisting: the
// outcomes they leave would make a state document past NATS's maximum
// payload, and every later write would fail. The other clients'
// acknowledged mutations are still persisted, and Err says what was
// dropped to make the state fit.
func TestHostileOutcomesDontStallPersistence(t *testing.T) {
	e := startNATS(t)
	nc := connect(t, e.ClientURL())
	ctx := ctxT(t, 20*time.Second)
	srv := serve(t, nc, newSource(t, schema, names), "hostile", arpcnats.WithAckPersisted(true),
		arpcnats.WithDedupSize(4096))
	m := mirror(t, nc, "hostile", schema, names, arpcnats.WithAttemptTimeout(5*time.Second))

	// requests naming huge unknown states: their outcomes keep the name
	huge := strings.Repeat("x", 60<<10)
	for i := 0; i < 40; i++ {
		req := fmt.Sprintf(`{"id":"evil.%d","t":0,"s":[%q]}`, i, huge)
		resp, err := nc.RequestWithContext(ctx, "arpc.hostile.mut", []byte(req))
		if err != nil {
			t.Fatalf("hostile request %d: %v", i, err)
		}
		if len(resp.Data) < 3 || resp.Data[2] == 0 {
			t.Fatalf("hostile request %d: reply %.40q", i, resp.Data)
		}
	}
	if _, err := m.Mutate(ctx, am.MutationAdd, am.S{"A"}, nil); err != nil {
		t.Fatalf("a mutation after the huge states: %v", err)
	}

	// the longest request ids, of characters JSON escapes six-fold: 2,000
	// outcomes of ~760 bytes each don't fit in one 1 MiB message
	pad := strings.Repeat("\x01", 120)
	for i := 0; i < 2000; i++ {
		body, _ := json.Marshal(map[string]any{"id": fmt.Sprintf("%s%04d", pad, i), "t": 0, "s": []string{"Count"}})
		if err := nc.Publish("arpc.hostile.mutns", body); err != nil {
			t.Fatal(err)
		}
	}
	// the mirror shows them once they are persisted (the first Add of the
	// Multi state Count activates it, each later one re-enters it: +2)
	waitFor(t, m.WhenTicksEq("Count", 2*2000-1, ctx), "the 2,000 mutations to be persisted")
	if _, err := m.Mutate(ctx, am.MutationAdd, am.S{"B"}, nil); err != nil {
		t.Fatalf("a mutation after the long ids: %v", err)
	}
	if !errors.Is(srv.Err(), arpcnats.ErrTooLarge) {
		t.Fatalf("Err %v, want ErrTooLarge", srv.Err())
	}
}
