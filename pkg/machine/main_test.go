package machine_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the run if any goroutine outlives the tests: every
// goroutine a machine starts must be gone once WhenDisposed has closed.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
