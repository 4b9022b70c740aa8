package machine_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	am "github.com/arpc-go/arpc/pkg/machine"
	"github.com/arpc-go/arpc/pkg/machine/machinetest"
)

// TestMachinetest runs the shared behaviour suite, handler scenarios
// included, against the local engine; the RPC layer runs the same suite
// against its remote mirror.
func TestMachinetest(t *testing.T) {
	machinetest.Run(t, func(t *testing.T, s am.Struct, names am.S) am.Api {
		return newSuiteMachine(t, s, names, nil, 0)
	}, machinetest.WithHandlers(newSuiteMachine))
}

// newSuiteMachine builds a verified machine with handlers bound (if any)
// and the given HandlerTimeout (0 keeps the default), disposed at cleanup.
func newSuiteMachine(t *testing.T, s am.Struct, names am.S, handlers any, timeout time.Duration) am.Api {
	m := am.New(context.Background(), s, &am.Opts{HandlerTimeout: timeout})
	require.NoError(t, m.VerifyStates(names))
	if handlers != nil {
		require.NoError(t, m.BindHandlers(handlers))
	}
	t.Cleanup(func() {
		m.Dispose()
		select {
		case <-m.WhenDisposed():
		case <-time.After(deadline):
			t.Error("cleanup: WhenDisposed not closed")
		}
	})
	return m
}
