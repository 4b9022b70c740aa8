package main

import (
	"fmt"
)

var cmdWatch = &command{
	name:     "watch",
	synopsis: "ADDR",
	summary:  "prints one line per change of the machine, until Ctrl-C",
	help: `Watches the machine served at ADDR: prints the active states, then one line
per step of its clock as the mirror receives it: +STATE for a state that was
activated, -STATE for one deactivated, and the new ticks, e.g.

  15:04:05.123 +Ready -Starting  (Ready:3 Starting:4)

Steps are the server's updates: transitions that happen within its push
interval (5 ms by default) arrive merged in one line, and a state
deactivated and activated again in between shows as +STATE with a tick 2
higher. When the connection drops, arpc says so and reconnects. With --json
each line is a JSON object (event "snapshot", "change", "disconnected" or
"connected"). Ctrl-C ends it with exit status 0.`,
	minArgs: 1, maxArgs: 1,
	run: runWatch,
}

func runWatch(e *env) int {
	dctx, cancel := e.ctx()
	c, err := e.dial(dctx, true)
	cancel()
	if err != nil {
		return e.fail(err)
	}
	defer c.Close()
	print := func(ch change) {
		if e.json {
			e.writeJSONLine(ch)
		} else {
			fmt.Fprintln(e.stdout, ch.String())
		}
	}
	if !e.json {
		fmt.Fprintf(e.stdout, "watching %s at %s (Ctrl-C to stop)\n", c.Worker.ID(), e.pos[0])
	}
	print(snapshot(c.Worker))
	if err := follow(e.parent, c, print); err != nil {
		return e.fail(err)
	}
	return exitOK
}
