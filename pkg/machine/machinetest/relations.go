package machinetest

import (
	"testing"

	am "github.com/arpc-go/arpc/pkg/machine"
)

// relationsCases cover scenarios 11-17 as observable state, and the
// transitive Add implication (to any depth).
var relationsCases = []scenario{
	{"Scenario11_RemoveRelation", func(t *testing.T, f Factory) {
		s := structN()
		s[sC] = am.State{Remove: am.S{sD}}

		m := build(t, f, s, namesN())
		res(t, m.Add1(sD, nil), am.Executed, "setup Add1(D)")
		res(t, m.Add1(sC, nil), am.Executed, "Add1(C)")
		active(t, m, sC)
		finish(t, m)

		m = build(t, f, s, namesN())
		res(t, m.Add1(sD, nil), am.Executed, "setup Add1(D)")
		res(t, m.Set(am.S{sC, sD}, nil), am.Canceled, "Set(C D)")
		active(t, m, sD)
		finish(t, m)
	}},
	{"Scenario12_MutualRemove", func(t *testing.T, f Factory) {
		s := structN()
		s[sC] = am.State{Remove: am.S{sD}}
		s[sD] = am.State{Remove: am.S{sC}}

		m := build(t, f, s, namesN())
		res(t, m.Add1(sD, nil), am.Executed, "setup Add1(D)")
		res(t, m.Set(am.S{sC}, nil), am.Executed, "Set(C)")
		active(t, m, sC)
		res(t, m.Set(am.S{sD}, nil), am.Executed, "Set(D)")
		active(t, m, sD)
		finish(t, m)

		m = build(t, f, s, namesN())
		res(t, m.Add1(sD, nil), am.Executed, "setup Add1(D)")
		res(t, m.Add(am.S{sC}, nil), am.Executed, "Add(C)")
		active(t, m, sC)
		res(t, m.Add(am.S{sD}, nil), am.Executed, "Add(D)")
		active(t, m, sD)
		// Called states that remove each other always cancel.
		res(t, m.Add(am.S{sC, sD}, nil), am.Canceled, "Add(C D)")
		active(t, m, sD)
		finish(t, m)
	}},
	{"Scenario13_RemoveAndAdd", func(t *testing.T, f Factory) {
		s := structN()
		s[sA] = am.State{Remove: am.S{sD}}
		s[sC] = am.State{Add: am.S{sD}}
		m := build(t, f, s, namesN())
		res(t, m.Set(am.S{sC}, nil), am.Executed, "Set(C)")
		active(t, m, sC, sD)
		res(t, m.Set(am.S{sA, sC}, nil), am.Executed, "Set(A C)")
		active(t, m, sA, sC)
		finish(t, m)
	}},
	{"Scenario14_Require", func(t *testing.T, f Factory) {
		s := structN()
		s[sC] = am.State{Require: am.S{sD}}

		m := build(t, f, s, namesN())
		res(t, m.Add1(sA, nil), am.Executed, "setup Add1(A)")
		res(t, m.Set(am.S{sC, sD}, nil), am.Executed, "Set(C D)")
		active(t, m, sC, sD)
		finish(t, m)

		m = build(t, f, s, namesN())
		res(t, m.Add1(sA, nil), am.Executed, "setup Add1(A)")
		res(t, m.Set(am.S{sC, sA}, nil), am.Canceled, "Set(C A)")
		active(t, m, sA)
		res(t, m.Add1(sC, nil), am.Canceled, "Add1(C) without D")
		active(t, m, sA)
		finish(t, m)
	}},
	{"Scenario15_RemoveEachOtherImplied", func(t *testing.T, f Factory) {
		s := am.Struct{
			sA:  {Remove: am.S{sB}},
			sB:  {Remove: am.S{sA}},
			"Z": {Add: am.S{sB}},
		}
		m := build(t, f, s, am.S{sA, sB, "Z", am.Exception})
		res(t, m.Set(am.S{"Z"}, nil), am.Executed, "Set(Z)")
		active(t, m, "Z", sB)
		finish(t, m)
	}},
	{"Scenario16_WetDryWater", func(t *testing.T, f Factory) {
		s := am.Struct{
			"Wet":   {Require: am.S{"Water"}},
			"Dry":   {Remove: am.S{"Wet"}},
			"Water": {Add: am.S{"Wet"}, Remove: am.S{"Dry"}},
		}
		m := build(t, f, s, am.S{"Wet", "Dry", "Water", am.Exception})
		res(t, m.Set(am.S{"Dry"}, nil), am.Executed, "Set(Dry)")
		active(t, m, "Dry")
		res(t, m.Set(am.S{"Water"}, nil), am.Executed, "Set(Water)")
		active(t, m, "Water", "Wet")
		// Removing Water cascades to Wet, which requires it.
		res(t, m.Remove1("Water", nil), am.Executed, "Remove1(Water)")
		active(t, m)
		finish(t, m)
	}},
	{"Scenario17_CleanedSchema", func(t *testing.T, f Factory) {
		s := structN()
		s[sA] = am.State{Remove: am.S{sA, sB, sC}, Add: am.S{sC}, After: am.S{sA}}
		m := build(t, f, s, namesN())
		st := m.GetStruct()
		a, ok := st[sA]
		if !ok {
			t.Fatalf("GetStruct() has no A: %v", st)
		}
		sEq(t, a.Remove, am.S{sB}, "A.Remove")
		sEq(t, a.Add, am.S{sC}, "A.Add")
		if len(a.After) != 0 {
			t.Fatalf("A.After = %v, want empty", a.After)
		}
		finish(t, m)
	}},
	{"AddImplicationIsTransitive", func(t *testing.T, f Factory) {
		// Add implication is transitive: A→B→C→D with Add(A) gives A B C D.
		s := structN()
		s[sA] = am.State{Add: am.S{sB}}
		s[sB] = am.State{Add: am.S{sC}}
		s[sC] = am.State{Add: am.S{sD}}
		m := build(t, f, s, namesN())
		res(t, m.Add1(sA, nil), am.Executed, "Add1(A)")
		active(t, m, sA, sB, sC, sD)
		finish(t, m)
	}},
	{"AddImplicationCycleIsSafe", func(t *testing.T, f Factory) {
		s := structN()
		s[sA] = am.State{Add: am.S{sB}}
		s[sB] = am.State{Add: am.S{sC}}
		s[sC] = am.State{Add: am.S{sA}}
		m := build(t, f, s, namesN())
		res(t, m.Add1(sB, nil), am.Executed, "Add1(B)")
		active(t, m, sA, sB, sC)
		res(t, m.Set(am.S{sD}, nil), am.Executed, "Set(D)")
		active(t, m, sD)
		finish(t, m)
	}},
}
