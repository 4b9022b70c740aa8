package machinetest

import (
	"testing"

	am "github.com/arpc-go/arpc/pkg/machine"
)

// autoCases cover scenarios 31 and 32 (outcomes only) and Auto states in
// fixture R.
var autoCases = []scenario{
	{"Scenario31_AutoAdded", func(t *testing.T, f Factory) {
		s := structN()
		s[sB] = am.State{Auto: true, Require: am.S{sA}}
		m := build(t, f, s, namesN())
		active(t, m)
		res(t, m.Add1(sA, nil), am.Executed, "Add1(A)")
		active(t, m, sA, sB)
		finish(t, m)
	}},
	{"Scenario32_AutoRejected", func(t *testing.T, f Factory) {
		s := structN()
		s[sC] = am.State{Auto: true, Require: am.S{sB}}
		s[sD] = am.State{Auto: true, Require: am.S{sB}}
		m := build(t, f, s, namesN())
		res(t, m.Add1(sA, nil), am.Executed, "Add1(A)")
		active(t, m, sA)
		// Once B is there, both Auto states follow in the same pass.
		res(t, m.Add1(sB, nil), am.Executed, "Add1(B)")
		active(t, m, sA, sB, sC, sD)
		finish(t, m)
	}},
	{"FixtureR_AutoFollowsRequire", func(t *testing.T, f Factory) {
		m := build(t, f, structR(), namesN())
		// B{Multi, Add C}; A{Auto, Require C} joins.
		res(t, m.Add1(sB, nil), am.Executed, "Add1(B)")
		active(t, m, sA, sB, sC)
		res(t, m.Remove1(sB, nil), am.Executed, "Remove1(B)")
		active(t, m, sA, sC)
		// Set(D): D{Add C B}, and A (Auto, Require C) comes back.
		res(t, m.Set(am.S{sD}, nil), am.Executed, "Set(D)")
		active(t, m, sA, sB, sC, sD)
		finish(t, m)
	}},
}
