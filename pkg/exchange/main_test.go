package exchange

import (
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// newCtrl returns a controller with opts, failing the test on error.
func newCtrl(t testing.TB, opts Options) *Controller {
	t.Helper()
	c, err := NewController(opts)
	if err != nil {
		t.Fatalf("NewController: %v", err)
	}
	return c
}

// indexed returns the number of ids in the controller's shards.
func (c *Controller) indexed() int {
	n := 0
	for i := range c.shards {
		c.shards[i].mu.Lock()
		n += len(c.shards[i].m)
		c.shards[i].mu.Unlock()
	}
	return n
}

// checkIdle fails the test unless no exchange is open and no id is indexed.
func checkIdle(t testing.TB, c *Controller) {
	t.Helper()
	s := c.Stats()
	if s.Open != 0 || s.Pending != 0 {
		t.Errorf("Stats: Open %d, Pending %d; want 0, 0", s.Open, s.Pending)
	}
	if n := c.indexed(); n != 0 {
		t.Errorf("%d ids still indexed after every exchange ended", n)
	}
}
