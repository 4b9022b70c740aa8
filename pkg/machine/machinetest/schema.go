package machinetest

import (
	"slices"
	"strings"
	"testing"

	am "github.com/arpc-go/arpc/pkg/machine"
)

// inspectR is Inspect(nil) of fixture R with A and C active (scenario 59).
const inspectR = `A:
  State:   true 1
  Auto:    true
  Require: C

B:
  State:   false 0
  Multi:   true
  Add:     C

C:
  State:   true 1
  After:   D

D:
  State:   false 0
  Add:     C B

Exception:
  State:   false 0
  Multi:   true

`

// schemaCases cover StateNames, Has, Index, Export, Inspect and GetStruct.
var schemaCases = []scenario{
	{"StateNamesHasIndex", func(t *testing.T, f Factory) {
		names := am.S{sD, sB, am.Exception, sA, sC}
		m := build(t, f, structN(), names)
		sEq(t, m.StateNames(), names, "StateNames()")
		for i, name := range names {
			if got := m.Index(name); got != i {
				t.Fatalf("Index(%s) = %d, want %d", name, got, i)
			}
			if !m.Has1(name) {
				t.Fatalf("Has1(%s) = false", name)
			}
		}
		if !m.Has(names) {
			t.Fatal("Has(all names) = false")
		}
		// Time(nil) and StringAll follow the verified order.
		res(t, m.Add1(sA, nil), am.Executed, "Add1(A)")
		timeEq(t, m.Time(nil), am.Time{0, 0, 0, 1, 0}, "Time(nil)")
		strEq(t, m.StringAll(), "(A:1)[D:0 B:0 Exception:0 C:0]", "StringAll()")
		// The returned names are a copy.
		got := m.StateNames()
		got[0] = "Mutated"
		sEq(t, m.StateNames(), names, "StateNames() after mutating a copy")
		finish(t, m)
	}},
	{"Export", func(t *testing.T, f Factory) {
		m := newN(t, f, sA, sC)
		res(t, m.Remove1(sC, nil), am.Executed, "Remove1(C)")
		res(t, m.Add1(sC, nil), am.Executed, "Add1(C)")
		e := m.Export()
		if e == nil {
			t.Fatal("Export() = nil")
		}
		if len(e.ID) == 0 {
			t.Fatal("Export().ID is empty")
		}
		sEq(t, e.StateNames, namesN(), "Export().StateNames")
		timeEq(t, e.Time, am.Time{1, 0, 3, 0, 0}, "Export().Time")
		timeEq(t, e.Time, m.Time(nil), "Export().Time vs Time(nil)")
		finish(t, m)
	}},
	{"Scenario59_Inspect", func(t *testing.T, f Factory) {
		m := build(t, f, structR(), namesN())
		// C activates A (Auto, Require C).
		res(t, m.Add1(sC, nil), am.Executed, "Add1(C)")
		active(t, m, sA, sC)
		strEq(t, m.Inspect(nil), inspectR, "Inspect(nil)")
		strEq(t, m.Inspect(am.S{sC}), "C:\n  State:   true 1\n  After:   D\n\n", "Inspect(C)")

		res(t, m.Remove1(sC, nil), am.Executed, "Remove1(C)")
		res(t, m.Add1(sB, nil), am.Executed, "Add1(B)")
		res(t, m.Add1(sD, nil), am.Executed, "Add1(D)")
		out := m.Inspect(am.S{am.Exception, sA, sB, sC, sD})
		var got []string
		for _, line := range strings.Split(out, "\n") {
			if len(line) > 0 && line[0] != ' ' {
				got = append(got, line)
			}
		}
		sEq(t, got, am.S{"Exception:", "A:", "B:", "C:", "D:"}, "Inspect headers")
		contains(t, out, "Exception:\n  State:   false 0\n", "Inspect")
		contains(t, out, "A:\n  State:   true 3\n", "Inspect")
		contains(t, out, "B:\n  State:   true 1\n", "Inspect")
		contains(t, out, "C:\n  State:   true 3\n", "Inspect")
		contains(t, out, "D:\n  State:   true 1\n", "Inspect")
		finish(t, m)
	}},
	{"GetStruct", func(t *testing.T, f Factory) {
		m := build(t, f, structR(), namesN())
		st := m.GetStruct()
		var keys am.S
		for k := range st {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		sEq(t, keys, am.S{sA, sB, sC, sD, am.Exception}, "GetStruct() keys")
		if a := st[sA]; !a.Auto || a.Multi || !slices.Equal(a.Require, am.S{sC}) {
			t.Fatalf("GetStruct()[A] = %+v, want Auto, Require [C]", a)
		}
		if b := st[sB]; !b.Multi || b.Auto || !slices.Equal(b.Add, am.S{sC}) {
			t.Fatalf("GetStruct()[B] = %+v, want Multi, Add [C]", b)
		}
		if c := st[sC]; !slices.Equal(c.After, am.S{sD}) {
			t.Fatalf("GetStruct()[C] = %+v, want After [D]", c)
		}
		if d := st[sD]; !slices.Equal(d.Add, am.S{sC, sB}) {
			t.Fatalf("GetStruct()[D] = %+v, want Add [C B]", d)
		}
		if e := st[am.Exception]; !e.Multi {
			t.Fatalf("GetStruct()[Exception] = %+v, want Multi", e)
		}
		finish(t, m)
	}},
}
