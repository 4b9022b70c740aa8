package machine

import (
	"slices"
	"time"
)

// Opts configures New. It's copied; the caller's value is never changed by
// the machine.
type Opts struct {
	// ID replaces the random ID.
	ID string
	// HandlerTimeout replaces the default 100ms.
	HandlerTimeout time.Duration
	// DontLogStackTrace turns off stack traces.
	DontLogStackTrace bool
	// DontPanicToException lets handler panics crash the caller.
	DontPanicToException bool
	// DontLogID drops the ID prefix from log lines.
	DontLogID bool
	// Resolver replaces the default relations resolver.
	Resolver RelationsResolver
	// LogLevel sets the log level.
	LogLevel LogLevel
	// Tracers are bound at creation.
	Tracers []Tracer
	// LogArgs maps args for [add] and [state] log lines.
	LogArgs func(args A) map[string]string
	// Parent makes this a submachine; ParentID is taken from it.
	Parent *Machine
	// ParentID is the parent's ID.
	ParentID string
	// Tags is free-form metadata.
	Tags []string
	// QueueLimit replaces the default 1000.
	QueueLimit int
	// DetectEval makes Eval log its refusal inside handlers (it always
	// refuses there).
	DetectEval bool
}

// OptsWithDebug sets DontPanicToException and a 10-minute HandlerTimeout on
// opts and returns it.
func OptsWithDebug(opts *Opts) *Opts {
	if opts == nil {
		opts = &Opts{}
	}
	opts.DontPanicToException = true
	opts.HandlerTimeout = 10 * time.Minute
	return opts
}

// OptsWithTracers sets Tracers on opts, if any are passed, and returns it.
func OptsWithTracers(opts *Opts, tracers ...Tracer) *Opts {
	if opts == nil {
		opts = &Opts{}
	}
	if len(tracers) > 0 {
		opts.Tracers = tracers
	}
	return opts
}

// OptsWithParentTracers copies all of parent's tracers and its argument
// mapper onto opts and returns it.
func OptsWithParentTracers(opts *Opts, parent *Machine) *Opts {
	if opts == nil {
		opts = &Opts{}
	}
	if parent == nil {
		return opts
	}
	opts.Tracers = slices.Clone(parent.tracerList())
	opts.LogArgs = parent.GetLogArgs()
	return opts
}
