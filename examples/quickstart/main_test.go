package main

import (
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/arpc-go/arpc/internal/exampletest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestQuickstart runs the demo and checks every step it prints.
func TestQuickstart(t *testing.T) {
	got := exampletest.Run(t, run)
	want := []string{
		"server: ready\n",
		"client: connected, mirror is ()[Requested:0 Done:0 Exception:0]\n",
		"server: order 1 accepted, working\n",
		"server: order 1 done (result 499500)\n",
		"client: order 1 answered, result 499500\n",
		"client: mirror is (Requested:1 Done:1)\n",
		"client: stopping\n",
	}
	last := -1
	for _, line := range want {
		i := strings.Index(got, line)
		if i < 0 {
			t.Fatalf("missing %q in output:\n%s", line, got)
		}
		if strings.HasPrefix(line, "client:") {
			if i < last {
				t.Fatalf("%q out of order in output:\n%s", line, got)
			}
			last = i
		}
	}
}
