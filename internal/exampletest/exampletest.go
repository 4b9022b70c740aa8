// Package exampletest runs the runnable examples under test: each example's
// main calls run(ctx, out), and its test calls Run to get what it printed.
package exampletest

import (
	"bytes"
	"context"
	"io"
	"sync"
	"testing"
	"time"
)

// Timeout bounds one run of an example.
const Timeout = 20 * time.Second

// Buffer is a bytes.Buffer safe for the concurrent writes of an example's
// server and client goroutines.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (s *Buffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns what was written so far.
func (s *Buffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Run runs an example's run function as its main does, bounded by Timeout,
// and returns what it printed; an error fails the test with the output.
func Run(t testing.TB, run func(ctx context.Context, out io.Writer) error) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	var out Buffer
	if err := run(ctx, &out); err != nil {
		t.Fatalf("run: %v\noutput:\n%s", err, out.String())
	}
	return out.String()
}
