package main

import (
	"context"
	"errors"
	"flag"
	"fmt"

	am "github.com/arpc-go/arpc/pkg/machine"
)

var cmdWhen = &command{
	name:     "when",
	synopsis: "ADDR STATE... [--not] [--timeout D]",
	summary:  "waits until the states are active (or, with --not, inactive)",
	help: `Waits until all the STATEs are active on the machine served at ADDR (with
--not: until none of them is), then prints their ticks and exits 0. It
returns at once when they already are. A state that was activated and
deactivated again between two updates counts as having been active. Exit
status 4 when --timeout passes first (no limit by default), 130 on Ctrl-C.`,
	minArgs: 2, maxArgs: -1,
	waits: true,
	flags: func(fs *flag.FlagSet, e *env) {
		fs.BoolVar(&e.not, "not", false, "")
	},
	run: runWhen,
}

// whenView is the --json output of when.
type whenView struct {
	Holds bool              `json:"holds"`
	Not   bool              `json:"not"`
	Ticks map[string]uint64 `json:"ticks"`
	Error string            `json:"error,omitempty"`
	Exit  int               `json:"exit"`
}

func runWhen(e *env) int {
	ctx, cancel := e.ctx()
	defer cancel()
	c, err := e.dial(ctx, false)
	if err != nil {
		return e.fail(err)
	}
	defer c.Close()
	states := e.pos[1:]
	for _, s := range states {
		if c.Worker.Index(s) < 0 {
			e.failCode(exitError, fmt.Errorf("%w: %s", am.ErrStateUnknown, s))
			return exitError
		}
	}
	if e.not {
		err = am.WaitForNot(ctx, c.Worker, states...)
	} else {
		err = am.WaitFor(ctx, c.Worker, states...)
	}
	what := "active"
	if e.not {
		what = "inactive"
	}
	if err != nil {
		code := exitError
		switch {
		case e.parent.Err() != nil:
			code = exitInterrupted
		case errors.Is(err, context.DeadlineExceeded):
			code = exitTimeout
			err = fmt.Errorf("not %s within %s (%s): %w", what, e.timeout, tickList(c.Worker.Clock(states), states), err)
		}
		e.failCode(code, err)
		return code
	}
	v := whenView{Holds: true, Not: e.not, Ticks: c.Worker.Clock(states)}
	if e.json {
		e.writeJSON(v)
		return exitOK
	}
	fmt.Fprintf(e.stdout, "%s: %s\n", what, tickList(v.Ticks, states))
	return exitOK
}
