// Package machine is aRPC's state-machine engine, API-compatible with
// asyncmachine-go v0.7 (import it as am and port code by changing the import
// path).
//
// # Model
//
// A machine has a schema (Struct): named states with flags (Auto, Multi) and
// relations to other states (Require, Add, Remove, After). Each state has a
// uint64 tick; every activation or deactivation adds 1, so an odd tick means
// active, and re-entering an active Multi state adds 2. The tick vector in
// StateNames() order is the machine's Time: it never decreases, so it tells
// exactly what changed. Exception is a built-in Multi state for errors.
//
// Mutations (Add, Remove, Set) name states. Each one becomes a Transition:
// relations resolve the target states (Add implication is transitive, Require
// filters, Remove blocks; the front of the list wins), handlers negotiate,
// the ticks move, final handlers run, and Auto states may be added by a
// follow-up mutation. The resolution is deterministic code over state
// indexes and precomputed relation lists: no goroutines, no I/O, no
// allocations on the common path. Names are mapped to indexes once, at the
// API edge.
//
// # Handlers
//
// BindHandlers binds the methods of a struct by name: XEnter, XExit, XY,
// XAny, AnyX and AnyAny negotiate (returning false cancels), XState and XEnd
// run after the change. Methods are indexed by state once, at bind time, and
// wrong signatures are reported then. Handlers are called directly, without
// reflection, inline on the goroutine draining the queue, one at a time. A
// panicking handler cancels its transition and activates Exception; the
// machine keeps working. Handlers may read the machine (Is, Time, ...) and
// mutate it: mutations from handlers are queued and return Queued. A
// handler's step is recorded in its Transition once the handler returned.
//
// # Queue
//
// Mutations are queued. The caller that finds the queue idle drains it,
// including whatever handlers queue meanwhile, and gets its own result;
// others get Queued. Mutate queues a mutation and waits for its own result,
// and for the mutations it caused, even when another goroutine drains the
// queue; that's what a server calls for remote mutations. Mutations queued
// from a handler belong to the Mutate call whose transition is running; a
// draining Mutate caller hands the queue over to a waiting one after a
// bounded batch, so none is kept draining forever. Auto mutations, Exception
// recoveries and Eval functions are prepended.
//
// # Waiting
//
// When, WhenNot, WhenTime, WhenTicks, WhenTicksEq, WhenArgs, WhenErr and
// WhenQueueEnds return channels that are only ever closed: when the
// condition holds, when their ctx ends, or on disposal. Bindings are indexed
// by state, so a transition checks only the bindings of states whose ticks
// moved, and channels close after the state lock is released. A ctx releases
// its binding through context.AfterFunc, without a goroutine per waiter.
// NewStateCtx returns a context canceled when the state goes inactive.
//
// Select waits on any number of such conditions, over any number of
// machines and mirrors, built at run time, plus timers and a default, and
// chooses uniformly at random among the ready cases, as Go's select does.
// Its Send and Take cases mutate only when chosen, under a clock
// precondition (MutateIf): the source checks the ticks right before the
// transition, so competing callers, in one process or many, can't both
// consume the same activation of a state.
//
// The ticks, the waiters and the reads built on them (Is, Time, Clock,
// String, StringAll, Inspect...) form a Model, which a Machine embeds and
// moves with its transitions. Another implementation of Api, such as a
// mirror of a remote machine, gets its own from NewModel and feeds it clock
// diffs through a ModelWriter, so both share one waiter index; NormalizeSchema
// gives it the schema as the machine keeps it.
//
// # Drain ownership
//
// Handlers run inline on the goroutine draining the queue, so the engine
// must know exactly whether a call comes from that goroutine: there Mutate
// returns Queued, nil and Eval refuses (waiting would wait for itself), and
// a mutation queued there belongs to the running Mutate call. Anywhere else,
// including a handler of another machine, Mutate waits for its result like
// any caller. Go has no goroutine id, so each machine gets a unique drain
// id and the engine enters its drain loop through a chain of trampolines,
// one function per hexadecimal digit of the id, which writes the id into the
// goroutine's stack as return addresses, calibrated once at start-up. Only
// one goroutine drains a machine at a time and those frames exist exactly
// while it does, so the question is answered by comparing integers from
// runtime.Callers with the machine's id: exact for any stack depth and any
// number of machines draining inside each other's handlers. The stack is
// walked only while user code of that machine (a handler, an Eval function
// or a tracer) runs; the happy path pays a few calls per drain.
//
// # Handler timeout
//
// HandlerTimeout (100ms by default) bounds every handler call without a
// goroutine hand-off, and handlers of one machine never overlap, timeouts
// included. Each call records its start time; a single reusable timer per
// machine, armed lazily, checks the running call when it fires. An overdue
// call can't be stopped, so the timer only marks it timed out, logs it and
// releases a Mutate caller waiting on another goroutine for that very
// transition (with ErrHandlerTimeout); the queue waits for the handler to
// return, then the transition is canceled and the queue goes on. A timeout
// in negotiation (XEnter, XExit, XY, AnyAny) cancels the transition:
// nothing is applied. A timeout in the final phase (XState, XEnd) comes
// after the states were applied: they stay applied, the remaining final
// handlers and the Auto follow-up are skipped, and the mutation still
// reports Canceled with ErrHandlerTimeout, as asyncmachine-go does. Mutate
// tells a timeout (ErrHandlerTimeout) from a veto, a panic or a relations
// rejection (ErrCanceled); Add, Remove and Set report Canceled for all of
// them. The happy path costs a few atomic operations and a clock read per
// handler, and no goroutine.
//
// # Concurrency
//
// All methods are safe for concurrent use. Reads (Is, Not, Any, Tick, Time,
// Clock, String, ...) are lock-free: ticks are atomics guarded by a seqlock,
// so a reader sees a consistent vector. Writers hold one mutex briefly and
// never call user code under it. Tracers and loggers are called from the
// goroutine that processes the queue and must not block. A Transition record
// is reused for the next transition unless it was handed out (Transition,
// Event.Transition, tracers), so records you obtain stay intact.
//
// # Lifecycle
//
// Dispose (asynchronous, safe from handlers) or DisposeForce tears the
// machine down: its context is canceled, waiters are released, disposal
// handlers run, and WhenDisposed closes once every goroutine the machine
// started has exited. A machine whose parent context ends disposes itself.
// The library never prints: logs go to an optional Logger, printf function
// or *slog.Logger, and cost nothing when the level is LogNothing.
package machine
