package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"

	am "github.com/arpc-go/arpc/pkg/machine"
)

var (
	cmdAdd    = mutationCommand(am.MutationAdd, "activates the states (and what their relations add)")
	cmdRemove = mutationCommand(am.MutationRemove, "deactivates the states")
	cmdSet    = mutationCommand(am.MutationSet, "activates exactly the states, deactivating the others")
)

func mutationCommand(typ am.MutationType, what string) *command {
	name := typ.String()
	return &command{
		name:     name,
		synopsis: "ADDR STATE... [--arg key=value]...",
		summary:  strings.SplitN(what, " (", 2)[0],
		help: fmt.Sprintf(`Runs %s on the machine served at ADDR: it %s. The
source machine resolves relations and runs its handlers; arpc prints the
result (executed, queued, canceled, noop) and the active states after it.
Exit status 0 when executed (or queued, or nothing to do), 3 when the machine
canceled it, 1 on an error (e.g. an unknown state, a refused mutation).`, strings.ToUpper(name[:1])+name[1:], what),
		minArgs: 2, maxArgs: -1,
		flags: func(fs *flag.FlagSet, e *env) {
			fs.Var(&e.args, "arg", "")
		},
		run: func(e *env) int { return runMutation(e, typ) },
	}
}

// mutationView is the --json output of add, remove and set.
type mutationView struct {
	Result string            `json:"result"`
	States []string          `json:"states"`
	Active []string          `json:"active"`
	Ticks  map[string]uint64 `json:"ticks"`
	Error  string            `json:"error,omitempty"`
	Exit   int               `json:"exit"`
}

func runMutation(e *env, typ am.MutationType) int {
	ctx, cancel := e.ctx()
	defer cancel()
	c, err := e.dial(ctx, false)
	if err != nil {
		return e.fail(err)
	}
	defer c.Close()
	states := am.S(e.pos[1:])
	res, err := c.Worker.Mutate(ctx, typ, states, e.args.a)
	code := exitOK
	switch {
	case errors.Is(err, am.ErrCanceled), err == nil && res == am.Canceled:
		code = exitCanceled
	case err == nil:
	case e.parent.Err() != nil:
		code = exitInterrupted
	case errors.Is(err, context.DeadlineExceeded):
		code = exitTimeout
	default:
		code = exitError
	}
	v := mutationView{Result: resultName(res, err), States: states, Active: c.Worker.ActiveStates(),
		Ticks: c.Worker.Clock(states), Exit: code}
	if err != nil {
		v.Error = errText(err)
	}
	if v.Active == nil {
		v.Active = []string{}
	}
	if e.json {
		e.writeJSON(v)
	} else {
		fmt.Fprintf(e.stdout, "%s %s: %s\n", typ, strings.Join(states, " "), v.Result)
		fmt.Fprintf(e.stdout, "active: %s\n", strings.Join(v.Active, " "))
	}
	if err != nil {
		fmt.Fprintf(e.stderr, "arpc %s: %s\n", e.cmd.name, errText(err))
	}
	return code
}

// errText is an error's message without a repeated leading phrase: a
// canceled transition's reason crosses the wire inside an error that says
// so again ("transition canceled: transition canceled by XEnter").
func errText(err error) string {
	msg := err.Error()
	if head, rest, ok := strings.Cut(msg, ": "); ok && strings.HasPrefix(rest, head) {
		return rest
	}
	return msg
}

// resultName names a mutation's result; "error" when it failed without one.
func resultName(res am.Result, err error) string {
	switch {
	case errors.Is(err, am.ErrCanceled):
		return "canceled"
	case err != nil || res == 0:
		return "error"
	case res == am.ResultNoOp:
		return "noop"
	}
	return res.String()
}
