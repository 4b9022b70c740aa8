package benchgrpc

import (
	"cmp"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/exp/trace"
)

// The trace marks that delimit what cycleTrace counts. The caller logs them with runtime/trace.Log
// under traceCategory: every event between markBegin and markEnd is counted, and the events between
// markOneBegin and markOneEnd (one cycle in the middle of the run) are also listed as a timeline.
const (
	traceCategory = "cycle"
	markBegin     = "begin"
	markEnd       = "end"
	markOneBegin  = "one-begin"
	markOneEnd    = "one-end"
)

// netpollUnblocker stands for "no goroutine": an unblock done by the scheduler itself, which is how
// a goroutine parked on a socket (or a timer) is made runnable again.
const netpollUnblocker = trace.NoGoroutine

// goStats is what one goroutine did inside the counted window.
type goStats struct {
	running  time.Duration // on a P, running Go code
	syscall  time.Duration // inside a system call
	starts   int           // runnable → running: each time it got a P
	unblocks map[trace.GoID]int
	blocks   map[string]int // reason → count
	stops    map[string]int // running → runnable (yield, preemption), reason → count
	syscalls map[string]int // read, write, other:<func>
	emptyRd  int            // reads followed at once by a park on the network poller (EAGAIN)
	samples  int            // CPU profile samples taken on this goroutine
	wakes    map[string]int // where this goroutine unblocked others: kind of wake-up and caller frames
	writes   map[string]int // where its write system calls came from
}

// goInfo is what the trace tells about one goroutine: where it started and who created it.
type goInfo struct {
	start     string // its start function (or the root frame of a stack seen for it)
	parent    trace.GoID
	creatorSt []string // the creator's stack at creation, leaf first
	stats     goStats

	// replay state
	state       trace.GoState
	since       trace.Time
	lastSyscall string
}

// timelineEvent is one line of the one-cycle timeline.
type timelineEvent struct {
	at   trace.Time
	g    trace.GoID
	what string
	by   trace.GoID // for unblocks
}

// cycleTrace is the result of parsing one trace: per-goroutine figures for the counted window, CPU
// samples by component, and the timeline of one cycle.
type cycleTrace struct {
	gs         map[trace.GoID]*goInfo
	caller     trace.GoID
	begin, end trace.Time
	procWakes  int            // P idle → running inside the window
	samples    int            // CPU samples inside the window
	components map[string]int // samples by component (see sampleComponent)
	engine     int            // samples with a pkg/machine frame anywhere in the stack
	timeline   []timelineEvent
	oneBegin   trace.Time
	oneEnd     trace.Time
	cpu        time.Duration // process CPU time (getrusage) over the window, set by the caller
}

// parseCycleTrace reads a whole execution trace and counts what happened between the begin and end
// marks.
func parseCycleTrace(r io.Reader) (*cycleTrace, error) {
	rd, err := trace.NewReader(r)
	if err != nil {
		return nil, err
	}
	ct := &cycleTrace{
		gs:         make(map[trace.GoID]*goInfo),
		caller:     trace.NoGoroutine,
		components: make(map[string]int),
	}
	var in, inOne, ended bool
	for {
		ev, err := rd.ReadEvent()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		now := ev.Time()
		switch ev.Kind() {
		case trace.EventLog:
			l := ev.Log()
			if l.Category != traceCategory {
				continue
			}
			switch l.Message {
			case markBegin:
				in, ct.begin, ct.caller = true, now, ev.Goroutine()
				// goroutines already running or in a system call start counting now
				for _, g := range ct.gs {
					g.since = now
				}
			case markEnd:
				ct.end = now
				for _, g := range ct.gs {
					g.account(now)
				}
				in, ended = false, true
			case markOneBegin:
				inOne, ct.oneBegin = true, now
			case markOneEnd:
				inOne, ct.oneEnd = false, now
			}
		case trace.EventStackSample:
			if !in {
				continue
			}
			ct.samples++
			comp, engine := sampleComponent(ev.Stack())
			ct.components[comp]++
			if engine {
				ct.engine++
			}
			if g := ev.Goroutine(); g != trace.NoGoroutine {
				ct.g(g).stats.samples++
			}
		case trace.EventStateTransition:
			st := ev.StateTransition()
			switch st.Resource.Kind {
			case trace.ResourceProc:
				if from, to := st.Proc(); in && from == trace.ProcIdle && to == trace.ProcRunning {
					ct.procWakes++
				}
			case trace.ResourceGoroutine:
				ct.goTransition(ev, st, now, in && !ended, inOne)
			}
		}
	}
	if ct.caller == trace.NoGoroutine || ct.end == 0 {
		return nil, fmt.Errorf("trace has no %q/%q marks", markBegin, markEnd)
	}
	return ct, nil
}

func (ct *cycleTrace) g(id trace.GoID) *goInfo {
	g := ct.gs[id]
	if g == nil {
		g = &goInfo{parent: trace.NoGoroutine}
		g.stats.unblocks = make(map[trace.GoID]int)
		g.stats.blocks = make(map[string]int)
		g.stats.stops = make(map[string]int)
		g.stats.syscalls = make(map[string]int)
		g.stats.wakes = make(map[string]int)
		g.stats.writes = make(map[string]int)
		ct.gs[id] = g
	}
	return g
}

// account adds the time since the last transition to the state the goroutine is leaving.
func (g *goInfo) account(now trace.Time) {
	d := now.Sub(g.since)
	switch g.state {
	case trace.GoRunning:
		g.stats.running += d
	case trace.GoSyscall:
		g.stats.syscall += d
	}
	g.since = now
}

func (ct *cycleTrace) goTransition(ev trace.Event, st trace.StateTransition, now trace.Time, in, inOne bool) {
	id := st.Resource.Goroutine()
	g := ct.g(id)
	from, to := st.Goroutine()
	if from == trace.GoNotExist && to != trace.GoNotExist {
		// creation: st.Stack is the new goroutine's start, ev.Stack() its creator's
		g.start = rootFunc(st.Stack)
		g.parent = ev.Goroutine()
		g.creatorSt = funcs(ev.Stack())
	} else if g.start == "" {
		g.start = rootFunc(st.Stack)
	}
	if in {
		g.account(now)
	} else {
		g.since = now
	}
	g.state = to
	by := ev.Goroutine()
	what := ""
	switch {
	case from == trace.GoRunnable && to == trace.GoRunning:
		what = "runs"
		if in {
			g.stats.starts++
		}
	case from == trace.GoWaiting && to == trace.GoRunnable:
		what = "unblocked"
		if in {
			g.stats.unblocks[by]++
			if by != trace.NoGoroutine {
				ct.g(by).stats.wakes[ct.roleLater(id)+" <- "+callSite(ev.Stack())]++
			}
		}
	case from == trace.GoRunning && to == trace.GoWaiting:
		what = "blocks: " + st.Reason
		if in {
			g.stats.blocks[st.Reason]++
			if st.Reason == "network" && g.lastSyscall == "read" {
				g.stats.emptyRd++
			}
		}
	case from == trace.GoRunning && to == trace.GoRunnable:
		what = "stops: " + st.Reason
		if in {
			g.stats.stops[st.Reason]++
		}
	case from == trace.GoRunning && to == trace.GoSyscall:
		k := syscallKind(st.Stack)
		what = "syscall " + k
		if in {
			g.stats.syscalls[k]++
			if k == "write" {
				g.stats.writes[callSite(st.Stack)]++
			}
		}
		g.lastSyscall = k
	case from == trace.GoSyscall && to == trace.GoRunning:
		what = "syscall returns"
	case from == trace.GoSyscall && to == trace.GoRunnable:
		what = "syscall returns, lost its P"
	}
	if from == trace.GoRunning && to != trace.GoSyscall && to != trace.GoWaiting {
		g.lastSyscall = ""
	}
	if to == trace.GoRunning && from != trace.GoSyscall {
		g.lastSyscall = ""
	}
	if inOne && what != "" {
		ct.timeline = append(ct.timeline, timelineEvent{at: now, g: id, what: what, by: by})
	}
}

// roleLater refers to a goroutine whose role is only known at the end of the trace.
func (ct *cycleTrace) roleLater(id trace.GoID) string { return fmt.Sprintf("\x00%d\x00", id) }

// resolveRoles replaces the references roleLater made with roles.
func (ct *cycleTrace) resolveRoles(s string) string {
	for {
		i := strings.IndexByte(s, 0)
		if i < 0 {
			return s
		}
		j := strings.IndexByte(s[i+1:], 0)
		if j < 0 {
			return s
		}
		id, _ := strconv.ParseInt(s[i+1:i+1+j], 10, 64)
		s = s[:i] + ct.role(trace.GoID(id)) + s[i+2+j:]
	}
}

// callSiteFrames is how many of our frames a call site shows.
const callSiteFrames = 3

// callSite names where a stack left the code of interest: the innermost frames outside the runtime,
// the standard library's plumbing and sync, shortened.
func callSite(s trace.Stack) string {
	var parts []string
	for f := range s.Frames() {
		fn := f.Func
		if strings.HasPrefix(fn, "runtime.") || strings.HasPrefix(fn, "internal/") ||
			strings.HasPrefix(fn, "syscall.") || strings.HasPrefix(fn, "sync.") ||
			strings.HasPrefix(fn, "net.") || strings.HasPrefix(fn, "context.") ||
			strings.HasPrefix(fn, "bufio.") || strings.HasPrefix(fn, "io.") {
			continue
		}
		parts = append(parts, fmt.Sprintf("%s:%d", shortFunc(fn), f.Line))
		if len(parts) == callSiteFrames {
			break
		}
	}
	return strings.Join(parts, " < ")
}

// funcs lists a stack's function names, leaf first.
func funcs(s trace.Stack) []string {
	var out []string
	for f := range s.Frames() {
		out = append(out, f.Func)
	}
	return out
}

// rootFunc is the outermost frame of a stack other than runtime.goexit: a goroutine's start function.
func rootFunc(s trace.Stack) string {
	root := ""
	for f := range s.Frames() {
		if f.Func != "runtime.goexit" {
			root = f.Func
		}
	}
	return root
}

// syscallKind names a system call by the frames that made it.
func syscallKind(s trace.Stack) string {
	first := ""
	for f := range s.Frames() {
		if first == "" {
			first = f.Func
		}
		switch {
		case strings.HasPrefix(f.Func, "syscall.write"), strings.HasPrefix(f.Func, "syscall.Write"),
			strings.HasSuffix(f.Func, "(*FD).Write"), strings.HasSuffix(f.Func, "(*FD).Writev"):
			return "write"
		case strings.HasPrefix(f.Func, "syscall.read"), strings.HasPrefix(f.Func, "syscall.Read"),
			strings.HasSuffix(f.Func, "(*FD).Read"):
			return "read"
		}
	}
	return "other:" + shortFunc(first)
}

// Component prefixes, matched against frame function names.
const (
	pkgMachine = "github.com/arpc-go/arpc/pkg/machine."
	pkgRPC     = "github.com/arpc-go/arpc/pkg/rpc."
	pkgRPC2    = "github.com/arpc-go/arpc/pkg/rpc2."
	pkgBench   = "github.com/arpc-go/arpc/benchmark_grpc."
)

// sampleComponent attributes one CPU sample: the innermost frame that belongs to a known component
// names it (so time in a system call or in the scheduler is counted there, whoever called it), and
// engine reports whether the engine (pkg/machine) is anywhere on the stack.
func sampleComponent(s trace.Stack) (comp string, engine bool) {
	for f := range s.Frames() {
		if strings.HasPrefix(f.Func, pkgMachine) {
			engine = true
		}
		if comp != "" {
			continue
		}
		fn := f.Func
		switch {
		case fn == pkgMachine+"drainsOnStack":
			comp = "engine: drainsOnStack stack walk"
		case strings.HasPrefix(fn, "runtime.traceback"), strings.HasPrefix(fn, "runtime.(*unwinder)"),
			strings.HasPrefix(fn, "runtime.(*inlineUnwinder)"), fn == "runtime.pcvalue", fn == "runtime.step",
			fn == "runtime.callers", fn == "runtime.Callers", strings.HasPrefix(fn, "runtime.callers."):
			// stack unwinding: counted where it was asked for (a walk of the engine, or a
			// profiler's own unwinding, which is trace overhead)
			continue
		case strings.HasPrefix(fn, "runtime.trace"), strings.HasPrefix(fn, "runtime.(*trace"),
			strings.HasPrefix(fn, "runtime.(*traceWriter"), strings.HasPrefix(fn, "runtime/trace."):
			comp = "trace overhead"
		case fn == "syscall.read" || fn == "syscall.Read":
			comp = "syscall read"
		case fn == "syscall.write" || fn == "syscall.Write":
			comp = "syscall write"
		case fn == "runtime.futex":
			comp = "futex (thread sleep/wake)"
		case fn == "runtime.netpoll" || fn == "runtime.epollwait" || strings.HasPrefix(fn, "internal/runtime/syscall.EpollWait"):
			comp = "epoll (netpoller)"
		case fn == "runtime.usleep" || fn == "runtime.osyield":
			comp = "spinning (usleep/osyield)"
		case strings.HasPrefix(fn, "runtime.gcBgMarkWorker"), strings.HasPrefix(fn, "runtime.gcDrain"),
			strings.HasPrefix(fn, "runtime.scanobject"), strings.HasPrefix(fn, "runtime.bgsweep"),
			strings.HasPrefix(fn, "runtime.markroot"):
			comp = "GC"
		case strings.HasPrefix(fn, "runtime.mallocgc"), strings.HasPrefix(fn, "runtime.newobject"),
			strings.HasPrefix(fn, "runtime.makeslice"), strings.HasPrefix(fn, "runtime.growslice"),
			strings.HasPrefix(fn, "runtime.makemap"), strings.HasPrefix(fn, "runtime.makechan"):
			comp = "allocation"
		case strings.HasPrefix(fn, "runtime.schedule"), strings.HasPrefix(fn, "runtime.findRunnable"),
			strings.HasPrefix(fn, "runtime.park_m"), strings.HasPrefix(fn, "runtime.goready"),
			strings.HasPrefix(fn, "runtime.ready"), strings.HasPrefix(fn, "runtime.wakep"),
			strings.HasPrefix(fn, "runtime.startm"), strings.HasPrefix(fn, "runtime.stopm"),
			strings.HasPrefix(fn, "runtime.gopark"), strings.HasPrefix(fn, "runtime.mcall"),
			strings.HasPrefix(fn, "runtime.execute"), strings.HasPrefix(fn, "runtime.goschedImpl"),
			strings.HasPrefix(fn, "runtime.stealWork"), strings.HasPrefix(fn, "runtime.runqgrab"),
			strings.HasPrefix(fn, "runtime.checkTimers"), strings.HasPrefix(fn, "runtime.entersyscall"),
			strings.HasPrefix(fn, "runtime.exitsyscall"), strings.HasPrefix(fn, "runtime.selectgo"),
			strings.HasPrefix(fn, "runtime.chansend"), strings.HasPrefix(fn, "runtime.chanrecv"),
			strings.HasPrefix(fn, "runtime.netpollblock"), strings.HasPrefix(fn, "runtime.casgstatus"):
			comp = "scheduler and channels"
		case strings.HasPrefix(fn, pkgMachine):
			comp = "engine (pkg/machine)"
		case strings.HasPrefix(fn, pkgRPC):
			comp = "aRPC (pkg/rpc)"
		case strings.HasPrefix(fn, pkgRPC2):
			comp = "rpc2 (pkg/rpc2)"
		case strings.HasPrefix(fn, "encoding/gob."):
			comp = "encoding/gob"
		case strings.HasPrefix(fn, "google.golang.org/grpc/internal/transport"),
			strings.HasPrefix(fn, "golang.org/x/net/http2"):
			comp = "gRPC HTTP/2 transport"
		case strings.HasPrefix(fn, "google.golang.org/grpc"):
			comp = "gRPC (other)"
		case strings.HasPrefix(fn, "google.golang.org/protobuf"):
			comp = "protobuf"
		case strings.HasPrefix(fn, "internal/poll."), strings.HasPrefix(fn, "net."):
			comp = "net, internal/poll"
		case strings.HasPrefix(fn, "sync."), strings.HasPrefix(fn, "internal/sync."),
			strings.HasPrefix(fn, "context."):
			comp = "sync, context"
		case strings.HasPrefix(fn, pkgBench):
			comp = "benchmark (workload, proxy)"
		}
	}
	if comp == "" {
		comp = "other runtime/std"
	}
	return comp, engine
}

// shortFunc drops a function name's import path.
func shortFunc(fn string) string {
	if i := strings.LastIndex(fn, "/"); i >= 0 {
		return fn[i+1:]
	}
	return fn
}

// Creation-stack patterns that tell which end of the connection a goroutine belongs to; the
// innermost match wins, a goroutine without one inherits its creator's side.
var sidePatterns = []struct{ substr, side string }{
	{"runtime/trace.Start", "tracer"},
	{"runtime/pprof.StartCPUProfile", "tracer"},
	{"(*Proxy)", "proxy"},
	{"benchmark_grpc.setupEcho", "server"},
	{"rpc.(*Server)", "server"},
	{"rpc2.(*Server)", "server"},
	{"NewArpcServer", "server"},
	{"grpc.(*Server)", "server"},
	{"NewGRPCServer", "server"},
	{"NewServerTransport", "server"},
	{"http2Server", "server"},
	{"rpc.(*Client)", "client"},
	{"rpc.NewClient", "client"},
	{"NewArpcClient", "client"},
	{"http2Client", "client"},
	{"newHTTP2Client", "client"},
	{"grpc.(*ClientConn)", "client"},
	{"grpc.(*addrConn)", "client"},
	{"DialGRPC", "client"},
}

// side tells which end a goroutine belongs to: client, server, proxy or "" (unknown: the runtime's,
// the test framework's).
func (ct *cycleTrace) side(id trace.GoID) string {
	if id == ct.caller {
		return "client"
	}
	if g := ct.gs[id]; g != nil && (strings.HasPrefix(g.start, "runtime/pprof.") || strings.HasPrefix(g.start, "runtime/trace.")) {
		return "tracer"
	}
	for depth := 0; depth < 64; depth++ {
		g := ct.gs[id]
		if g == nil {
			return ""
		}
		for _, fn := range g.creatorSt {
			for _, p := range sidePatterns {
				if strings.Contains(fn, p.substr) {
					return p.side
				}
			}
		}
		if g.parent == ct.caller && g.parent != trace.NoGoroutine {
			return "client"
		}
		if g.parent == trace.NoGoroutine {
			return ""
		}
		id = g.parent
	}
	return ""
}

// roleNames gives readable names to well-known goroutine start functions.
var roleNames = []struct{ substr, name string }{
	{"rpc2.(*Conn).readLoop", "read loop"},
	{"rpc2.(*Conn).writer", "writer goroutine"},
	{"rpc2.(*Conn).worker", "handler worker"},
	{"rpc2.(*Conn).orderedWorker", "ordered worker"},
	{"rpc2.(*Conn).timers", "timers"},
	{"rpc2.(*Conn).watch", "ctx watcher"},
	{"rpc.(*session).pusher", "session pusher"},
	{"(*http2Client).reader", "read loop (http2Client.reader)"},
	{"transport.NewHTTP2Client.func", "loopy writer"},
	{"transport.NewServerTransport.func", "loopy writer"},
	{"grpc.(*Server).handleRawConn.func", "read loop (handleRawConn)"},
	{"grpc.(*Server).serveStreams.func", "stream handler (serveStreams)"},
	{"benchmark_grpc.pump", "pump"},
	{"(*Proxy).relay.func", "pump (up)"},
	{"(*Proxy).relay", "relay, pump (down)"},
	{"(*Proxy).accept", "accept loop"},
	{"benchmark_grpc.setupEcho", "echo loop"},
	{"runtime.gcBgMarkWorker", "GC mark worker"},
	{"runtime.bgsweep", "GC sweeper"},
	{"runtime.bgscavenge", "GC scavenger"},
}

// role names a goroutine: its side and what it runs.
func (ct *cycleTrace) role(id trace.GoID) string {
	if id == netpollUnblocker {
		return "scheduler (netpoll, timers)"
	}
	if id == ct.caller {
		return "client caller"
	}
	g := ct.gs[id]
	name := "?"
	if g != nil && g.start != "" {
		name = shortFunc(g.start)
		for _, r := range roleNames {
			if strings.Contains(g.start, r.substr) {
				name = r.name
				break
			}
		}
	}
	if s := ct.side(id); s != "" {
		return s + " " + name
	}
	return name
}

// roleStats is goStats summed over the goroutines of one role.
type roleStats struct {
	role     string
	n        int // goroutines
	running  time.Duration
	syscall  time.Duration
	starts   int
	unblocks map[string]int // by unblocker role
	blocks   map[string]int
	stops    map[string]int
	syscalls map[string]int
	emptyRd  int
	samples  int
	wakes    map[string]int
	writes   map[string]int
}

// byRole sums the per-goroutine figures by role, busiest first, leaving out roles that did nothing
// in the window.
func (ct *cycleTrace) byRole() []*roleStats {
	m := make(map[string]*roleStats)
	for id, g := range ct.gs {
		s := g.stats
		if s.running == 0 && s.syscall == 0 && s.starts == 0 && len(s.unblocks) == 0 && s.samples == 0 {
			continue
		}
		name := ct.role(id)
		r := m[name]
		if r == nil {
			r = &roleStats{role: name, unblocks: map[string]int{}, blocks: map[string]int{},
				stops: map[string]int{}, syscalls: map[string]int{}, wakes: map[string]int{}, writes: map[string]int{}}
			m[name] = r
		}
		r.n++
		r.running += s.running
		r.syscall += s.syscall
		r.starts += s.starts
		r.emptyRd += s.emptyRd
		r.samples += s.samples
		for by, n := range s.unblocks {
			r.unblocks[ct.role(by)] += n
		}
		addAll(r.blocks, s.blocks)
		addAll(r.stops, s.stops)
		addAll(r.syscalls, s.syscalls)
		for k, v := range s.wakes {
			r.wakes[ct.resolveRoles(k)] += v
		}
		addAll(r.writes, s.writes)
	}
	out := slices.Collect(maps.Values(m))
	slices.SortFunc(out, func(a, b *roleStats) int {
		return cmp.Or(cmp.Compare(b.running+b.syscall, a.running+a.syscall), strings.Compare(a.role, b.role))
	})
	return out
}

func addAll(dst, src map[string]int) {
	for k, v := range src {
		dst[k] += v
	}
}

// perCycle formats n/cycles with two decimals.
func perCycle(n, cycles int) string { return fmt.Sprintf("%.2f", float64(n)/float64(cycles)) }

// formatCounts lists a map as "k×n.nn, ..." per cycle, largest first.
func formatCounts(m map[string]int, cycles int) string {
	keys := slices.Collect(maps.Keys(m))
	slices.SortFunc(keys, func(a, b string) int { return cmp.Or(cmp.Compare(m[b], m[a]), strings.Compare(a, b)) })
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		if f := float64(m[k]) / float64(cycles); f >= 0.005 {
			parts = append(parts, fmt.Sprintf("%s %.2f", k, f))
		}
	}
	return strings.Join(parts, ", ")
}

// sum adds up a map's counts.
func sum(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// report writes the per-cycle breakdown of the counted window: cycles is the number of cycles in it
// and hz the CPU profile's sampling rate.
func (ct *cycleTrace) report(w io.Writer, cycles, hz int) {
	roles := ct.byRole()
	var unblocks, starts, reads, writes, empty int
	var running, sys time.Duration
	for _, r := range roles {
		if strings.HasPrefix(r.role, "tracer ") {
			continue // the trace and the profile themselves
		}
		unblocks += sum(r.unblocks)
		starts += r.starts
		reads += r.syscalls["read"]
		writes += r.syscalls["write"]
		empty += r.emptyRd
		running += r.running
		sys += r.syscall
	}
	us := func(d time.Duration) string { return fmt.Sprintf("%.2f", float64(d.Microseconds())/float64(cycles)) }
	window := ct.end.Sub(ct.begin)
	fmt.Fprintf(w, "traced: %s µs/cycle wall, %s µs/cycle CPU; per cycle: %s goroutine unblocks, %s goroutine starts (got a P), %s P wake-ups (idle → running)\n",
		us(window), us(ct.cpu), perCycle(unblocks, cycles), perCycle(starts, cycles), perCycle(ct.procWakes, cycles))
	fmt.Fprintf(w, "        syscalls per cycle: %s read (%s of them empty: EAGAIN, then park on the poller), %s write; goroutines ran %s µs + %s µs in syscalls per cycle\n",
		perCycle(reads, cycles), perCycle(empty, cycles), perCycle(writes, cycles), us(running), us(sys))
	fmt.Fprintf(w, "  %-38s %7s %7s %6s  %s\n", "goroutine role (count)", "run µs", "sys µs", "starts", "per cycle: unblocked by | blocks on | syscalls | yields")
	for _, r := range roles {
		fmt.Fprintf(w, "  %-38s %7s %7s %6s  %s | %s | %s | %s\n", fmt.Sprintf("%s (%d)", r.role, r.n),
			us(r.running), us(r.syscall), perCycle(r.starts, cycles),
			orDash(formatCounts(r.unblocks, cycles)), orDash(formatCounts(r.blocks, cycles)),
			orDash(formatCounts(r.syscalls, cycles)), orDash(formatCounts(r.stops, cycles)))
	}
	fmt.Fprintf(w, "  where the wake-ups and writes come from, per cycle (waker: woken <- call site, innermost first):\n")
	for _, r := range roles {
		if sw, sr := formatCounts(r.wakes, cycles), formatCounts(r.writes, cycles); sw != "" || sr != "" {
			fmt.Fprintf(w, "    %s: wakes %s; writes %s\n", r.role, orDash(sw), orDash(sr))
		}
	}
	if ct.samples > 0 {
		// The kernel delivers profiling signals at its tick rate at most, which may be below hz:
		// samples give shares, and the process CPU time measured over the window gives the scale.
		per := float64(ct.cpu.Nanoseconds()) / 1e3 / float64(cycles) / float64(ct.samples)
		cpu := func(n int) string { return fmt.Sprintf("%.2f", float64(n)*per) }
		fmt.Fprintf(w, "  CPU per cycle, %d samples (asked for %d Hz) scaled to the window's process CPU time: engine (pkg/machine anywhere on the stack) %s µs (%.0f%%)\n",
			ct.samples, hz, cpu(ct.engine), 100*float64(ct.engine)/float64(ct.samples))
		keys := slices.Collect(maps.Keys(ct.components))
		slices.SortFunc(keys, func(a, b string) int {
			return cmp.Or(cmp.Compare(ct.components[b], ct.components[a]), strings.Compare(a, b))
		})
		var parts []string
		for _, k := range keys {
			parts = append(parts, fmt.Sprintf("%s %s", k, cpu(ct.components[k])))
		}
		fmt.Fprintf(w, "    by innermost component, µs: %s\n", strings.Join(parts, ", "))
		parts = parts[:0]
		for _, r := range roles {
			if r.samples > 0 {
				parts = append(parts, fmt.Sprintf("%s %s", r.role, cpu(r.samples)))
			}
		}
		fmt.Fprintf(w, "    by goroutine role, µs: %s\n", strings.Join(parts, ", "))
	}
	if len(ct.timeline) > 0 {
		fmt.Fprintf(w, "  one cycle, µs from its start (%.1f µs in all):\n", float64(ct.oneEnd.Sub(ct.oneBegin).Nanoseconds())/1e3)
		for _, e := range ct.timeline {
			line := fmt.Sprintf("    %7.1f  %-32s %s", float64(e.at.Sub(ct.oneBegin).Nanoseconds())/1e3, ct.role(e.g), e.what)
			if e.what == "unblocked" {
				line += " by " + ct.role(e.by)
			}
			fmt.Fprintln(w, line)
		}
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
