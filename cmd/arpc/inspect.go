package main

import (
	"fmt"
)

var cmdInspect = &command{
	name:     "inspect",
	synopsis: "ADDR",
	summary:  "states, active ones with their ticks, relations, clients",
	help: `Connects to the machine served at ADDR (host:port), learns its schema, and
prints every state with its tick (odd: active, marked *), its flags (auto,
multi) and its relations, then the arguments of each active state's last
activation (as the server renders them: strings quoted, long values cut),
the source machine's last error, and the server's connections and sessions
(arguments and clients when the server shares them).`,
	minArgs: 1, maxArgs: 1,
	run: runInspect,
}

// inspectView is the --json output of inspect.
type inspectView struct {
	machineView
	Clients *clientsView `json:"clients,omitempty"`
}

// clientsView counts a server's clients, this one included.
type clientsView struct {
	Connections int `json:"connections"`
	Sessions    int `json:"sessions"`
}

func runInspect(e *env) int {
	ctx, cancel := e.ctx()
	defer cancel()
	c, err := e.dial(ctx, false)
	if err != nil {
		return e.fail(err)
	}
	defer c.Close()
	v := inspectView{machineView: viewOf(c.Worker, c.Worker.ID(), e.pos[0])}
	v.Clients = fetchClients(ctx, c)
	if args, err := c.ActiveArgs(ctx); err == nil {
		for i, s := range v.States {
			v.States[i].Args = args[s.Name]
		}
	}
	if e.json {
		e.writeJSON(v)
		return exitOK
	}
	fmt.Fprintf(e.stdout, "machine %s at %s: %d states, %d active\n", v.ID, v.Addr, len(v.States), len(v.Active))
	printStates(e.stdout, v.States)
	for _, s := range v.States {
		if len(s.Args) > 0 {
			fmt.Fprintf(e.stdout, "args of %s: %s\n", s.Name, textArgText(s.Args))
		}
	}
	if v.LastError != "" {
		fmt.Fprintf(e.stdout, "last error: %s\n", v.LastError)
	}
	if v.Clients != nil {
		fmt.Fprintf(e.stdout, "clients: %d connections, %d sessions (this one included)\n",
			v.Clients.Connections, v.Clients.Sessions)
	}
	return exitOK
}
