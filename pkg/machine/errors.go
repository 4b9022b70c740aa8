package machine

import (
	"errors"
	"fmt"
	"runtime/debug"
)

var (
	// ErrStateUnknown is wrapped by errors about undefined states.
	ErrStateUnknown = errors.New("state unknown")
	// ErrCanceled is wrapped by Mutate's error when relations rejected the
	// transition or a handler vetoed it or panicked. A mutation that was
	// only queued is not an error: Mutate returns Queued and nil.
	ErrCanceled = errors.New("transition canceled")
	// ErrInvalidArgs means invalid arguments.
	ErrInvalidArgs = errors.New("invalid arguments")
	// ErrHandlerTimeout is wrapped by Mutate's error when a handler of the
	// transition overran HandlerTimeout.
	ErrHandlerTimeout = errors.New("handler timeout")
	// ErrDropped is wrapped, beside ctx.Err(), by Mutate's error when ctx
	// ended while the mutation was still queued: it was removed and never
	// runs. Without it, a Mutate whose ctx ended may have run (or still run).
	ErrDropped = errors.New("mutation dropped before it ran")
)

// ExceptionArgsPanic is the "panic" argument of the Exception mutation
// queued after a handler panic.
type ExceptionArgsPanic struct {
	CalledStates S
	StatesBefore S
	Transition   *Transition
	LastStep     *Step
	StackTrace   string
}

// ExceptionHandler provides a default ExceptionState handler; embed a
// *ExceptionHandler (even nil) in a handler struct.
type ExceptionHandler struct{}

// ExceptionState logs the error at LogChanges. It never panics, whatever the
// args hold.
func (eh *ExceptionHandler) ExceptionState(e *Event) {
	if e == nil || e.Machine == nil {
		return
	}
	m := e.Machine
	if !m.logOn(LogChanges) {
		return
	}
	err, _ := e.Args["err"].(error)
	trace, _ := e.Args["err.trace"].(string)
	if p, ok := e.Args["panic"].(*ExceptionArgsPanic); ok && p != nil {
		typ := MutationAdd
		if p.Transition != nil && p.Transition.Mutation != nil {
			typ = p.Transition.Mutation.Type
		}
		if m.LogStackTrace && p.StackTrace != "" {
			m.log(LogChanges, "[error:%s] %s (%v)\n%s", typ, j(p.CalledStates), err, p.StackTrace)
		} else {
			m.log(LogChanges, "[error:%s] %s (%v)", typ, j(p.CalledStates), err)
		}
		return
	}
	if trace != "" {
		m.log(LogChanges, "[error] %v\n%s", err, trace)
	} else {
		m.log(LogChanges, "[error] %v", err)
	}
}

// panicErr converts a panic value to an error, keeping an error's identity
// (so errors.Is still matches) and the text of non-error values.
func panicErr(v any) error {
	if err, ok := v.(error); ok {
		return err
	}
	return fmt.Errorf("%v", v)
}

// Err returns the last error: from AddErr*, a recovered panic, an unknown
// state, or disposal (the context's error when none was stored). Never
// cleared.
func (m *Machine) Err() error {
	if b := m.err.Load(); b != nil {
		return b.err
	}
	return nil
}

func (m *Machine) setErr(err error) {
	m.err.Store(&errBox{err})
}

func (m *Machine) setErrIfNil(err error) {
	m.err.CompareAndSwap(nil, &errBox{err})
}

// AddErr is AddErrState(Exception, err, args).
func (m *Machine) AddErr(err error, args A) Result {
	return m.AddErrState(Exception, err, args)
}

// AddErrState stores err as the last error, then adds state and Exception
// with args cloned plus "err" and "err.trace" (the stack when LogStackTrace
// is on). Returns Canceled on a disposed machine.
func (m *Machine) AddErrState(state string, err error, args A) Result {
	if m.Disposed.Load() {
		return Canceled
	}
	m.setErr(err)
	a := cloneArgs(args)
	a["err"] = err
	trace := ""
	if m.LogStackTrace {
		trace = string(debug.Stack())
	}
	a["err.trace"] = trace
	if state == Exception {
		return m.Add(S{Exception}, a)
	}
	return m.Add(S{state, Exception}, a)
}

// PanicToErr is a deferred helper: it recovers a panic and calls AddErr.
func (m *Machine) PanicToErr(args A) {
	if r := recover(); r != nil {
		m.AddErr(panicErr(r), args)
	}
}

// PanicToErrState is a deferred helper: it recovers a panic and calls
// AddErrState.
func (m *Machine) PanicToErrState(state string, args A) {
	if r := recover(); r != nil {
		m.AddErrState(state, panicErr(r), args)
	}
}
