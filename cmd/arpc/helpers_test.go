package main

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	am "github.com/arpc-go/arpc/pkg/machine"
	"github.com/arpc-go/arpc/pkg/rpc"
	"github.com/arpc-go/arpc/pkg/rpc/rpctest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// deadline bounds every wait on a condition in these tests.
const deadline = 10 * time.Second

// The test machine: an order desk. Requested is answered by Done (a
// Request); Vetoed is always canceled by its handler; Ignored is never
// answered.
var (
	testSchema = am.Struct{
		"Start":     {Add: am.S{"Ready"}},
		"Ready":     {Require: am.S{"Start"}},
		"Requested": {Multi: true, Require: am.S{"Ready"}},
		"Done":      {Multi: true, After: am.S{"Requested"}},
		"Busy":      {Remove: am.S{"Idle"}},
		"Idle":      {Remove: am.S{"Busy"}},
		"Vetoed":    {},
		"Ignored":   {Multi: true},
		"Args":      {Multi: true},
	}
	testNames = am.S{"Start", "Ready", "Requested", "Done", "Busy", "Idle", "Vetoed", "Ignored", "Args", am.Exception}
)

// testHandlers run on the source: Requested answers at once, Vetoed
// refuses, Args records its arguments.
type testHandlers struct {
	mu   sync.Mutex
	args am.A
}

func (h *testHandlers) RequestedState(e *am.Event) {
	id := rpc.CorrelationID(e.Args)
	e.Machine.Add1("Done", rpc.Correlated(id, am.A{"result": 42, "by": "desk"}))
}

func (h *testHandlers) VetoedEnter(*am.Event) bool { return false }

func (h *testHandlers) ArgsState(e *am.Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.args = e.Args
}

func (h *testHandlers) lastArgs() am.A {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.args
}

// testServer serves a fresh test machine on loopback, with Start active;
// both are stopped at cleanup.
func testServer(t *testing.T, opts ...rpc.ServerOption) (*rpc.Server, *am.Machine, *testHandlers) {
	t.Helper()
	src := am.New(context.Background(), testSchema, &am.Opts{ID: "desk"})
	require.NoError(t, src.VerifyStates(testNames))
	h := &testHandlers{}
	require.NoError(t, src.BindHandlers(h))
	t.Cleanup(func() {
		src.Dispose()
		<-src.WhenDisposed()
	})
	require.Equal(t, am.Executed, src.Add1("Start", nil))
	srv := rpctest.NewServer(t, src, opts...)
	return srv, src, h
}

// syncBuffer is a bytes.Buffer safe for a command writing while the test
// reads.
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

// result is one finished run of arpc.
type result struct {
	code           int
	stdout, stderr string
}

// arpc runs the command line in-process, bounded by deadline.
func arpc(t *testing.T, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	var out, errb syncBuffer
	code := run(ctx, args, &out, &errb)
	require.NoError(t, ctx.Err(), "arpc %s did not end within %s", strings.Join(args, " "), deadline)
	return result{code: code, stdout: out.String(), stderr: errb.String()}
}

// running is an arpc command running in the background until stopped.
type running struct {
	out, errb syncBuffer
	cancel    context.CancelFunc
	done      chan int
}

// start runs the command line in the background; interrupt plays Ctrl-C.
func start(args ...string) *running {
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{cancel: cancel, done: make(chan int, 1)}
	go func() { r.done <- run(ctx, args, &r.out, &r.errb) }()
	return r
}

// interrupt cancels the command's context as Ctrl-C does and returns its
// exit status.
func (r *running) interrupt(t *testing.T) int {
	t.Helper()
	r.cancel()
	return r.wait(t)
}

// wait returns the command's exit status once it ends by itself.
func (r *running) wait(t *testing.T) int {
	t.Helper()
	select {
	case code := <-r.done:
		return code
	case <-time.After(deadline):
		t.Fatalf("command did not end within %s; stdout:\n%s\nstderr:\n%s", deadline, r.out.String(), r.errb.String())
		return -1
	}
}

// waitOutput waits until the command's stdout contains s.
func (r *running) waitOutput(t *testing.T, s string) {
	t.Helper()
	require.Eventually(t, func() bool { return strings.Contains(r.out.String(), s) }, deadline, 2*time.Millisecond,
		"waiting for %q; stdout:\n%s\nstderr:\n%s", s, r.out.String(), r.errb.String())
}
