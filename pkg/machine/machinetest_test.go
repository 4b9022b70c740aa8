package machine_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	am "github.com/arpc-go/arpc/pkg/machine"
	"github.com/arpc-go/arpc/pkg/machine/machinetest"
)

// TestMachinetest runs the shared read-and-wait suite against the local
// engine; the RPC layer runs the same suite against its remote mirror.
func TestMachinetest(t *testing.T) {
	machinetest.Run(t, func(t *testing.T, s am.Struct, names am.S) am.Api {
		m := am.New(context.Background(), s, nil)
		require.NoError(t, m.VerifyStates(names))
		t.Cleanup(func() {
			m.Dispose()
			select {
			case <-m.WhenDisposed():
			case <-time.After(deadline):
				t.Error("cleanup: WhenDisposed not closed")
			}
		})
		return m
	})
}
