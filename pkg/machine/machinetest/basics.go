package machinetest

import (
	"testing"

	am "github.com/arpc-go/arpc/pkg/machine"
)

// basicsCases cover scenarios 1-3 and 6-8: mutations, checks and printing.
var basicsCases = []scenario{
	{"Scenario01_SetFromEmpty", func(t *testing.T, f Factory) {
		m := newN(t, f)
		active(t, m)
		res(t, m.Set(am.S{sA}, nil), am.Executed, "Set(A)")
		active(t, m, sA)
		finish(t, m)
	}},
	{"Scenario02_AddThenSet", func(t *testing.T, f Factory) {
		m := newN(t, f, sA)
		res(t, m.Add(am.S{sB}, nil), am.Executed, "Add(B)")
		active(t, m, sA, sB)
		res(t, m.Set(am.S{sB}, nil), am.Executed, "Set(B)")
		active(t, m, sB)
		finish(t, m)
	}},
	{"Scenario03_Remove", func(t *testing.T, f Factory) {
		m := newN(t, f, sB, sC)
		res(t, m.Remove(am.S{sC}, nil), am.Executed, "Remove(C)")
		active(t, m, sB)
		// Remove1 of an inactive state is a no-op that still succeeds.
		res(t, m.Remove1(sD, nil), am.Executed, "Remove1(D)")
		active(t, m, sB)
		res(t, m.Add1(sD, nil), am.Executed, "Add1(D)")
		active(t, m, sB, sD)
		finish(t, m)
	}},
	{"Scenario06_IsNotAny", func(t *testing.T, f Factory) {
		m := newN(t, f, sA, sB)
		if !m.Is(am.S{sA, sB}) {
			t.Fatal("Is(A B) = false, want true")
		}
		if m.Is(am.S{sA, sB, sC}) {
			t.Fatal("Is(A B C) = true, want false")
		}
		if !m.Is(am.S{}) {
			t.Fatal("Is(S{}) = false, want true")
		}
		if !m.Is1(sA) || m.Is1(sC) {
			t.Fatalf("Is1(A)=%v Is1(C)=%v, want true false", m.Is1(sA), m.Is1(sC))
		}
		if m.Not(am.S{sA, sB}) {
			t.Fatal("Not(A B) = true, want false")
		}
		if m.Not(am.S{sA, sB, sC}) {
			t.Fatal("Not(A B C) = true, want false")
		}
		if !m.Not(am.S{sC, sD}) {
			t.Fatal("Not(C D) = false, want true")
		}
		if !m.Not1(sD) || m.Not1(sA) {
			t.Fatalf("Not1(D)=%v Not1(A)=%v, want true false", m.Not1(sD), m.Not1(sA))
		}
		if !m.Any(am.S{sA, sB}, am.S{sC}) {
			t.Fatal("Any({A B},{C}) = false, want true")
		}
		if !m.Any(am.S{sA, sB, sC}, am.S{sA}) {
			t.Fatal("Any({A B C},{A}) = false, want true")
		}
		if m.Any(am.S{sA, sC}, am.S{sD}) {
			t.Fatal("Any({A C},{D}) = true, want false")
		}
		if !m.Any1(sC, sB) || m.Any1(sC, sD) {
			t.Fatalf("Any1(C,B)=%v Any1(C,D)=%v, want true false", m.Any1(sC, sB), m.Any1(sC, sD))
		}
		finish(t, m)
	}},
	{"Scenario07_Switch", func(t *testing.T, f Factory) {
		m := newN(t, f, sA)
		if got := m.Switch(sA, sB); got != sA {
			t.Fatalf("Switch(A,B) = %q, want A", got)
		}
		if got := m.Switch(sB, sA); got != sA {
			t.Fatalf("Switch(B,A) = %q, want A", got)
		}
		if got := m.Switch(sC, sB); got != "" {
			t.Fatalf("Switch(C,B) = %q, want \"\"", got)
		}
		finish(t, m)
	}},
	{"Scenario08_StringStringAll", func(t *testing.T, f Factory) {
		m := newN(t, f)
		strEq(t, m.String(), "()", "String() when empty")
		res(t, m.Add(am.S{sB, sA}, nil), am.Executed, "Add(B A)")
		strEq(t, m.String(), "(A:1 B:1)", "String()")
		strEq(t, m.StringAll(), "(A:1 B:1)[C:0 D:0 Exception:0]", "StringAll()")
		// Logging through the API is allowed and has no visible effect.
		m.Log("machinetest %s", "log line")
		finish(t, m)
	}},
}
