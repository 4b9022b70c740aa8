package rpc_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"testing"
	"time"

	am "github.com/arpc-go/arpc/pkg/machine"
	"github.com/arpc-go/arpc/pkg/rpc"
)

// Bounds of the child's own waits.
const (
	// fanoutDialTimeout bounds dialing all the mirrors.
	fanoutDialTimeout = 2 * time.Minute
	// fanoutObserveTimeout bounds how long each mirror may take to see one
	// transition.
	fanoutObserveTimeout = 30 * time.Second
	// fanoutDialers is how many mirrors dial at once.
	fanoutDialers = 64
)

// TestFanoutChild is the child process of BenchmarkFanout, which runs this
// test binary again with fanoutEnv set; otherwise it is skipped. It dials N
// idle mirrors of the benchmark's server (N connections would not fit in
// the benchmark process's file descriptors next to the server's N), says
// "ready", and then answers each "arm" on its stdin: it makes every mirror
// wait for Mark to reach the tick given, says "armed", and once all have
// seen it (or their deadline passed) says when each one did. It closes its
// mirrors and ends when its stdin closes, which is also what happens when
// the parent dies.
// fanoutChildProfileEnv names a file for the child's CPU profile.
const fanoutChildProfileEnv = "ARPC_FANOUT_CHILD_CPUPROFILE"

func TestFanoutChild(t *testing.T) {
	cfg := os.Getenv(fanoutEnv)
	if cfg == "" {
		t.Skip("the child process of BenchmarkFanout; runs only when the benchmark starts it")
	}
	addr, n, err := parseFanoutEnv(cfg)
	if err != nil {
		t.Fatal(err)
	}
	out := &fanoutOut{w: bufio.NewWriter(os.Stdout)}

	ctx, cancel := context.WithTimeout(context.Background(), fanoutDialTimeout)
	mirrors, err := dialMirrors(ctx, addr, n)
	cancel()
	defer closeMirrors(mirrors)
	if err != nil {
		out.fail(t, err)
	}
	out.send(t, fanoutMsg{Op: "ready", N: len(mirrors)})
	if path := os.Getenv(fanoutChildProfileEnv); path != "" {
		// the mirrors' side of the pushes, from the first one to the end
		stop, err := startLoopProfile(path)
		if err != nil {
			out.fail(t, err)
		}
		defer func() { _ = stop() }()
	}

	dec := json.NewDecoder(os.Stdin)
	for {
		var m fanoutMsg
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				return // the parent is done, or gone
			}
			out.fail(t, fmt.Errorf("reading a command: %w", err))
		}
		if m.Op != "arm" {
			out.fail(t, fmt.Errorf("unknown command %q", m.Op))
		}
		wait := armMirrors(mirrors, m.Tick)
		out.send(t, fanoutMsg{Op: "armed", ID: m.ID})
		out.send(t, fanoutMsg{Op: "seen", ID: m.ID, Seen: wait()})
	}
}

// fanoutOut writes the child's protocol lines.
type fanoutOut struct {
	w *bufio.Writer
}

func (o *fanoutOut) send(t *testing.T, m fanoutMsg) {
	t.Helper()
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = o.w.WriteString(fanoutPrefix)
	_, _ = o.w.Write(b)
	_ = o.w.WriteByte('\n')
	if err := o.w.Flush(); err != nil {
		t.Fatalf("writing to the parent: %v", err)
	}
}

// fail tells the parent what failed and fails the test.
func (o *fanoutOut) fail(t *testing.T, err error) {
	t.Helper()
	o.send(t, fanoutMsg{Op: "error", Err: err.Error()})
	t.Fatal(err)
}

// dialMirrors connects n clients to addr, fanoutDialers at a time. On error
// it returns the clients dialed so far with the first error.
func dialMirrors(ctx context.Context, addr string, n int) ([]*rpc.Client, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	mirrors := make([]*rpc.Client, n)
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(fanoutDialers, n) {
		wg.Go(func() {
			for i := range next {
				// no reconnecting: a mirror whose server went away just ends
				c, err := rpc.Dial(ctx, addr, fanoutStates, fanoutNames, rpc.WithReconnect(false, 0, 0))
				if err != nil {
					cancel(fmt.Errorf("dialing mirror %d: %w", i, err))
					continue
				}
				mirrors[i] = c
			}
		})
	}
feed:
	for i := range n {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	dialed := mirrors[:0]
	for _, c := range mirrors {
		if c != nil {
			dialed = append(dialed, c)
		}
	}
	if err := context.Cause(ctx); err != nil {
		return dialed, err
	}
	return dialed, nil
}

// closeMirrors closes the clients, fanoutDialers at a time.
func closeMirrors(mirrors []*rpc.Client) {
	next := make(chan *rpc.Client)
	var wg sync.WaitGroup
	for range min(fanoutDialers, len(mirrors)) {
		wg.Go(func() {
			for c := range next {
				_ = c.Close()
			}
		})
	}
	for _, c := range mirrors {
		next <- c
	}
	close(next)
	wg.Wait()
}

// armMirrors makes every mirror wait for Mark to reach tick, and returns the
// function that waits for them: it returns when each one saw it (Unix ns, 0
// for a mirror that did not within fanoutObserveTimeout).
func armMirrors(mirrors []*rpc.Client, tick uint64) func() []int64 {
	ctx, cancel := context.WithTimeout(context.Background(), fanoutObserveTimeout)
	states, times := am.S{"Mark"}, am.Time{tick}
	seen := make([]int64, len(mirrors))
	var wg sync.WaitGroup
	for i, c := range mirrors {
		// registered before "armed" is sent, so no transition is missed
		ch := c.Worker.WhenTime(states, times, ctx)
		wg.Go(func() {
			select {
			case <-ch:
				now := time.Now().UnixNano()
				// the channel also closes when ctx ends or the worker is disposed
				if c.Worker.Tick("Mark") >= tick {
					seen[i] = now
				}
			case <-ctx.Done():
			}
		})
	}
	return func() []int64 {
		defer cancel()
		wg.Wait()
		return seen
	}
}
