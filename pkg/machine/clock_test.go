package machine_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	am "github.com/arpc-go/arpc/pkg/machine"
)

// clockSequence runs the spec's clock sequence (B is Multi) and checks every step.
func clockSequence(t *testing.T) *am.Machine {
	t.Helper()
	s := structN()
	s["B"] = am.State{Multi: true}
	m := newM(t, s, namesN, nil, nil)
	abcd := am.S{"A", "B", "C", "D"}
	for _, step := range []struct {
		typ    am.MutationType
		states am.S
		want   am.Time
	}{
		{am.MutationAdd, am.S{"A", "B"}, am.Time{1, 1, 0, 0}},
		{am.MutationAdd, am.S{"A", "B"}, am.Time{1, 3, 0, 0}},
		{am.MutationAdd, am.S{"A", "B", "C"}, am.Time{1, 5, 1, 0}},
		{am.MutationSet, am.S{"D"}, am.Time{2, 6, 2, 1}},
		{am.MutationAdd, am.S{"D", "C"}, am.Time{2, 6, 3, 1}},
		{am.MutationRemove, am.S{"B", "C"}, am.Time{2, 6, 4, 1}},
		{am.MutationAdd, am.S{"A", "B"}, am.Time{3, 7, 4, 1}},
	} {
		var res am.Result
		switch step.typ {
		case am.MutationAdd:
			res = m.Add(step.states, nil)
		case am.MutationRemove:
			res = m.Remove(step.states, nil)
		case am.MutationSet:
			res = m.Set(step.states, nil)
		}
		require.Equal(t, am.Executed, res, "%s %v", step.typ, step.states)
		require.Equal(t, step.want, m.Time(abcd), "after %s %v", step.typ, step.states)
	}
	return m
}

func TestScenario46_TickSequence(t *testing.T) {
	m := clockSequence(t)
	before := m.Time(nil)
	assert.Equal(t, am.Executed, m.Add(am.S{"C"}, nil))
	now := m.Time(nil)
	assert.Equal(t, am.Time{3, 7, 5, 1}, m.Time(am.S{"A", "B", "C", "D"}))
	assert.True(t, am.IsTimeAfter(now, before))
	assert.False(t, am.IsTimeAfter(before, now))
	assert.False(t, am.IsTimeAfter(now, now), "equal is not after")
	finish(t, m)
}

func TestScenario47_Clock(t *testing.T) {
	m := clockSequence(t)
	assert.Equal(t, am.Clock{"A": 3, "B": 7, "C": 4, "D": 1, am.Exception: 0}, m.Clock(nil))
	assert.Equal(t, am.Clock{"A": 3, "B": 7}, m.Clock(am.S{"A", "B"}))
	assert.Equal(t, uint64(3), m.Tick("A"))
	assert.Equal(t, am.Time{3, 7, 4, 1, 0}, m.Time(nil))
	assert.Equal(t, uint64(15), m.TimeSum(nil))
	assert.Equal(t, uint64(10), m.TimeSum(am.S{"A", "B"}))
	finish(t, m)
}

func TestScenario48_IsClockIsTime(t *testing.T) {
	m := newN(t)
	full, fullT := m.Clock(nil), m.Time(nil)
	onlyA, onlyAT := m.Clock(am.S{"A"}), m.Time(am.S{"A"})
	assert.True(t, m.IsClock(full), "unchanged")
	assert.True(t, m.IsTime(fullT, nil), "unchanged")
	assert.True(t, m.IsClock(onlyA), "unchanged")
	assert.True(t, m.IsTime(onlyAT, am.S{"A"}), "unchanged")
	m.Add(am.S{"A", "B"}, nil)
	assert.False(t, m.IsClock(full))
	assert.False(t, m.IsTime(fullT, nil))
	assert.False(t, m.IsClock(onlyA))
	assert.False(t, m.IsTime(onlyAT, am.S{"A"}))
	finish(t, m)
}

func TestScenario49_IsActiveTick(t *testing.T) {
	assert.True(t, am.IsActiveTick(1))
	assert.True(t, am.IsActiveTick(6548735))
	assert.False(t, am.IsActiveTick(0))
	assert.False(t, am.IsActiveTick(6548734))
	assert.True(t, am.Time{1, 2, 3}.Is1(0))
	assert.False(t, am.Time{1, 2, 3}.Is1(1))
	assert.True(t, am.Time{1, 2, 3}.Is([]int{0, 2}))
	assert.False(t, am.Time{1, 2, 3}.Is([]int{0, 1}))
	assert.False(t, am.Time{1, 2, 3}.Is(nil), "an empty list gives false")
}

func TestMockClock(t *testing.T) {
	m := newN(t)
	am.MockClock(m, am.Clock{"A": 5, "B": 2, "C": 0, "D": 0, am.Exception: 0})
	assert.Equal(t, uint64(5), m.Tick("A"))
	assert.Equal(t, uint64(2), m.Tick("B"))
	finish(t, m)
}
