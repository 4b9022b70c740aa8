package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/arpc-go/arpc/pkg/rpc"
)

// ctx returns the context of a command: the process's, bounded by --timeout
// when one is set.
func (e *env) ctx() (context.Context, context.CancelFunc) {
	if e.timeout > 0 {
		return context.WithTimeout(e.parent, e.timeout)
	}
	return context.WithCancel(e.parent)
}

// dial connects to the machine at the command's address, whatever its
// schema. A live command (watch, web) reconnects when the connection drops;
// a one-shot command fails instead.
func (e *env) dial(ctx context.Context, live bool) (*rpc.Client, error) {
	opts, err := e.conn.options()
	if err != nil {
		return nil, err
	}
	opts = append(opts, rpc.WithReconnect(live, 0, 0))
	return rpc.DialAny(ctx, e.pos[0], opts...)
}

// fail reports err and returns the exit status it calls for: interrupted
// when the process's context ended, timeout when the command's deadline
// passed, else error.
func (e *env) fail(err error) int {
	code := exitError
	switch {
	case e.parent.Err() != nil:
		code = exitInterrupted
	case errors.Is(err, context.DeadlineExceeded):
		code = exitTimeout
	}
	e.failCode(code, err)
	return code
}

// failCode reports err with the exit status code.
func (e *env) failCode(code int, err error) {
	fmt.Fprintf(e.stderr, "arpc %s: %v\n", e.cmd.name, err)
	if e.json {
		e.writeJSON(map[string]any{"error": err.Error(), "exit": code})
	}
}

// writeJSON writes v as one indented JSON document.
func (e *env) writeJSON(v any) {
	enc := json.NewEncoder(e.stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		fmt.Fprintf(e.stderr, "arpc %s: json: %v\n", e.cmd.name, err)
	}
}

// writeJSONLine writes v as one JSON line.
func (e *env) writeJSONLine(v any) {
	if err := json.NewEncoder(e.stdout).Encode(v); err != nil {
		fmt.Fprintf(e.stderr, "arpc %s: json: %v\n", e.cmd.name, err)
	}
}
