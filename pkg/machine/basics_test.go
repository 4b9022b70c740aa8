package machine_test

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	am "github.com/arpc-go/arpc/pkg/machine"
)

func TestScenario01_SetFromEmpty(t *testing.T) {
	m := newN(t)
	assertActive(t, m)
	assert.Equal(t, am.Executed, m.Set(am.S{"A"}, nil))
	assertActive(t, m, "A")
	finish(t, m)
}

func TestScenario02_AddThenSet(t *testing.T) {
	m := newN(t, "A")
	assert.Equal(t, am.Executed, m.Add(am.S{"B"}, nil))
	assertActive(t, m, "A", "B")
	assert.Equal(t, am.Executed, m.Set(am.S{"B"}, nil))
	assertActive(t, m, "B")
	finish(t, m)
}

func TestScenario03_Remove(t *testing.T) {
	m := newN(t, "B", "C")
	assert.Equal(t, am.Executed, m.Remove(am.S{"C"}, nil))
	assertActive(t, m, "B")
	finish(t, m)
}

// Team decision: an undefined name no longer panics; the mutation is
// canceled, queues nothing, and Err wraps ErrStateUnknown.
func TestScenario04_StateNamesAndUndefinedSet(t *testing.T) {
	m := am.New(context.Background(), structN(), nil)
	assert.ElementsMatch(t, am.S{"A", "B", "C", "D", am.Exception}, m.StateNames())

	var res am.Result
	require.NotPanics(t, func() { res = m.Set(am.S{"A", "Unknown"}, nil) })
	assert.Equal(t, am.Canceled, res)
	assert.Empty(t, m.Queue(), "nothing queued")
	assert.False(t, m.Is1("A"), "A must not be set")
	require.Error(t, m.Err())
	assert.True(t, errors.Is(m.Err(), am.ErrStateUnknown), "Err() = %v", m.Err())
	assert.Contains(t, m.Err().Error(), "Unknown")
	assert.True(t, m.Is1(am.Exception), "Exception added")
	finish(t, m)
}

func TestScenario05_NilCtxAndID(t *testing.T) {
	var nilCtx context.Context // a nil ctx is part of the tested contract
	m := am.New(nilCtx, structN(), nil)
	require.NotNil(t, m.Ctx)
	assert.Greater(t, len(m.ID), 5)
	assert.Equal(t, am.Executed, m.Add1("A", nil))
	finish(t, m)
}

func TestScenario06_IsNotAny(t *testing.T) {
	m := newN(t, "A", "B")
	assert.True(t, m.Is(am.S{"A", "B"}))
	assert.False(t, m.Is(am.S{"A", "B", "C"}))
	assert.False(t, m.Not(am.S{"A", "B"}))
	assert.False(t, m.Not(am.S{"A", "B", "C"}))
	assert.True(t, m.Not1("D"))
	assert.True(t, m.Any(am.S{"A", "B"}, am.S{"C"}))
	assert.True(t, m.Any(am.S{"A", "B", "C"}, am.S{"A"}))
	assert.False(t, m.Any(am.S{"A", "B", "C"}, am.S{"D"}))
	assert.True(t, m.Any1("D", "A"))
	assert.False(t, m.Any1("C", "D"))
	finish(t, m)
}

func TestScenario07_Switch(t *testing.T) {
	m := newN(t, "A")
	assert.Equal(t, "A", m.Switch("A", "B"))
	assert.Equal(t, "", m.Switch("C", "B"))
	finish(t, m)
}

func TestScenario08_StringStringAll(t *testing.T) {
	m := newN(t, "A", "B")
	assert.Equal(t, "(A:1 B:1)", m.String())
	assert.Equal(t, "(A:1 B:1)[C:0 D:0 Exception:0]", m.StringAll())
	finish(t, m)
}
