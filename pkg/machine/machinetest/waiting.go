package machinetest

import (
	"context"
	"testing"

	am "github.com/arpc-go/arpc/pkg/machine"
)

// waitingCases cover scenarios 38-45 and the rest of the When* family.
var waitingCases = []scenario{
	{"Scenario38_WhenFromGoroutine", func(t *testing.T, f Factory) {
		m := newN(t, f)
		when := m.When(am.S{sB, sC}, nil)
		open(t, when, "When(B C) before")
		done := make(chan am.Result, 2)
		go func() {
			done <- m.Add1(sB, nil)
			done <- m.Add1(sC, nil)
		}()
		closedWithin(t, when, "When(B C)")
		for range 2 {
			res(t, <-done, am.Executed, "Add1 from goroutine")
		}
		active(t, m, sB, sC)
		finish(t, m)
	}},
	{"Scenario39_WhenTwoWaiters", func(t *testing.T, f Factory) {
		m := newN(t, f)
		w1 := m.When(am.S{sA, sB}, nil)
		w2 := m.When(am.S{sA, sB}, nil)
		res(t, m.Add1(sA, nil), am.Executed, "Add1(A)")
		open(t, w1, "When(A B) #1 with only A")
		open(t, w2, "When(A B) #2 with only A")
		res(t, m.Add(am.S{sA, sB}, nil), am.Executed, "Add(A B)")
		closedWithin(t, w1, "When(A B) #1")
		closedWithin(t, w2, "When(A B) #2")
		finish(t, m)
	}},
	{"Scenario40_AlreadyTrue", func(t *testing.T, f Factory) {
		m := newN(t, f, sA)
		closedNow(t, m.When(am.S{sA}, nil), "When(A) with A active")
		closedNow(t, m.When1(sA, nil), "When1(A) with A active")
		closedNow(t, m.When(am.S{}, nil), "When(S{})")
		closedNow(t, m.WhenNot(am.S{sB}, nil), "WhenNot(B) with B inactive")
		closedNow(t, m.WhenNot1(sB, nil), "WhenNot1(B) with B inactive")
		open(t, m.When1(sB, nil), "When1(B) with B inactive")
		open(t, m.WhenNot1(sA, nil), "WhenNot1(A) with A active")
		finish(t, m)
	}},
	{"Scenario41_WhenNotOneAtATime", func(t *testing.T, f Factory) {
		m := newN(t, f, sB, sC)
		w := m.WhenNot(am.S{sB, sC}, nil)
		res(t, m.Remove1(sB, nil), am.Executed, "Remove1(B)")
		open(t, w, "WhenNot(B C) with C active")
		res(t, m.Remove1(sC, nil), am.Executed, "Remove1(C)")
		closedWithin(t, w, "WhenNot(B C)")
		if m.IsErr() {
			t.Fatalf("Exception is active: %v", m.Err())
		}
		active(t, m)
		finish(t, m)
	}},
	{"Scenario42_WhenNotTwoWaiters", func(t *testing.T, f Factory) {
		m := newN(t, f, sA, sB)
		w1 := m.WhenNot(am.S{sA, sB}, nil)
		w2 := m.WhenNot(am.S{sA, sB}, nil)
		res(t, m.Remove(am.S{sA, sB}, nil), am.Executed, "Remove(A B)")
		closedWithin(t, w1, "WhenNot(A B) #1")
		closedWithin(t, w2, "WhenNot(A B) #2")
		finish(t, m)
	}},
	{"Scenario43_CtxCancelClosesWaiters", func(t *testing.T, f Factory) {
		m := newN(t, f, sA, sB)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		wTime := m.WhenTime(am.S{sA, sB}, am.Time{3, 3}, ctx)
		wArgs := m.WhenArgs(sB, am.A{"foo": "bar"}, ctx)
		wC := m.When1(sC, ctx)
		wNot := m.WhenNot1(sA, ctx)
		open(t, wTime, "WhenTime before cancel")
		open(t, wArgs, "WhenArgs before cancel")
		open(t, wC, "When1(C) before cancel")
		open(t, wNot, "WhenNot1(A) before cancel")
		cancel()
		closedWithin(t, wTime, "WhenTime after cancel")
		closedWithin(t, wArgs, "WhenArgs after cancel")
		closedWithin(t, wC, "When1(C) after cancel")
		closedWithin(t, wNot, "WhenNot1(A) after cancel")
		// None of them was resolved by a state change.
		active(t, m, sA, sB)
		timeEq(t, m.Time(am.S{sA, sB, sC}), am.Time{1, 1, 0}, "Time(A B C)")
		// An already canceled ctx closes a new waiter at once or soon.
		closedWithin(t, m.When1(sD, ctx), "When1(D) with a canceled ctx")
		finish(t, m)
	}},
	{"Scenario44_WhenArgsNoEmitters", func(t *testing.T, f Factory) {
		m := build(t, f, structR(), namesN())
		w := m.WhenArgs(sB, am.A{"foo": "bar"}, nil)
		res(t, m.Add1(sB, am.A{"foo": "foo"}), am.Executed, "Add1(B, foo=foo)")
		open(t, w, "WhenArgs(B, foo=bar) after foo=foo")
		// B is Multi, so adding it again re-enters it with the new args.
		res(t, m.Add1(sB, am.A{"foo": "bar", "other": 1}), am.Executed, "Add1(B, foo=bar)")
		closedWithin(t, w, "WhenArgs(B, foo=bar)")
		finish(t, m)
	}},
	{"Scenario45_WhenTime", func(t *testing.T, f Factory) {
		m := newN(t, f, sA, sB)
		timeEq(t, m.Time(am.S{sA, sB}), am.Time{1, 1}, "Time(A B)")
		w := m.WhenTime(am.S{sA, sB}, am.Time{5, 2}, nil)
		res(t, m.Remove(am.S{sA, sB}, nil), am.Executed, "Remove(A B)")
		res(t, m.Add(am.S{sA, sB}, nil), am.Executed, "Add(A B)")
		timeEq(t, m.Time(am.S{sA, sB}), am.Time{3, 3}, "Time(A B)")
		open(t, w, "WhenTime(A B, 5 2) at (3,3)")
		res(t, m.Remove1(sA, nil), am.Executed, "Remove1(A)")
		res(t, m.Add1(sA, nil), am.Executed, "Add1(A)")
		timeEq(t, m.Time(am.S{sA, sB}), am.Time{5, 3}, "Time(A B)")
		closedWithin(t, w, "WhenTime(A B, 5 2) at (5,3)")
		// Already reached: closed at once.
		closedNow(t, m.WhenTime(am.S{sA, sB}, am.Time{5, 3}, nil), "WhenTime reached")
		finish(t, m)
	}},
	{"WhenTicks", func(t *testing.T, f Factory) {
		m := newN(t, f, sA)
		w := m.WhenTicks(sA, 2, nil)
		res(t, m.Remove1(sA, nil), am.Executed, "Remove1(A)")
		open(t, w, "WhenTicks(A, 2) after one tick")
		res(t, m.Add1(sA, nil), am.Executed, "Add1(A)")
		closedWithin(t, w, "WhenTicks(A, 2)")
		// Relative to the tick at the call: A is at 3, so 1 more tick is 4.
		w = m.WhenTicks(sA, 1, nil)
		open(t, w, "WhenTicks(A, 1) at 3")
		res(t, m.Remove1(sA, nil), am.Executed, "Remove1(A)")
		closedWithin(t, w, "WhenTicks(A, 1)")
		finish(t, m)
	}},
	{"WhenTicksEq", func(t *testing.T, f Factory) {
		m := newN(t, f)
		w := m.WhenTicksEq(sA, 3, nil)
		res(t, m.Add1(sA, nil), am.Executed, "Add1(A)")
		res(t, m.Remove1(sA, nil), am.Executed, "Remove1(A)")
		open(t, w, "WhenTicksEq(A, 3) at 2")
		res(t, m.Add1(sA, nil), am.Executed, "Add1(A)")
		closedWithin(t, w, "WhenTicksEq(A, 3)")
		closedNow(t, m.WhenTicksEq(sA, 2, nil), "WhenTicksEq(A, 2) at 3")
		finish(t, m)
	}},
	{"WhenErr", func(t *testing.T, f Factory) {
		m := newN(t, f)
		w := m.WhenErr(context.Background())
		open(t, w, "WhenErr before AddErr")
		res(t, m.AddErr(errMachinetest, nil), am.Executed, "AddErr")
		closedWithin(t, w, "WhenErr")
		closedNow(t, m.WhenErr(context.Background()), "WhenErr with Exception active")
		ctx, cancel := context.WithCancel(context.Background())
		res(t, m.Remove1(am.Exception, nil), am.Executed, "Remove1(Exception)")
		w = m.WhenErr(ctx)
		open(t, w, "WhenErr after Remove1(Exception)")
		cancel()
		closedWithin(t, w, "WhenErr after ctx cancel")
		finish(t, m)
	}},
}
