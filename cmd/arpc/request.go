package main

import (
	"errors"
	"flag"
	"fmt"
	"maps"

	am "github.com/arpc-go/arpc/pkg/machine"
	"github.com/arpc-go/arpc/pkg/rpc"
)

var cmdRequest = &command{
	name:     "request",
	synopsis: "ADDR STATE UNTIL [--arg key=value]... [--timeout D]",
	summary:  "adds a state with a correlation ID and waits for the answer",
	help: `Sends a correlated request to the machine served at ADDR: adds STATE with the
arguments and a fresh correlation ID, then waits for the answer, the first
activation of UNTIL that carries the same ID (see rpc.Request), and prints
its arguments. Exit status 0 when answered, 3 when the machine canceled the
Add, 4 when --timeout passes first (no limit by default), 130 on Ctrl-C, 1
on an error. Nothing is left waiting on the server when arpc gives up.`,
	minArgs: 3, maxArgs: 3,
	waits: true,
	flags: func(fs *flag.FlagSet, e *env) {
		fs.Var(&e.args, "arg", "")
	},
	run: runRequest,
}

// requestView is the --json output of request.
type requestView struct {
	Answered bool           `json:"answered"`
	ID       string         `json:"id"`
	Args     map[string]any `json:"args"`
}

func runRequest(e *env) int {
	ctx, cancel := e.ctx()
	defer cancel()
	c, err := e.dial(ctx, false)
	if err != nil {
		return e.fail(err)
	}
	defer c.Close()
	answer, err := c.Worker.Request(ctx, e.pos[1], e.args.a, e.pos[2])
	if err != nil {
		if errors.Is(err, am.ErrCanceled) {
			e.failCode(exitCanceled, err)
			return exitCanceled
		}
		return e.fail(err)
	}
	id := rpc.CorrelationID(answer)
	args := maps.Clone(answer)
	delete(args, rpc.CorrelationKey)
	if e.json {
		e.writeJSON(requestView{Answered: true, ID: id, Args: jsonArgs(args)})
		return exitOK
	}
	fmt.Fprintf(e.stdout, "answered (id %s): %s\n", id, textArgs(args))
	return exitOK
}
