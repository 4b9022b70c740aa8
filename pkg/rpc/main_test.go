package rpc_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the run if any goroutine outlives the tests: every goroutine
// a Server, Client or Worker starts must be gone once Stop has returned (the
// white-box tests of package rpc run in the same binary, so this covers them).
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
