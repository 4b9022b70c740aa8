package main

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	am "github.com/arpc-go/arpc/pkg/machine"
)

// stateView is one state of a machine as the commands print it.
type stateView struct {
	Name    string   `json:"name"`
	Active  bool     `json:"active"`
	Tick    uint64   `json:"tick"`
	Auto    bool     `json:"auto,omitempty"`
	Multi   bool     `json:"multi,omitempty"`
	Add     []string `json:"add,omitempty"`
	Require []string `json:"require,omitempty"`
	Remove  []string `json:"remove,omitempty"`
	After   []string `json:"after,omitempty"`
	// Args are the arguments of an active state's last activation, as
	// text (inspect only).
	Args map[string]string `json:"args,omitempty"`
}

// machineView is a machine's schema and clock, read from a mirror.
type machineView struct {
	ID     string      `json:"id"`
	Addr   string      `json:"addr"`
	Active []string    `json:"active"`
	States []stateView `json:"states"`
	// LastError is the source machine's last error, if any.
	LastError string `json:"lastError,omitempty"`
}

// viewOf reads a machine's schema and current clock from mach.
func viewOf(mach am.Api, id, addr string) machineView {
	names := mach.StateNames()
	schema := mach.GetStruct()
	t := mach.Time(names)
	v := machineView{ID: id, Addr: addr, Active: []string{}, States: make([]stateView, len(names))}
	for i, n := range names {
		st := schema[n]
		v.States[i] = stateView{
			Name: n, Tick: t[i], Active: am.IsActiveTick(t[i]),
			Auto: st.Auto, Multi: st.Multi,
			Add: st.Add, Require: st.Require, Remove: st.Remove, After: st.After,
		}
		if v.States[i].Active {
			v.Active = append(v.Active, n)
		}
	}
	if err := mach.Err(); err != nil {
		v.LastError = err.Error()
	}
	return v
}

// relations describes a state's relations in one line.
func (s stateView) relations() string {
	var parts []string
	for _, r := range []struct {
		tag string
		l   []string
	}{{"add", s.Add}, {"require", s.Require}, {"remove", s.Remove}, {"after", s.After}} {
		if len(r.l) > 0 {
			parts = append(parts, r.tag+" "+strings.Join(r.l, " "))
		}
	}
	return strings.Join(parts, "; ")
}

func (s stateView) flags() string {
	var f []string
	if s.Auto {
		f = append(f, "auto")
	}
	if s.Multi {
		f = append(f, "multi")
	}
	return strings.Join(f, ",")
}

// printStates writes the states as a table: active ones marked with *.
func printStates(w io.Writer, states []stateView) {
	var buf strings.Builder
	tw := tabwriter.NewWriter(&buf, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  STATE\tTICK\tFLAGS\tRELATIONS")
	for _, s := range states {
		mark := " "
		if s.Active {
			mark = "*"
		}
		fmt.Fprintf(tw, "%s %s\t%d\t%s\t%s\n", mark, s.Name, s.Tick, s.flags(), s.relations())
	}
	_ = tw.Flush()
	for line := range strings.Lines(buf.String()) {
		fmt.Fprintln(w, strings.TrimRight(line, " \n"))
	}
}

// jsonArgs makes mutation arguments printable as JSON: values JSON can't
// encode are written as their text.
func jsonArgs(a am.A) map[string]any {
	out := make(map[string]any, len(a))
	for k, v := range a {
		switch x := v.(type) {
		case error:
			out[k] = x.Error()
		case time.Duration:
			out[k] = x.String()
		default:
			if _, err := json.Marshal(v); err != nil {
				out[k] = fmt.Sprint(v)
			} else {
				out[k] = v
			}
		}
	}
	return out
}

// textArgs prints mutation arguments as key=value pairs, sorted by key.
func textArgs(a am.A) string {
	keys := make([]string, 0, len(a))
	for k := range a {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		v := a[k]
		if s, ok := v.(string); ok {
			parts[i] = fmt.Sprintf("%s=%q", k, s)
		} else {
			parts[i] = fmt.Sprintf("%s=%v", k, v)
		}
	}
	return strings.Join(parts, " ")
}

// tickList prints the ticks of states as "A:1 B:2".
func tickList(ticks am.Clock, states []string) string {
	parts := make([]string, len(states))
	for i, s := range states {
		parts[i] = fmt.Sprintf("%s:%d", s, ticks[s])
	}
	return strings.Join(parts, " ")
}

// textArgText prints arguments already rendered as text, sorted by key.
func textArgText(a map[string]string) string {
	keys := make([]string, 0, len(a))
	for k := range a {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + a[k]
	}
	return strings.Join(parts, " ")
}
