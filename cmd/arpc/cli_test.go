package main

import (
	"bufio"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	am "github.com/arpc-go/arpc/pkg/machine"
	"github.com/arpc-go/arpc/pkg/rpc"
)

func TestHelpAndUsage(t *testing.T) {
	r := arpc(t, "--help")
	require.Equal(t, exitOK, r.code)
	for _, c := range commands {
		require.Contains(t, r.stdout, "  "+c.name+" ")
	}
	require.Contains(t, r.stdout, "exit status:")

	for _, c := range commands {
		r = arpc(t, c.name, "--help")
		require.Equal(t, exitOK, r.code, c.name)
		require.Contains(t, r.stdout, "usage: arpc "+c.name, c.name)
		r = arpc(t, "help", c.name)
		require.Equal(t, exitOK, r.code, c.name)
		require.Contains(t, r.stdout, "usage: arpc "+c.name, c.name)
	}
	r = arpc(t, "add", "--help")
	require.Contains(t, r.stdout, "mutation arguments")

	for _, args := range [][]string{
		{}, {"frobnicate"}, {"inspect"}, {"add", "127.0.0.1:1"}, {"inspect", "--bogus", "x"},
		{"request", "a", "b"}, {"add", "a", "B", "--arg", "novalue"}, {"inspect", "a", "--timeout", "-1s"},
	} {
		r = arpc(t, args...)
		require.Equal(t, exitUsage, r.code, "%v: %s", args, r.stderr)
		require.NotEmpty(t, r.stderr)
	}
}

func TestUnreachable(t *testing.T) {
	r := arpc(t, "inspect", "127.0.0.1:1", "--json")
	require.Equal(t, exitError, r.code)
	var out struct {
		Error string
		Exit  int
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &out), r.stdout)
	require.Equal(t, exitError, out.Exit)
	require.Contains(t, out.Error, "network")
}

func TestInspect(t *testing.T) {
	srv, src, _ := testServer(t)
	r := arpc(t, "inspect", srv.Addr)
	require.Equal(t, exitOK, r.code, r.stderr)
	require.Contains(t, r.stdout, "machine desk at "+srv.Addr+": 10 states, 2 active")
	require.Regexp(t, `\* Start +1 +add Ready`, r.stdout)
	require.Regexp(t, `\* Ready +1 +require Start`, r.stdout)
	require.Regexp(t, `  Requested +0 +multi +require Ready`, r.stdout)
	require.Regexp(t, `  Busy +0 +remove Idle`, r.stdout)

	require.Equal(t, am.Executed, src.Add1("Busy", nil))
	r = arpc(t, "inspect", srv.Addr, "--json")
	require.Equal(t, exitOK, r.code, r.stderr)
	var v inspectView
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &v), r.stdout)
	require.Equal(t, "desk", v.ID)
	require.Equal(t, []string{"Start", "Ready", "Busy"}, v.Active)
	require.Len(t, v.States, len(testNames))
	for i, s := range v.States {
		require.Equal(t, testNames[i], s.Name)
		require.Equal(t, src.Tick(s.Name), s.Tick, s.Name)
		require.Equal(t, src.Is1(s.Name), s.Active, s.Name)
	}
	require.Equal(t, []string{"Requested"}, v.States[3].After)
	require.True(t, v.States[2].Multi)

	// the arguments of active states
	r = arpc(t, "add", srv.Addr, "Args", "--arg", "n=7", "--arg", "who=ann")
	require.Equal(t, exitOK, r.code, r.stderr)
	r = arpc(t, "inspect", srv.Addr)
	require.Contains(t, r.stdout, "args of Args: n=7 who=\"ann\"\n")
	r = arpc(t, "inspect", srv.Addr, "--json")
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &v), r.stdout)
	require.Equal(t, map[string]string{"n": "7", "who": `"ann"`}, v.States[8].Args)
}

func TestMutations(t *testing.T) {
	srv, src, h := testServer(t)

	r := arpc(t, "add", srv.Addr, "Busy")
	require.Equal(t, exitOK, r.code, r.stderr)
	require.Equal(t, "add Busy: executed\nactive: Start Ready Busy\n", r.stdout)
	require.True(t, src.Is1("Busy"))

	r = arpc(t, "add", srv.Addr, "Idle", "--json")
	require.Equal(t, exitOK, r.code, r.stderr)
	var v mutationView
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &v), r.stdout)
	require.Equal(t, "executed", v.Result)
	require.Equal(t, []string{"Start", "Ready", "Idle"}, v.Active)
	require.Equal(t, map[string]uint64{"Idle": 1}, v.Ticks)
	require.False(t, src.Is1("Busy"), "Idle removes Busy")

	r = arpc(t, "remove", srv.Addr, "Idle")
	require.Equal(t, exitOK, r.code, r.stderr)
	require.False(t, src.Is1("Idle"))

	r = arpc(t, "set", srv.Addr, "Start", "Busy")
	require.Equal(t, exitOK, r.code, r.stderr)
	require.Equal(t, am.S{"Start", "Busy"}, src.ActiveStates(), "Set keeps Start active, so it adds no Ready")

	// typed arguments, flags among the states
	r = arpc(t, "add", "--arg", "n=42", srv.Addr, "--arg", "f=2.5", "Args", "--arg", `s="a b"`,
		"--arg", "b=true", "--arg", "d=1.5s", "--arg", "id:string=007", "--arg", "w=word")
	require.Equal(t, exitOK, r.code, r.stderr)
	require.Equal(t, am.A{"n": 42, "f": 2.5, "s": "a b", "b": true, "d": 1500 * time.Millisecond,
		"id": "007", "w": "word"}, h.lastArgs())

	// the machine says no: exit 3
	r = arpc(t, "add", srv.Addr, "Vetoed", "--json")
	require.Equal(t, exitCanceled, r.code, r.stderr)
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &v), r.stdout)
	require.Equal(t, "canceled", v.Result)
	require.Equal(t, exitCanceled, v.Exit)
	require.Equal(t, "arpc add: transition canceled by VetoedEnter\n", r.stderr)
	require.NotContains(t, r.stderr, "canceled: transition canceled")

	// an unknown state is an error: exit 1, nothing sent
	r = arpc(t, "add", srv.Addr, "Nope")
	require.Equal(t, exitError, r.code)
	require.Contains(t, r.stderr, "Nope")
}

func TestWhen(t *testing.T) {
	srv, src, _ := testServer(t)

	r := arpc(t, "when", srv.Addr, "Start", "Ready")
	require.Equal(t, exitOK, r.code, r.stderr)
	require.Equal(t, "active: Start:1 Ready:1\n", r.stdout)

	r = arpc(t, "when", srv.Addr, "Busy", "--timeout", "100ms", "--json")
	require.Equal(t, exitTimeout, r.code, r.stderr)
	require.Contains(t, r.stderr, "not active within 100ms (Busy:0)")

	r = arpc(t, "when", srv.Addr, "Busy", "--not")
	require.Equal(t, exitOK, r.code, r.stderr)
	require.Equal(t, "inactive: Busy:0\n", r.stdout)

	r = arpc(t, "when", srv.Addr, "Nope")
	require.Equal(t, exitError, r.code)

	// a wait that a later mutation satisfies
	w := start("when", srv.Addr, "Busy", "--json")
	require.Eventually(t, func() bool { return srv.ClientCount() == 1 }, deadline, time.Millisecond)
	require.Equal(t, am.Executed, src.Add1("Busy", nil))
	require.Equal(t, exitOK, w.wait(t), w.errb.String())
	var v whenView
	require.NoError(t, json.Unmarshal([]byte(w.out.String()), &v))
	require.True(t, v.Holds)
	require.Equal(t, map[string]uint64{"Busy": 1}, v.Ticks)

	// Ctrl-C while waiting: 130
	w = start("when", srv.Addr, "Idle")
	require.Eventually(t, func() bool { return srv.ClientCount() == 1 }, deadline, time.Millisecond)
	require.Equal(t, exitInterrupted, w.interrupt(t))
}

func TestRequest(t *testing.T) {
	srv, _, _ := testServer(t)
	r := arpc(t, "request", srv.Addr, "Requested", "Done", "--arg", "order=7")
	require.Equal(t, exitOK, r.code, r.stderr)
	require.Regexp(t, `^answered \(id [^)]+\): by="desk" result=42\n$`, r.stdout)

	r = arpc(t, "request", srv.Addr, "Requested", "Done", "--json")
	require.Equal(t, exitOK, r.code, r.stderr)
	var v requestView
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &v), r.stdout)
	require.True(t, v.Answered)
	require.NotEmpty(t, v.ID)
	require.Equal(t, map[string]any{"result": float64(42), "by": "desk"}, v.Args)

	r = arpc(t, "request", srv.Addr, "Ignored", "Done", "--timeout", "100ms")
	require.Equal(t, exitTimeout, r.code, r.stderr)

	r = arpc(t, "request", srv.Addr, "Vetoed", "Done", "--timeout", "5s")
	require.Equal(t, exitCanceled, r.code, r.stderr)
}

func TestWatch(t *testing.T) {
	srv, src, _ := testServer(t)
	w := start("watch", srv.Addr)
	w.waitOutput(t, "active: Start Ready\n")
	require.Equal(t, am.Executed, src.Add1("Busy", nil))
	w.waitOutput(t, " +Busy  (Busy:1)\n")
	require.Equal(t, am.Executed, src.Add1("Idle", nil))
	w.waitOutput(t, " +Idle -Busy  (Busy:2 Idle:1)\n")
	require.Equal(t, exitOK, w.interrupt(t), w.errb.String())
	require.Contains(t, w.out.String(), "watching desk at "+srv.Addr)
}

func TestWatchJSON(t *testing.T) {
	srv, src, _ := testServer(t)
	w := start("watch", srv.Addr, "--json")
	w.waitOutput(t, `"event":"snapshot"`)
	require.Equal(t, am.Executed, src.Add1("Busy", nil))
	w.waitOutput(t, `"entered":["Busy"]`)
	require.Equal(t, exitOK, w.interrupt(t), w.errb.String())

	sc := bufio.NewScanner(strings.NewReader(w.out.String()))
	var events []change
	for sc.Scan() {
		var ch change
		require.NoError(t, json.Unmarshal(sc.Bytes(), &ch), sc.Text())
		events = append(events, ch)
	}
	require.GreaterOrEqual(t, len(events), 2)
	require.Equal(t, "snapshot", events[0].Event)
	require.Equal(t, uint64(1), events[0].Ticks["Start"])
	require.Equal(t, "change", events[1].Event)
	require.Equal(t, []string{"Busy"}, events[1].Entered)
	require.Equal(t, []string{"Start", "Ready", "Busy"}, events[1].Active)
}

// TestWatchReconnects: a watch outlives a server restart on the same port
// and says so.
func TestWatchReconnects(t *testing.T) {
	srv, src, _ := testServer(t)
	w := start("watch", srv.Addr)
	w.waitOutput(t, "active: Start Ready\n")
	addr := srv.Addr
	srv.Stop(true)
	w.waitOutput(t, " disconnected\n")
	srv2, err := rpc.Listen(t.Context(), addr, src)
	require.NoError(t, err)
	defer srv2.Close()
	w.waitOutput(t, " connected\n")
	require.Equal(t, am.Executed, src.Add1("Busy", nil))
	w.waitOutput(t, "+Busy")
	require.Equal(t, exitOK, w.interrupt(t), w.errb.String())
}

func TestDiffClock(t *testing.T) {
	names := am.S{"A", "B", "C", "D", "E"}
	ch := diffClock(names, am.Time{0, 1, 1, 2, 3}, am.Time{1, 2, 3, 4, 3})
	require.Equal(t, []string{"A", "C", "D"}, ch.Entered, "A entered, C re-entered, D passed through")
	require.Equal(t, []string{"B", "D"}, ch.Left)
	require.Equal(t, map[string]uint64{"A": 1, "B": 2, "C": 3, "D": 4}, ch.Ticks)
	require.Equal(t, []string{"A", "C", "E"}, ch.Active)
}

func TestParseArg(t *testing.T) {
	for in, want := range map[string]any{
		"k=42": 42, "k=-7": -7, "k=+3": 3, "k=0.5": 0.5, "k=1e3": 1000.0, "k=.5": 0.5,
		"k=true": true, "k=false": false, "k=null": nil,
		`k="x y\n"`: "x y\n", `k='a\b'`: `a\b`, "k=hello": "hello", "k=": "", "k=a=b": "a=b",
		"k=250ms": 250 * time.Millisecond, "k=1h2m": time.Hour + 2*time.Minute,
		"k:string=42": "42", "k:int=5": 5, "k:float=5": 5.0, "k:bool=1": true,
		"k:duration=2s":               2 * time.Second,
		"k:time=2025-01-02T03:04:05Z": time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC),
		"k=12abc":                     "12abc", "k=TRUE": "TRUE",
	} {
		k, v, err := parseArg(in)
		require.NoError(t, err, in)
		require.Equal(t, "k", k, in)
		require.Equal(t, want, v, in)
	}
	for _, bad := range []string{"noequals", "=v", `k="open`, "k='open", "k:int=x", "k:nope=1",
		"k=99999999999999999999", "k:time=yesterday"} {
		_, _, err := parseArg(bad)
		require.Error(t, err, bad)
	}
	var l argList
	require.NoError(t, l.Set("a=1"))
	require.Error(t, l.Set("a=2"), "a key twice")
}
