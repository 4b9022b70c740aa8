package machinetest

import (
	"maps"
	"testing"

	am "github.com/arpc-go/arpc/pkg/machine"
)

// clocksCases cover scenarios 46-48: ticks, Time, Clock, Tick, TimeSum,
// IsTime and IsClock.
var clocksCases = []scenario{
	{"Scenario46_47_TickSequence", func(t *testing.T, f Factory) {
		s := structN()
		s[sB] = am.State{Multi: true}
		m := build(t, f, s, namesN())
		abcd := am.S{sA, sB, sC, sD}
		steps := []struct {
			what string
			do   func() am.Result
			want am.Time
		}{
			{"Add(A B)", func() am.Result { return m.Add(am.S{sA, sB}, nil) }, am.Time{1, 1, 0, 0}},
			{"Add(A B)", func() am.Result { return m.Add(am.S{sA, sB}, nil) }, am.Time{1, 3, 0, 0}},
			{"Add(A B C)", func() am.Result { return m.Add(am.S{sA, sB, sC}, nil) }, am.Time{1, 5, 1, 0}},
			{"Set(D)", func() am.Result { return m.Set(am.S{sD}, nil) }, am.Time{2, 6, 2, 1}},
			{"Add(D C)", func() am.Result { return m.Add(am.S{sD, sC}, nil) }, am.Time{2, 6, 3, 1}},
			{"Remove(B C)", func() am.Result { return m.Remove(am.S{sB, sC}, nil) }, am.Time{2, 6, 4, 1}},
			{"Add(A B)", func() am.Result { return m.Add(am.S{sA, sB}, nil) }, am.Time{3, 7, 4, 1}},
		}
		for _, st := range steps {
			res(t, st.do(), am.Executed, st.what)
			timeEq(t, m.Time(abcd), st.want, "Time(A B C D) after "+st.what)
		}

		// Scenario 47, with names verified as A B C D Exception.
		wantClock := am.Clock{sA: 3, sB: 7, sC: 4, sD: 1, am.Exception: 0}
		if got := m.Clock(nil); !maps.Equal(got, wantClock) {
			t.Fatalf("Clock(nil) = %v, want %v", got, wantClock)
		}
		if got := m.Clock(am.S{sA, sB}); !maps.Equal(got, am.Clock{sA: 3, sB: 7}) {
			t.Fatalf("Clock(A B) = %v, want map[A:3 B:7]", got)
		}
		if got := m.Tick(sA); got != 3 {
			t.Fatalf("Tick(A) = %d, want 3", got)
		}
		timeEq(t, m.Time(nil), am.Time{3, 7, 4, 1, 0}, "Time(nil)")
		if got := m.TimeSum(nil); got != 15 {
			t.Fatalf("TimeSum(nil) = %d, want 15", got)
		}
		if got := m.TimeSum(am.S{sA, sB}); got != 10 {
			t.Fatalf("TimeSum(A B) = %d, want 10", got)
		}

		// Scenario 46, continued.
		before := m.Time(nil)
		res(t, m.Add1(sC, nil), am.Executed, "Add1(C)")
		timeEq(t, m.Time(abcd), am.Time{3, 7, 5, 1}, "Time(A B C D) after Add1(C)")
		now := m.Time(nil)
		if !am.IsTimeAfter(now, before) {
			t.Fatalf("IsTimeAfter(%v, %v) = false, want true", now, before)
		}
		if am.IsTimeAfter(before, now) {
			t.Fatalf("IsTimeAfter(%v, %v) = true, want false", before, now)
		}
		finish(t, m)
	}},
	{"Scenario48_IsClockIsTime", func(t *testing.T, f Factory) {
		m := newN(t, f)
		fullClock, fullTime := m.Clock(nil), m.Time(nil)
		aClock, aTime := m.Clock(am.S{sA}), m.Time(am.S{sA})
		// True while nothing changed.
		if !m.IsClock(fullClock) || !m.IsTime(fullTime, nil) {
			t.Fatal("IsClock/IsTime of a fresh full snapshot = false, want true")
		}
		if !m.IsClock(aClock) || !m.IsTime(aTime, am.S{sA}) {
			t.Fatal("IsClock/IsTime of a fresh A snapshot = false, want true")
		}
		// Only changes of the listed states count.
		res(t, m.Add1(sC, nil), am.Executed, "Add1(C)")
		if !m.IsClock(aClock) || !m.IsTime(aTime, am.S{sA}) {
			t.Fatal("IsClock/IsTime of the A snapshot after Add1(C) = false, want true")
		}
		fullClock, fullTime = m.Clock(nil), m.Time(nil)
		res(t, m.Add(am.S{sA, sB}, nil), am.Executed, "Add(A B)")
		if m.IsClock(fullClock) {
			t.Fatal("IsClock(full) after Add(A B) = true, want false")
		}
		if m.IsTime(fullTime, nil) {
			t.Fatal("IsTime(full, nil) after Add(A B) = true, want false")
		}
		if m.IsClock(aClock) {
			t.Fatal("IsClock(A) after Add(A B) = true, want false")
		}
		if m.IsTime(aTime, am.S{sA}) {
			t.Fatal("IsTime(A, {A}) after Add(A B) = true, want false")
		}
		finish(t, m)
	}},
}
