package machinetest

import (
	"context"
	"strings"
	"testing"

	am "github.com/arpc-go/arpc/pkg/machine"
)

// unknownCases cover unknown state names: no method of the API panics on an
// unknown state name. Queries treat it as an inactive state with tick 0; a
// mutation naming it returns Canceled, queues nothing and records an error
// wrapping am.ErrStateUnknown (compared here by message) with Exception
// added.
var unknownCases = []scenario{
	{"QueriesAreInactive", func(t *testing.T, f Factory) {
		m := newN(t, f, sA)
		u := unknownState
		if m.Is1(u) || m.Is(am.S{sA, u}) {
			t.Fatal("Is1/Is of an unknown state = true")
		}
		if !m.Not1(u) || !m.Not(am.S{u}) {
			t.Fatal("Not1/Not of an unknown state = false")
		}
		if m.Any1(u) || m.Any(am.S{u}) {
			t.Fatal("Any1/Any of an unknown state = true")
		}
		if m.Has1(u) || m.Has(am.S{sA, u}) {
			t.Fatal("Has1/Has of an unknown state = true")
		}
		if !m.Has(am.S{sA, am.Exception}) {
			t.Fatal("Has(A Exception) = false")
		}
		if got := m.Index(u); got != -1 {
			t.Fatalf("Index(unknown) = %d, want -1", got)
		}
		if got := m.Switch(u, sA); got != sA {
			t.Fatalf("Switch(unknown, A) = %q, want A", got)
		}
		if got := m.Tick(u); got != 0 {
			t.Fatalf("Tick(unknown) = %d, want 0", got)
		}
		timeEq(t, m.Time(am.S{sA, u}), am.Time{1, 0}, "Time(A unknown)")
		if got := m.Clock(am.S{u}); got[u] != 0 {
			t.Fatalf("Clock(unknown) = %v, want a zero tick", got)
		}
		if got := m.TimeSum(am.S{sA, u}); got != 1 {
			t.Fatalf("TimeSum(A unknown) = %d, want 1", got)
		}
		open(t, m.When1(u, nil), "When1(unknown)")
		closedNow(t, m.WhenNot1(u, nil), "WhenNot1(unknown)")
		ctx, cancel := context.WithCancel(context.Background())
		wTime := m.WhenTime(am.S{u}, am.Time{1}, ctx)
		wTicks := m.WhenTicks(u, 1, ctx)
		wArgs := m.WhenArgs(u, am.A{"k": 1}, ctx)
		open(t, wTime, "WhenTime(unknown)")
		open(t, wTicks, "WhenTicks(unknown)")
		open(t, wArgs, "WhenArgs(unknown)")
		cancel()
		closedWithin(t, wTime, "WhenTime(unknown) after cancel")
		closedWithin(t, wTicks, "WhenTicks(unknown) after cancel")
		closedWithin(t, wArgs, "WhenArgs(unknown) after cancel")
		closedNow(t, m.NewStateCtx(u).Done(), "NewStateCtx(unknown)")
		if m.IsErr() {
			t.Fatalf("a query of an unknown state added Exception: %v", m.Err())
		}
		active(t, m, sA)
		finish(t, m)
	}},
	{"MutationsAreCanceled", func(t *testing.T, f Factory) {
		u := unknownState
		muts := []struct {
			what string
			do   func(m am.Api) am.Result
		}{
			{"Add1(unknown)", func(m am.Api) am.Result { return m.Add1(u, nil) }},
			{"Add(B unknown)", func(m am.Api) am.Result { return m.Add(am.S{sB, u}, nil) }},
			{"Remove1(unknown)", func(m am.Api) am.Result { return m.Remove1(u, nil) }},
			{"Remove(A unknown)", func(m am.Api) am.Result { return m.Remove(am.S{sA, u}, nil) }},
			{"Set(B unknown)", func(m am.Api) am.Result { return m.Set(am.S{sB, u}, nil) }},
			{"AddErrState(unknown)", func(m am.Api) am.Result {
				return m.AddErrState(u, errMachinetest, nil)
			}},
		}
		for _, mut := range muts {
			m := newN(t, f, sA)
			timeA := m.Time(am.S{sA, sB})
			res(t, mut.do(m), am.Canceled, mut.what)
			err := m.Err()
			if err == nil || !strings.Contains(err.Error(), "state unknown") ||
				!strings.Contains(err.Error(), u) {
				t.Fatalf("%s: Err() = %v, want an error containing \"state unknown\" and %q",
					mut.what, err, u)
			}
			if !m.IsErr() {
				t.Fatalf("%s: Exception not active", mut.what)
			}
			// Nothing else changed.
			active(t, m, sA, am.Exception)
			timeEq(t, m.Time(am.S{sA, sB}), timeA, mut.what+": Time(A B)")
			finish(t, m)
		}
	}},
}
