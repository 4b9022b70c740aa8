package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	am "github.com/arpc-go/arpc/pkg/machine"
	"github.com/arpc-go/arpc/pkg/rpc"
	ssC "github.com/arpc-go/arpc/states/client"
)

// change is one step of a mirror's clock, as watch prints it and the web
// page shows it: the states that entered and left since the previous step,
// with their new ticks; or a connection event.
type change struct {
	Time time.Time `json:"time"`
	// Event is "snapshot" (the clock when watching began), "change",
	// "disconnected" or "connected".
	Event string `json:"event"`
	// Entered lists the states activated (a Multi state active before and
	// after, or a state that passed through activity, was activated again).
	Entered []string `json:"entered,omitempty"`
	// Left lists the states deactivated.
	Left []string `json:"left,omitempty"`
	// Ticks has the new ticks of the changed states (all of them in a
	// snapshot).
	Ticks map[string]uint64 `json:"ticks,omitempty"`
	// Active is the whole set of active states after the step.
	Active []string `json:"active"`
}

// diffClock describes how the clock moved from prev to now. Updates merge
// transitions, so a tick may move by more than one: a state inactive at
// both ends that moved passed through activity, one active at both ends was
// deactivated and activated again.
func diffClock(names am.S, prev, now am.Time) change {
	ch := change{Event: "change", Ticks: map[string]uint64{}, Active: []string{}}
	for i, n := range names {
		if am.IsActiveTick(now[i]) {
			ch.Active = append(ch.Active, n)
		}
		if now[i] == prev[i] {
			continue
		}
		ch.Ticks[n] = now[i]
		was, is := am.IsActiveTick(prev[i]), am.IsActiveTick(now[i])
		switch {
		case is:
			ch.Entered = append(ch.Entered, n)
		case was:
			ch.Left = append(ch.Left, n)
		default:
			ch.Entered = append(ch.Entered, n)
			ch.Left = append(ch.Left, n)
		}
	}
	return ch
}

// snapshot is the first step of a watch: the whole clock.
func snapshot(w *rpc.Worker) change {
	names := w.StateNames()
	t := w.Time(names)
	ch := change{Time: time.Now(), Event: "snapshot", Ticks: make(map[string]uint64, len(names)), Active: []string{}}
	for i, n := range names {
		ch.Ticks[n] = t[i]
		if am.IsActiveTick(t[i]) {
			ch.Active = append(ch.Active, n)
		}
	}
	return ch
}

// follow calls fn, on the caller's goroutine, for every step of c's mirror
// and every change of its connection, until ctx ends (then it returns nil)
// or the client is closed. It waits on the mirror itself (am.Select over
// one tick wait per state), so it starts no goroutine and misses nothing: a
// step that arrives while fn runs is reported after it, merged with what
// followed.
func follow(ctx context.Context, c *rpc.Client, fn func(change)) error {
	w := c.Worker
	names := w.StateNames()
	prev := w.Time(names)
	connected := c.Mach.Is1(ssC.Ready)
	cases := make([]am.SelectCase, len(names)+1)
	for {
		for i, n := range names {
			cases[i] = am.OnTime(w, am.S{n}, am.Time{prev[i] + 1})
		}
		if connected {
			cases[len(names)] = am.OnActive(c.Mach, ssC.Disconnected)
		} else {
			cases[len(names)] = am.OnActive(c.Mach, ssC.Ready)
		}
		if _, err := am.Select(ctx, cases...); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		now := w.Time(names)
		if ch := diffClock(names, prev, now); len(ch.Ticks) > 0 {
			ch.Time = time.Now()
			fn(ch)
		}
		prev = now
		if is := c.Mach.Is1(ssC.Ready); is != connected {
			connected = is
			ev := change{Time: time.Now(), Event: "disconnected", Active: w.ActiveStates()}
			if is {
				ev.Event = "connected"
			}
			fn(ev)
		}
	}
}

// String prints a change as one line of watch's output.
func (ch change) String() string {
	ts := ch.Time.Format("15:04:05.000")
	switch ch.Event {
	case "snapshot":
		return fmt.Sprintf("%s active: %s", ts, strings.Join(ch.Active, " "))
	case "change":
	default:
		return ts + " " + ch.Event
	}
	var parts []string
	for _, n := range ch.Entered {
		parts = append(parts, "+"+n)
	}
	for _, n := range ch.Left {
		parts = append(parts, "-"+n)
	}
	names := make([]string, 0, len(ch.Ticks))
	for n := range ch.Ticks {
		names = append(names, n)
	}
	slices.Sort(names)
	ticks := make([]string, len(names))
	for i, n := range names {
		ticks[i] = fmt.Sprintf("%s:%d", n, ch.Ticks[n])
	}
	return fmt.Sprintf("%s %s  (%s)", ts, strings.Join(parts, " "), strings.Join(ticks, " "))
}
