package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"
)

// Exit statuses, the same for every command.
const (
	exitOK          = 0   // done: executed, holds, answered, or a clean stop
	exitError       = 1   // the server can't be reached, refused, or failed
	exitUsage       = 2   // bad command line
	exitCanceled    = 3   // the machine canceled the mutation
	exitTimeout     = 4   // --timeout passed before the condition held
	exitInterrupted = 130 // interrupted (Ctrl-C) while waiting
)

// defaultTimeout bounds the one-shot commands (connecting and the call).
const defaultTimeout = 10 * time.Second

// command is one subcommand of arpc.
type command struct {
	name     string
	synopsis string // the arguments, for usage lines
	summary  string
	help     string
	// minArgs and maxArgs bound the positional arguments (-1: no maximum)
	minArgs, maxArgs int
	// flags adds the command's own flags
	flags func(fs *flag.FlagSet, e *env)
	// waits: --timeout bounds a wait and defaults to none
	waits bool
	run   func(e *env) int
}

// env is one run of a command: its arguments, flags and outputs.
type env struct {
	cmd    *command
	stdout io.Writer
	stderr io.Writer
	// parent is the process's context: it ends on Ctrl-C
	parent context.Context
	pos    []string

	json    bool
	timeout time.Duration
	conn    connFlags
	args    argList
	not     bool
	listen  string
	// readOnly hides the web page's buttons and refuses mutations
	readOnly bool
}

var commands []*command

func init() {
	commands = []*command{
		cmdInspect, cmdAdd, cmdRemove, cmdSet, cmdWhen, cmdRequest, cmdWatch, cmdStats, cmdWeb,
	}
}

func lookup(name string) *command {
	for _, c := range commands {
		if c.name == name {
			return c
		}
	}
	return nil
}

// run runs arpc with args (without the program name), writing to stdout and
// stderr, and returns the exit status. ctx ending means Ctrl-C.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return exitUsage
	}
	switch args[0] {
	case "help", "-h", "-help", "--help":
		if len(args) > 1 {
			if c := lookup(args[1]); c != nil {
				commandHelp(stdout, c)
				return exitOK
			}
		}
		manual(stdout)
		return exitOK
	}
	c := lookup(args[0])
	if c == nil {
		fmt.Fprintf(stderr, "arpc: unknown command %q\n\n", args[0])
		usage(stderr)
		return exitUsage
	}
	e := &env{cmd: c, stdout: stdout, stderr: stderr, parent: ctx}
	fs := flag.NewFlagSet("arpc "+c.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.BoolVar(&e.json, "json", false, "write JSON on stdout")
	def := defaultTimeout
	if c.waits {
		def = 0
	}
	fs.DurationVar(&e.timeout, "timeout", def, "")
	e.conn.register(fs)
	if c.flags != nil {
		c.flags(fs, e)
	}
	pos, err := parseInterleaved(fs, args[1:])
	if errors.Is(err, flag.ErrHelp) {
		commandHelp(stdout, c)
		return exitOK
	}
	if err == nil && (len(pos) < c.minArgs || (c.maxArgs >= 0 && len(pos) > c.maxArgs)) {
		err = fmt.Errorf("wrong number of arguments")
	}
	if err == nil && e.timeout < 0 {
		err = fmt.Errorf("--timeout must not be negative")
	}
	if err != nil {
		fmt.Fprintf(stderr, "arpc %s: %v\nusage: arpc %s %s\n(arpc %s --help for more)\n",
			c.name, err, c.name, c.synopsis, c.name)
		return exitUsage
	}
	e.pos = pos
	return c.run(e)
}

// parseInterleaved parses flags anywhere among the positional arguments
// (the flag package stops at the first non-flag); "--" ends the flags.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if used := len(args) - len(rest); used > 0 && args[used-1] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: arpc COMMAND ADDR [ARGS] [FLAGS]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "commands:")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, `"arpc help" prints the manual, "arpc COMMAND --help" a command's.`)
}

func manual(w io.Writer) {
	fmt.Fprintln(w, "arpc: look at, poke and watch a running aRPC machine.")
	fmt.Fprintln(w)
	usage(w)
	fmt.Fprintln(w)
	fmt.Fprint(w, commonHelp)
	fmt.Fprint(w, argsHelp)
	fmt.Fprint(w, exitHelp)
}

func commandHelp(w io.Writer, c *command) {
	fmt.Fprintf(w, "usage: arpc %s %s\n\n%s\n", c.name, c.synopsis, strings.TrimSpace(c.help))
	fmt.Fprintln(w)
	fmt.Fprint(w, commonHelp)
	if strings.Contains(c.synopsis, "--arg") {
		fmt.Fprint(w, argsHelp)
	}
	fmt.Fprint(w, exitHelp)
}

const commonHelp = `flags of every command:
  --json          write JSON on stdout: one document (watch: one per line);
                  an error is {"error": "...", "exit": N}
  --timeout D     how long the command may take (connecting and its call),
                  e.g. 500ms, 10s, 2m; default 10s. For when and request it
                  bounds the wait and defaults to none; for watch and web it
                  bounds connecting only.
  --help          this help
` + connHelp + "\n"

const exitHelp = `exit status:
  0    done: executed (also queued or no-op), the condition holds, the
       request was answered, watch or web stopped by Ctrl-C
  1    error: the server can't be reached, refused, or the call failed
  2    usage: a bad command line
  3    canceled: the machine canceled the mutation (relations, a handler)
  4    timeout: --timeout passed before the condition held or the answer came
  130  interrupted by Ctrl-C while waiting (when, request)
`
