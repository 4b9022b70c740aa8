package machinetest_test

import (
	"context"
	"testing"
	"time"

	"go.uber.org/goleak"

	am "github.com/arpc-go/arpc/pkg/machine"
	"github.com/arpc-go/arpc/pkg/machine/machinetest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// apiOnly hides the concrete *am.Machine, so the suite can only use am.Api.
type apiOnly struct{ am.Api }

// TestRunInterfaceOnly runs the suite against local machines seen only
// through am.Api (no type assertion back to *am.Machine is possible).
func TestRunInterfaceOnly(t *testing.T) {
	machinetest.Run(t, func(t *testing.T, s am.Struct, names am.S) am.Api {
		return newAPIOnly(t, s, names, nil, 0)
	}, machinetest.WithHandlers(newAPIOnly))
}

// newAPIOnly builds a verified machine with handlers (if any) and the given
// HandlerTimeout (0 keeps the default), seen only through am.Api.
func newAPIOnly(t *testing.T, s am.Struct, names am.S, handlers any, timeout time.Duration) am.Api {
	m := am.New(context.Background(), s, &am.Opts{HandlerTimeout: timeout})
	if err := m.VerifyStates(names); err != nil {
		t.Fatalf("VerifyStates(%v): %v", names, err)
	}
	if handlers != nil {
		if err := m.BindHandlers(handlers); err != nil {
			t.Fatalf("BindHandlers: %v", err)
		}
	}
	t.Cleanup(func() {
		m.Dispose()
		select {
		case <-m.WhenDisposed():
		case <-time.After(machinetest.Timeout):
			t.Error("WhenDisposed not closed in cleanup")
		}
	})
	return apiOnly{m}
}

// A target can opt out of scenarios it can't support yet; they are
// reported as skipped.
func TestRunSkip(t *testing.T) {
	machinetest.Run(t, func(t *testing.T, s am.Struct, names am.S) am.Api {
		return newAPIOnly(t, s, names, nil, 0)
	}, machinetest.WithHandlers(newAPIOnly),
		machinetest.Skip("not supported by this target", "Handlers/Timeout", "Basics/Scenario01_SetFromEmpty"))
}
