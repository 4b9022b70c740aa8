package main

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// syncBuffer is a bytes.Buffer safe for the server's and client's writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestQuickstart runs the demo and checks every step it prints.
func TestQuickstart(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out syncBuffer
	if err := run(ctx, &out); err != nil {
		t.Fatalf("run: %v\noutput:\n%s", err, out.String())
	}
	got := out.String()
	want := []string{
		"server: ready\n",
		"client: connected, mirror is ()[Requested:0 Working:0 Done:0 Exception:0]\n",
		"server: request 1 accepted, working\n",
		"client: Mutate(Add Requested) = executed\n",
		"server: request 1 done (result 499500)\n",
		"client: Done, mirror is (Requested:1 Done:1)\n",
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
