package benchgrpc

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"runtime/trace"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	am "github.com/arpc-go/arpc/pkg/machine"
	arpc "github.com/arpc-go/arpc/pkg/rpc"
	"github.com/arpc-go/arpc/pkg/rpc/rpctest"
)

// traceEnv turns TestCycleBreakdown on; its value is the number of cycles per case ("1" or "on":
// defaultBreakdownCycles). traceOnlyEnv, if set, runs only the cases whose names contain it.
const (
	traceEnv               = "ARPC_TRACE"
	traceOnlyEnv           = "ARPC_TRACE_ONLY"
	defaultBreakdownCycles = 30000
	// breakdownWarmUp cycles run before the counted ones (connection in its steady state).
	breakdownWarmUp = 500
	// sampleHz is the CPU profile rate during the traced pass (the default 100 Hz gives too few
	// samples per cycle to split a 70 µs cycle by component).
	sampleHz = 1000
)

// breakdownCase is one way to run the cycle.
type breakdownCase struct {
	name  string
	setup func(ctx context.Context) (*env, error)
}

var breakdownCases = []breakdownCase{
	{"tcp-echo", setupEcho},
	{"rpc-cycle", setupRPCCycle},
	{"arpc", func(ctx context.Context) (*env, error) { return setupArpc(ctx, 1, false) }},
	{"grpc-bidi", func(ctx context.Context) (*env, error) { return setupGRPC(true)(ctx, 1, false) }},
	{"arpc+proxy", func(ctx context.Context) (*env, error) { return setupArpc(ctx, 1, true) }},
	{"grpc-bidi+proxy", func(ctx context.Context) (*env, error) { return setupGRPC(true)(ctx, 1, true) }},
}

// TestCycleBreakdown tells where one remote cycle's time goes, for each transport in the same run.
// It is off unless ARPC_TRACE is set (it takes about a minute):
//
//	ARPC_TRACE=1 go test -run TestCycleBreakdown -v ./benchmark_grpc/
//	ARPC_TRACE=5000 ARPC_TRACE_ONLY=arpc go test -run TestCycleBreakdown -v ./benchmark_grpc/
//
// Each case runs twice with a fresh set-up. The plain pass measures wall and process CPU time per
// cycle (getrusage), read and write system calls per cycle (/proc/self/io) and OS context switches
// per cycle (/proc/self/task/*/status). The traced pass runs the same cycles under runtime/trace
// with CPU profiling at 1000 Hz, parses the trace and prints, per cycle: goroutine unblocks (by
// whom), starts, blocks (on what), system calls and running time per goroutine role, CPU by
// component, and the timeline of one cycle. Cases without "+proxy" dial the server directly;
// BenchmarkCycle goes through the metering proxy, as the "+proxy" cases do.
func TestCycleBreakdown(t *testing.T) {
	v := os.Getenv(traceEnv)
	if v == "" {
		t.Skipf("set %s=1 (or a number of cycles) to run", traceEnv)
	}
	cycles := defaultBreakdownCycles
	if n, err := strconv.Atoi(v); err == nil && n > 1 {
		cycles = n
	}
	if trace.IsEnabled() {
		t.Skip("an execution trace is already running (go test -trace)")
	}
	only := os.Getenv(traceOnlyEnv)
	var out strings.Builder
	for _, c := range breakdownCases {
		if only != "" && !strings.Contains(c.name, only) {
			continue
		}
		fmt.Fprintf(&out, "\n== %s: %d cycles, %d cores, %s\n", c.name, cycles, runtime.GOMAXPROCS(0), runtime.Version())
		plain := runPlain(t, c, cycles)
		fmt.Fprintf(&out, "plain:  %s\n", plain)
		ct := runTraced(t, c, cycles)
		ct.report(&out, cycles, sampleHz)
	}
	t.Log(out.String())
}

// TestCycleBreakdownSmoke checks the trace parser on a few TCP round trips, so that the breakdown
// keeps working; it takes well under a second.
func TestCycleBreakdownSmoke(t *testing.T) {
	if trace.IsEnabled() {
		t.Skip("an execution trace is already running (go test -trace)")
	}
	const cycles = 200
	ct := runTraced(t, breakdownCase{"tcp-echo", setupEcho}, cycles)
	var reads, writes, unblocks int
	for _, r := range ct.byRole() {
		reads += r.syscalls["read"]
		writes += r.syscalls["write"]
		unblocks += sum(r.unblocks)
	}
	// Each round trip writes one byte each way and reads it at the other end; the reader is
	// parked on the poller and woken for it.
	if writes < 2*cycles || reads < 2*cycles {
		t.Errorf("%d cycles: %d writes, %d reads; want at least %d of each", cycles, writes, reads, 2*cycles)
	}
	if unblocks < cycles {
		t.Errorf("%d cycles: %d unblocks; want at least %d", cycles, unblocks, cycles)
	}
	if len(ct.timeline) == 0 {
		t.Error("no timeline for the marked cycle")
	}
	var sb strings.Builder
	ct.report(&sb, cycles, sampleHz)
	if !strings.Contains(sb.String(), "client caller") {
		t.Errorf("report names no client caller:\n%s", sb.String())
	}
}

// plainResult is what runPlain measured, per cycle.
type plainResult struct {
	wall, cpu              time.Duration
	reads, writes, ctxSwch float64
}

func (r plainResult) String() string {
	return fmt.Sprintf("%.2f µs/cycle wall, %.2f µs/cycle CPU (user+sys, whole process), %.2f read + %.2f write syscalls/cycle, %.2f OS context switches/cycle",
		float64(r.wall.Nanoseconds())/1e3, float64(r.cpu.Nanoseconds())/1e3, r.reads, r.writes, r.ctxSwch)
}

// runPlain sets c up, runs cycles cycles untraced and returns the per-cycle figures.
func runPlain(t *testing.T, c breakdownCase, cycles int) plainResult {
	t.Helper()
	e, cl := breakdownSetup(t, c)
	defer closeEnv(t, e)
	ctx := context.Background()
	runtime.GC()
	io0, sw0, cpu0 := procIO(t), ctxSwitches(t), processCPU(t)
	start := time.Now()
	for i := range cycles {
		if err := cl.Cycle(ctx); err != nil {
			t.Fatalf("%s: cycle %d: %v", c.name, i, err)
		}
	}
	wall := time.Since(start)
	io1, sw1, cpu1 := procIO(t), ctxSwitches(t), processCPU(t)
	n := float64(cycles)
	return plainResult{
		wall:    wall / time.Duration(cycles),
		cpu:     (cpu1 - cpu0) / time.Duration(cycles),
		reads:   float64(io1.syscr-io0.syscr) / n,
		writes:  float64(io1.syscw-io0.syscw) / n,
		ctxSwch: float64(sw1-sw0) / n,
	}
}

// runTraced sets c up and runs cycles cycles under an execution trace with CPU profiling, and
// returns the parsed trace. Set-up is traced too (so goroutines are seen being created, which tells
// client from server), but only the cycles between the begin and end marks are counted.
func runTraced(t *testing.T, c breakdownCase, cycles int) *cycleTrace {
	t.Helper()
	var buf bytes.Buffer
	// runtime/pprof samples at 100 Hz: setting the rate first makes it sample faster (it prints
	// "cannot set cpu profile rate" as it keeps that rate), and its reader drains the samples so
	// that the next pass can start again. The trace gets a copy of every sample.
	runtime.SetCPUProfileRate(sampleHz)
	if err := pprof.StartCPUProfile(io.Discard); err != nil {
		runtime.SetCPUProfileRate(0)
		t.Fatalf("cpu profile: %v", err)
	}
	if err := trace.Start(&buf); err != nil {
		pprof.StopCPUProfile()
		t.Fatalf("trace: %v", err)
	}
	stopped := false
	stop := func() {
		if !stopped {
			trace.Stop()
			pprof.StopCPUProfile()
			stopped = true
		}
	}
	defer stop()
	e, cl := breakdownSetup(t, c)
	defer closeEnv(t, e)
	ctx := context.Background()
	cpu0 := processCPU(t)
	trace.Log(ctx, traceCategory, markBegin)
	for i := range cycles {
		if i == cycles/2 {
			trace.Log(ctx, traceCategory, markOneBegin)
		}
		if err := cl.Cycle(ctx); err != nil {
			t.Fatalf("%s: cycle %d: %v", c.name, i, err)
		}
		if i == cycles/2 {
			trace.Log(ctx, traceCategory, markOneEnd)
		}
	}
	trace.Log(ctx, traceCategory, markEnd)
	cpu := processCPU(t) - cpu0
	stop()
	if dir := os.Getenv("ARPC_TRACE_DIR"); dir != "" {
		name := filepath.Join(dir, c.name+".trace")
		if err := os.WriteFile(name, buf.Bytes(), 0o644); err != nil {
			t.Errorf("writing %s: %v", name, err)
		}
	}
	ct, err := parseCycleTrace(&buf)
	if err != nil {
		t.Fatalf("%s: parsing the trace: %v", c.name, err)
	}
	ct.cpu = cpu
	return ct
}

// breakdownSetup sets c up with one client and runs the warm-up cycles.
func breakdownSetup(t *testing.T, c breakdownCase) (*env, Client) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	e, err := c.setup(ctx)
	if err != nil {
		t.Fatalf("%s: set-up: %v", c.name, err)
	}
	cl := e.clients[0]
	for i := range breakdownWarmUp {
		if err := cl.Cycle(ctx); err != nil {
			closeEnv(t, e)
			t.Fatalf("%s: warm-up cycle %d: %v", c.name, i, err)
		}
	}
	return e, cl
}

// ioCounts are the read and write system calls of this process so far.
type ioCounts struct{ syscr, syscw uint64 }

// procIO reads syscr and syscw from /proc/self/io (Linux): read- and write-type system calls of all
// the process's threads.
func procIO(t *testing.T) ioCounts {
	t.Helper()
	var c ioCounts
	f, err := os.Open("/proc/self/io")
	if err != nil {
		t.Skipf("no /proc/self/io: %v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), ": ")
		n, _ := strconv.ParseUint(v, 10, 64)
		switch k {
		case "syscr":
			c.syscr = n
		case "syscw":
			c.syscw = n
		}
	}
	return c
}

// ctxSwitches sums the voluntary and involuntary context switches of the process's live threads.
func ctxSwitches(t *testing.T) uint64 {
	t.Helper()
	paths, err := filepath.Glob("/proc/self/task/*/status")
	if err != nil || len(paths) == 0 {
		t.Skipf("no /proc/self/task: %v", err)
	}
	var n uint64
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			continue // the thread exited
		}
		for line := range strings.SplitSeq(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.HasSuffix(k, "ctxt_switches") {
				x, _ := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
				n += x
			}
		}
	}
	return n
}

// processCPU returns the process's user plus system CPU time so far.
func processCPU(t *testing.T) time.Duration {
	t.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Skipf("getrusage: %v", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// setupEcho is the floor: a 1-byte echo over loopback TCP, a goroutine at each end, as
// pkg/rpc's BenchmarkTCPRoundTrip.
func setupEcho(_ context.Context) (*env, error) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		serveEcho(lis)
	}()
	conn, err := net.Dial("tcp", lis.Addr().String())
	if err != nil {
		_ = lis.Close()
		wg.Wait()
		return nil, err
	}
	e := &env{clients: []Client{&echoClient{conn: conn}}}
	e.onClose(func() error {
		err := errors.Join(conn.Close(), lis.Close())
		wg.Wait()
		return err
	})
	return e, nil
}

// serveEcho accepts one connection and echoes what it reads, one byte at a time, until it ends.
func serveEcho(lis net.Listener) {
	conn, err := lis.Accept()
	if err != nil {
		return
	}
	defer conn.Close()
	buf := make([]byte, 1)
	for {
		if _, err := io.ReadFull(conn, buf); err != nil {
			return
		}
		if _, err := conn.Write(buf); err != nil {
			return
		}
	}
}

// echoClient's cycle is one 1-byte round trip.
type echoClient struct {
	conn net.Conn
	buf  [1]byte
}

func (c *echoClient) Cycle(context.Context) error {
	if _, err := c.conn.Write(c.buf[:]); err != nil {
		return err
	}
	_, err := io.ReadFull(c.conn, c.buf[:])
	return err
}

func (c *echoClient) Close() error { return nil }

// setupRPCCycle serves the cycle machine with an aRPC Server and connects one Client directly, as
// pkg/rpc's BenchmarkCycle does (rpctest.NewPair).
func setupRPCCycle(ctx context.Context) (_ *env, err error) {
	e := &env{}
	defer func() {
		if err != nil {
			_ = e.close()
		}
	}()
	life := context.WithoutCancel(ctx)
	src := am.New(life, rpctest.CycleStates, &am.Opts{ID: "cycle"})
	e.onClose(func() error {
		src.Dispose()
		<-src.WhenDisposed()
		return nil
	})
	if err := src.VerifyStates(rpctest.CycleNames); err != nil {
		return nil, err
	}
	if err := src.BindHandlers(&rpctest.CycleHandlers{}); err != nil {
		return nil, err
	}
	src.Add1("Value1", nil)
	srv, err := arpc.NewServer(life, "127.0.0.1:0", src.ID, src, nil)
	if err != nil {
		return nil, err
	}
	srv.Start()
	e.onClose(func() error { srv.Stop(true); return nil })
	if err := am.WaitFor(ctx, srv.Mach, "RpcReady"); err != nil {
		return nil, err
	}
	cli, err := arpc.NewClient(life, srv.Addr, "client", rpctest.CycleStates, rpctest.CycleNames)
	if err != nil {
		return nil, err
	}
	cli.Start()
	e.onClose(func() error {
		sctx, cancel := context.WithTimeout(context.Background(), arpcStopTimeout)
		defer cancel()
		cli.Stop(sctx, true)
		return nil
	})
	if err := am.WaitFor(ctx, cli.Mach, "Ready"); err != nil {
		return nil, err
	}
	e.clients = []Client{&rpcCycleClient{w: cli.Worker}}
	return e, nil
}

// rpcCycleClient runs pkg/rpc's BenchmarkCycle loop body: read the value on the mirror, send the
// matching op, whose reply brings the next value.
type rpcCycleClient struct {
	w *arpc.Worker
}

func (c *rpcCycleClient) Cycle(context.Context) error {
	v := c.w.Switch("Value1", "Value2", "Value3")
	if res := c.w.Add1(rpctest.CycleOps[v], nil); res != am.Executed {
		return fmt.Errorf("Add1(%s) = %v: %v", rpctest.CycleOps[v], res, c.w.Err())
	}
	return nil
}

func (c *rpcCycleClient) Close() error { return nil }
