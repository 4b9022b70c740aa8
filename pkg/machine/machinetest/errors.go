package machinetest

import (
	"errors"
	"testing"

	am "github.com/arpc-go/arpc/pkg/machine"
)

// errMachinetest is the error the suite adds. Only its message is compared,
// because a remote target transports the text of an error, not its identity.
var errMachinetest = errors.New("machinetest: planned failure")

// errEq checks that err is non-nil and has the message of want.
func errEq(t *testing.T, err, want error, what string) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: nil error, want %q", what, want.Error())
	}
	if err.Error() != want.Error() {
		t.Fatalf("%s: error %q, want %q", what, err.Error(), want.Error())
	}
}

// errorsCases cover AddErr, AddErrState, Err, IsErr and scenario 52's
// observable outcome.
var errorsCases = []scenario{
	{"AddErr", func(t *testing.T, f Factory) {
		m := newN(t, f, sA)
		if m.IsErr() {
			t.Fatal("IsErr() = true on a fresh machine")
		}
		if err := m.Err(); err != nil {
			t.Fatalf("Err() = %v on a fresh machine, want nil", err)
		}
		res(t, m.AddErr(errMachinetest, nil), am.Executed, "AddErr")
		if !m.IsErr() {
			t.Fatal("IsErr() = false after AddErr")
		}
		active(t, m, sA, am.Exception)
		errEq(t, m.Err(), errMachinetest, "Err()")
		// Exception is Multi: another AddErr re-enters it (+2).
		tick := m.Tick(am.Exception)
		err2 := errors.New("machinetest: second failure")
		res(t, m.AddErr(err2, nil), am.Executed, "second AddErr")
		if got := m.Tick(am.Exception); got != tick+2 {
			t.Fatalf("Tick(Exception) = %d after a second AddErr, want %d", got, tick+2)
		}
		errEq(t, m.Err(), err2, "Err() after a second AddErr")
		finish(t, m)
	}},
	{"Scenario52_AddErrState", func(t *testing.T, f Factory) {
		s := structN()
		s["ErrX"] = am.State{Require: am.S{am.Exception}}
		m := build(t, f, s, am.S{sA, sB, sC, sD, "ErrX", am.Exception})
		res(t, m.AddErrState("ErrX", errMachinetest, am.A{"k": 1}), am.Executed, "AddErrState(ErrX)")
		active(t, m, "ErrX", am.Exception)
		errEq(t, m.Err(), errMachinetest, "Err()")
		res(t, m.Remove1(am.Exception, nil), am.Executed, "Remove1(Exception)")
		active(t, m)
		if m.IsErr() {
			t.Fatal("IsErr() = true after Remove1(Exception)")
		}
		// Err is never cleared.
		errEq(t, m.Err(), errMachinetest, "Err() after Remove1(Exception)")
		finish(t, m)
	}},
}
