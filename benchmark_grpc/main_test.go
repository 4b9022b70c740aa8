package benchgrpc

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the run if any goroutine outlives the tests or benchmarks: every server, proxy and
// client must be stopped by its teardown.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
