package machine

import (
	"math/bits"
	"runtime"
	"sync/atomic"
)

// Drain ownership.
//
// Handlers run inline on the goroutine that drains a machine's queue, so a
// call into the machine must sometimes know whether it comes from that very
// goroutine: Mutate and Eval can't wait for the queue there (they would wait
// for themselves), and a mutation queued there belongs to the running Mutate
// call. Go has no goroutine id, so the answer is kept in the goroutine's
// call stack as data: every machine gets a unique drain id at creation, and
// the engine enters its drain loop through a chain of trampolines, one
// distinct function per hexadecimal digit of the id, between a begin and an
// end marker. Each trampoline makes exactly one call, so the return PC it
// leaves on the stack is a constant, calibrated once at init. "Is the caller
// the drainer of m?" is then "is m's id among the ids encoded in this
// goroutine's PCs?", answered by comparing integers from runtime.Callers,
// for a stack of any depth and any number of nested drains of different
// machines.
//
// The id needs no per-session part because a drain session's frames exist
// exactly while the session runs: at most one goroutine drains a machine at
// a time (Machine.draining is claimed under the queue lock before drain is
// called), and a goroutine whose session ended, or was handed over, only
// returns through its trampolines before it runs anything else. So m's id on
// a goroutine's stack means that goroutine is inside m's live session.
// Machine ids are small (1 to 3 digits in practice), which keeps the chain
// short on the happy path. The check is only needed while user code of m
// runs (a handler, an Eval function or a tracer), so the common paths never
// walk the stack.
//
// On amd64 and arm64 the session also records its goroutine's identity
// (curg, the address of the runtime's descriptor, read in assembly), and the
// check is one comparison instead of a stack walk, which costs microseconds
// at the depth of a handler. The trampolines stay: they are the answer on
// other platforms, and they keep drain sessions visible in stack traces.

// machineSeq numbers machines for their drain ids. Ids are never reused.
var machineSeq atomic.Uint64

// newDrainID returns a fresh machine's drain id and its number of digits.
func newDrainID() (uint64, int) {
	id := machineSeq.Add(1)
	return id, (bits.Len64(id) + 3) / 4
}

// hop is the signature shared by the trampolines. m is nil only during
// calibration.
type hop func(m *Machine, own uint64, root *rootState, id uint64, k int) Result

// digitHops are the trampolines of the 16 hexadecimal digits.
var digitHops [16]hop

// drainPCs are the calibrated return PCs of the trampolines.
var drainPCs struct {
	begin, end uintptr
	digit      [16]uintptr
}

// calibPC receives the caller PC recorded during calibration (init only).
var calibPC uintptr

func init() {
	runDrainHop = runDrain
	digitHops = [16]hop{
		drainDigit0, drainDigit1, drainDigit2, drainDigit3, drainDigit4, drainDigit5, drainDigit6,
		drainDigit7, drainDigit8, drainDigit9, drainDigitA, drainDigitB, drainDigitC, drainDigitD,
		drainDigitE, drainDigitF,
	}
	drainPCs.begin = calibrate(drainBegin)
	drainPCs.end = calibrate(drainEnd)
	for d, h := range digitHops {
		drainPCs.digit[d] = calibrate(h)
	}
}

// calibrate calls h in calibration mode (nil machine): its one call site
// then calls recordCaller, which records h's return PC.
func calibrate(h hop) uintptr {
	calibPC = 0
	h(nil, 0, nil, 0, 0)
	return calibPC
}

//go:noinline
func recordCaller(*Machine, uint64, *rootState, uint64, int) Result {
	var pc [1]uintptr
	runtime.Callers(2, pc[:])
	calibPC = pc[0]
	return Canceled
}

// nextHop returns the trampoline after the one with k digits left.
func nextHop(m *Machine, id uint64, k int) hop {
	switch {
	case m == nil:
		return recordCaller
	case k == 0:
		return drainEnd
	}
	return digitHops[(id>>(4*uint(k-1)))&15]
}

// drain runs the queue on the calling goroutine as a drain session of m and
// returns the result of item own (see process). The caller has claimed
// m.draining.
func (m *Machine) drain(own uint64, root *rootState) Result {
	return drainBegin(m, own, root, m.drainID, m.drainDigits)
}

// drainBegin marks the start of a session's id on the stack.
//
//go:noinline
func drainBegin(m *Machine, own uint64, root *rootState, id uint64, k int) Result {
	return nextHop(m, id, k)(m, own, root, id, k-1)
}

// drainEnd marks the end of a session's id on the stack.
//
//go:noinline
func drainEnd(m *Machine, own uint64, root *rootState, id uint64, k int) Result {
	h := runDrainHop
	if m == nil {
		h = recordCaller
	}
	return h(m, own, root, id, k)
}

// runDrainHop is runDrain (set in init); tests replace it to probe the
// chain.
var runDrainHop hop

//go:noinline
func runDrain(m *Machine, own uint64, root *rootState, _ uint64, _ int) Result {
	if !haveCurg {
		return m.process(own, root)
	}
	g := curg()
	m.drainG.Store(g)
	// a session handed over is already marked with its new goroutine
	defer m.drainG.CompareAndSwap(g, 0)
	return m.process(own, root)
}

//go:noinline
func drainDigit0(m *Machine, own uint64, root *rootState, id uint64, k int) Result {
	return nextHop(m, id, k)(m, own, root, id, k-1)
}

//go:noinline
func drainDigit1(m *Machine, own uint64, root *rootState, id uint64, k int) Result {
	return nextHop(m, id, k)(m, own, root, id, k-1)
}

//go:noinline
func drainDigit2(m *Machine, own uint64, root *rootState, id uint64, k int) Result {
	return nextHop(m, id, k)(m, own, root, id, k-1)
}

//go:noinline
func drainDigit3(m *Machine, own uint64, root *rootState, id uint64, k int) Result {
	return nextHop(m, id, k)(m, own, root, id, k-1)
}

//go:noinline
func drainDigit4(m *Machine, own uint64, root *rootState, id uint64, k int) Result {
	return nextHop(m, id, k)(m, own, root, id, k-1)
}

//go:noinline
func drainDigit5(m *Machine, own uint64, root *rootState, id uint64, k int) Result {
	return nextHop(m, id, k)(m, own, root, id, k-1)
}

//go:noinline
func drainDigit6(m *Machine, own uint64, root *rootState, id uint64, k int) Result {
	return nextHop(m, id, k)(m, own, root, id, k-1)
}

//go:noinline
func drainDigit7(m *Machine, own uint64, root *rootState, id uint64, k int) Result {
	return nextHop(m, id, k)(m, own, root, id, k-1)
}

//go:noinline
func drainDigit8(m *Machine, own uint64, root *rootState, id uint64, k int) Result {
	return nextHop(m, id, k)(m, own, root, id, k-1)
}

//go:noinline
func drainDigit9(m *Machine, own uint64, root *rootState, id uint64, k int) Result {
	return nextHop(m, id, k)(m, own, root, id, k-1)
}

//go:noinline
func drainDigitA(m *Machine, own uint64, root *rootState, id uint64, k int) Result {
	return nextHop(m, id, k)(m, own, root, id, k-1)
}

//go:noinline
func drainDigitB(m *Machine, own uint64, root *rootState, id uint64, k int) Result {
	return nextHop(m, id, k)(m, own, root, id, k-1)
}

//go:noinline
func drainDigitC(m *Machine, own uint64, root *rootState, id uint64, k int) Result {
	return nextHop(m, id, k)(m, own, root, id, k-1)
}

//go:noinline
func drainDigitD(m *Machine, own uint64, root *rootState, id uint64, k int) Result {
	return nextHop(m, id, k)(m, own, root, id, k-1)
}

//go:noinline
func drainDigitE(m *Machine, own uint64, root *rootState, id uint64, k int) Result {
	return nextHop(m, id, k)(m, own, root, id, k-1)
}

//go:noinline
func drainDigitF(m *Machine, own uint64, root *rootState, id uint64, k int) Result {
	return nextHop(m, id, k)(m, own, root, id, k-1)
}

// drainsOnStack reports whether the calling goroutine is inside a drain
// session of the machine with drain id id: whether id is encoded by
// trampolines on its stack. It walks the stack from the innermost frame in
// chunks and stops at the first match, so a handler's mutation (the
// trampolines a few frames below it) costs a short walk; a goroutine that
// is not the drainer has its whole stack walked, whatever its depth.
func drainsOnStack(id uint64) bool {
	var buf [32]uintptr
	var sc drainScan
	for skip := 2; ; {
		n := runtime.Callers(skip, buf[:])
		if sc.scan(buf[:n], id) {
			return true
		}
		if n < len(buf) {
			return false
		}
		skip += n
	}
}

// drainScan decodes the drain ids encoded on a stack, innermost frame
// first: the end marker, the digits from the least significant one, then
// the begin marker. Its state carries over from one chunk of frames to the
// next.
type drainScan struct {
	in    bool
	got   uint64
	shift uint
}

// scan reads pcs and reports whether they complete the encoding of id.
func (s *drainScan) scan(pcs []uintptr, id uint64) bool {
	for _, pc := range pcs {
		switch {
		case pc == drainPCs.end:
			s.in, s.got, s.shift = true, 0, 0
		case !s.in:
		case pc == drainPCs.begin:
			if s.got == id {
				return true
			}
			s.in = false
		default:
			d := digitOf(pc)
			if d < 0 || s.shift >= 64 {
				s.in = false
				continue
			}
			s.got |= uint64(d) << s.shift
			s.shift += 4
		}
	}
	return false
}

// digitOf returns the digit of a trampoline's return PC, or -1.
func digitOf(pc uintptr) int {
	for d, p := range drainPCs.digit {
		if p == pc {
			return d
		}
	}
	return -1
}

// isDrainer reports whether the caller runs inside the drain session of m
// (a handler, Eval function or tracer called by the engine, on the
// goroutine draining m's queue, at any depth). Where the goroutine's
// identity is at hand (curg), the session records its goroutine and the
// answer is one comparison; elsewhere it walks the stack, so callers check
// m.inUser first: outside user code of m, nobody can be the drainer.
func (m *Machine) isDrainer() bool {
	if haveCurg {
		return m.drainG.Load() == curg()
	}
	return drainsOnStack(m.drainID)
}

// fromDrainer is the cheap-first form of isDrainer used by the API.
func (m *Machine) fromDrainer() bool {
	return m.inUser.Load() > 0 && m.isDrainer()
}
