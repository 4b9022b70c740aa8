package machine_test

import (
	"context"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	am "github.com/arpc-go/arpc/pkg/machine"
)

func TestScenario38_WhenFromGoroutine(t *testing.T) {
	m := newN(t)
	when := m.When(am.S{"B", "C"}, nil)
	var wg sync.WaitGroup
	wg.Go(func() {
		m.Add1("B", nil)
		m.Add1("C", nil)
	})
	waitClosed(t, when, "When(B C)")
	wg.Wait()
	assertActive(t, m, "B", "C")
	finish(t, m)
}

func TestScenario39_WhenTwoWaiters(t *testing.T) {
	m := newN(t)
	w1 := m.When(am.S{"A", "B"}, nil)
	w2 := m.When(am.S{"A", "B"}, nil)
	assert.False(t, isClosed(w1))
	assert.Equal(t, am.Executed, m.Add(am.S{"A", "B"}, nil))
	// Conditions are checked after each transition, before Add returns.
	assert.True(t, isClosed(w1), "waiter 1 released")
	assert.True(t, isClosed(w2), "waiter 2 released")
	finish(t, m)
}

func TestScenario40_AlreadyTrue(t *testing.T) {
	m := newN(t, "A")
	assert.True(t, isClosed(m.When(am.S{"A"}, nil)), "When(A) with A active")
	assert.True(t, isClosed(m.WhenNot(am.S{"B"}, nil)), "WhenNot(B) with B inactive")
	assert.True(t, isClosed(m.When(am.S{}, nil)), "When(S{})")
	assert.False(t, isClosed(m.When(am.S{"A", "B"}, nil)), "When(A B) with B inactive")
	finish(t, m)
}

func TestScenario41_WhenNotOneAtATime(t *testing.T) {
	m := newN(t, "B", "C")
	w := m.WhenNot(am.S{"B", "C"}, nil)
	assert.Equal(t, am.Executed, m.Remove1("B", nil))
	assert.False(t, isClosed(w), "C still active")
	assert.Equal(t, am.Executed, m.Remove1("C", nil))
	assert.True(t, isClosed(w))
	assert.False(t, m.Is1(am.Exception), "no Exception")
	assert.NoError(t, m.Err())
	finish(t, m)
}

func TestScenario42_WhenNotTwoWaiters(t *testing.T) {
	m := newN(t, "A", "B")
	w1 := m.WhenNot(am.S{"A", "B"}, nil)
	w2 := m.WhenNot(am.S{"A", "B"}, nil)
	assert.Equal(t, am.Executed, m.Remove(am.S{"A", "B"}, nil))
	assert.True(t, isClosed(w1))
	assert.True(t, isClosed(w2))
	finish(t, m)
}

func TestScenario43_CtxCancelsWaiters(t *testing.T) {
	m := newN(t, "A", "B")
	ctx, cancel := context.WithCancel(context.Background())
	wTime := m.WhenTime(am.S{"A", "B"}, am.Time{3, 3}, ctx)
	wArgs := m.WhenArgs("B", am.A{"foo": "bar"}, ctx)
	wC := m.When1("C", ctx)
	for _, ch := range []<-chan struct{}{wTime, wArgs, wC} {
		assert.False(t, isClosed(ch))
	}
	cancel()
	waitClosed(t, wTime, "WhenTime")
	waitClosed(t, wArgs, "WhenArgs")
	waitClosed(t, wC, "When1(C)")
	// None was resolved: the states are unchanged, and a later match of the
	// old conditions does not panic on a released binding.
	assertActive(t, m, "A", "B")
	assert.Equal(t, am.Executed, m.Add1("C", nil))
	assert.Equal(t, am.Executed, m.Remove(am.S{"A", "B"}, nil))
	assert.Equal(t, am.Executed, m.Add(am.S{"A", "B"}, am.A{"foo": "bar"}))
	assert.Equal(t, am.Time{3, 3}, m.Time(am.S{"A", "B"}))
	finish(t, m)
}

func TestScenario44_WhenArgsWithoutEmitters(t *testing.T) {
	m := newM(t, structR(), namesN, nil, nil)
	w := m.WhenArgs("B", am.A{"foo": "bar"}, nil)
	assert.Equal(t, am.Executed, m.Add1("B", am.A{"foo": "foo"}))
	assert.False(t, isClosed(w), "foo=foo does not match")
	assert.Equal(t, am.Executed, m.Add1("B", am.A{"foo": "bar"}))
	assert.True(t, isClosed(w), "foo=bar matches")
	finish(t, m)
}

func TestScenario44_WhenArgsWithEmitters(t *testing.T) {
	r := newRecorder()
	m := newM(t, structN(), namesN, r, nil)
	w := m.WhenArgs("B", am.A{"foo": "bar", "n": 2}, nil)
	// A non-Multi state produces BState only when it newly activates.
	assert.Equal(t, am.Executed, m.Add1("B", am.A{"foo": "bar", "n": 1}))
	assert.False(t, isClosed(w))
	assert.Equal(t, am.Executed, m.Add1("B", am.A{"foo": "bar", "n": 2}))
	assert.False(t, isClosed(w), "B already active: no BState")
	assert.Equal(t, am.Executed, m.Remove1("B", nil))
	assert.Equal(t, am.Executed, m.Add1("B", am.A{"foo": "bar", "n": 2, "extra": 3}))
	assert.True(t, isClosed(w))
	finish(t, m)
}

func TestScenario45_WhenTime(t *testing.T) {
	m := newN(t, "A", "B")
	require.Equal(t, am.Time{1, 1}, m.Time(am.S{"A", "B"}))
	w := m.WhenTime(am.S{"A", "B"}, am.Time{5, 2}, nil)
	m.Remove(am.S{"A", "B"}, nil)
	m.Add(am.S{"A", "B"}, nil)
	require.Equal(t, am.Time{3, 3}, m.Time(am.S{"A", "B"}))
	assert.False(t, isClosed(w), "open at (3,3)")
	m.Remove1("A", nil)
	m.Add1("A", nil)
	require.Equal(t, am.Time{5, 3}, m.Time(am.S{"A", "B"}))
	assert.True(t, isClosed(w), "closed at (5,3)")
	// Mismatched lengths close at once.
	assert.True(t, isClosed(m.WhenTime(am.S{"A", "B"}, am.Time{9}, nil)))
	finish(t, m)
}

func TestWhenTicksAndTicksEq(t *testing.T) {
	m := newN(t, "A")
	rel := m.WhenTicks("A", 2, nil)
	abs := m.WhenTicksEq("A", 2, nil)
	m.Remove1("A", nil)
	assert.False(t, isClosed(rel), "WhenTicks(A, 2) after 1 tick")
	assert.True(t, isClosed(abs), "WhenTicksEq(A, 2) at 2")
	m.Add1("A", nil)
	assert.True(t, isClosed(rel), "WhenTicks(A, 2) after 2 ticks")
	assert.True(t, isClosed(m.WhenTicksEq("A", 1, nil)), "already past")
	finish(t, m)
}

func TestWhenErr(t *testing.T) {
	m := newN(t)
	//lint:ignore SA1012 a nil ctx is accepted by the API and tested here
	w := m.WhenErr(nil)
	assert.False(t, isClosed(w))
	m.AddErr(assert.AnError, nil)
	assert.True(t, isClosed(w))
	finish(t, m)
}
