package machine_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	am "github.com/arpc-go/arpc/pkg/machine"
)

func TestScenario55_NewCommon(t *testing.T) {
	s := am.Struct{"A": {}, am.Exception: {Multi: true}}
	r := newRecorder()
	m, err := am.NewCommon(context.Background(), "common-id", s, am.S{"A", am.Exception}, r, nil, nil)
	require.NoError(t, err)
	require.NotNil(t, m)
	assert.Equal(t, "common-id", m.ID)
	assert.True(t, m.StatesVerified)
	assert.Equal(t, am.S{"A", am.Exception}, m.StateNames())
	assert.Equal(t, am.Executed, m.Add1("A", nil))
	assert.Equal(t, fields("AnyA AEnter AnyAny AState"), r.take(), "the one emitter is bound")
	finish(t, m)

	// Errors of the steps are returned.
	m, err = am.NewCommon(context.Background(), "bad", s, am.S{"A", "Nope"}, nil, nil, nil)
	assert.Error(t, err)
	if m != nil {
		finish(t, m)
	}
	m, err = am.NewCommon(context.Background(), "bad2", s, am.S{"A", am.Exception}, panicEnter{}, nil, nil)
	assert.Error(t, err, "handlers must be a pointer to a struct")
	if m != nil {
		finish(t, m)
	}
}

func TestScenario56_NoOpTracer(t *testing.T) {
	tr := &am.NoOpTracer{}
	m := newM(t, structN(), namesN, nil, &am.Opts{Tracers: []am.Tracer{tr}})
	require.Len(t, m.Tracers, 1)
	assert.Same(t, tr, m.Tracers[0])
	assert.False(t, tr.Inheritable())
	assert.Equal(t, am.Executed, m.Add1("A", nil))
	assertActive(t, m, "A")
	finish(t, m)
}

func TestScenario57_SetStruct(t *testing.T) {
	m := newM(t, structN(), namesN, nil, nil, "A", "C")
	s := am.StructMerge(m.GetStruct(), am.Struct{
		"A": {Multi: true},
		"B": {Remove: am.S{"C"}},
		"D": {Add: am.S{"E"}},
		"E": {},
	})
	require.NoError(t, m.SetStruct(s, am.S{"A", "B", "C", "D", "E", am.Exception}))
	assert.Equal(t, am.S{"A", "B", "C", "D", "E", am.Exception}, m.StateNames())
	// Ticks are kept.
	assert.Equal(t, uint64(1), m.Tick("A"))
	assert.Equal(t, am.Executed, m.Set(am.S{"A", "B", "D"}, nil))
	assertActive(t, m, "A", "B", "D", "E")
	finish(t, m)
}

func TestScenario58_VerifyStatesErrors(t *testing.T) {
	m := newN(t)
	err := m.VerifyStates(am.S{"A", "A", "B", "Err"})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "state A duplicated")
	assert.Contains(t, err.Error(), "state Err is not defined")
	assert.Error(t, m.VerifyStates(am.S{"A", "A"}))
	assert.Error(t, m.VerifyStates(am.S{"A", "B"}))
	// A failed verify keeps the previous order.
	assert.Equal(t, namesN, m.StateNames())
	finish(t, m)
}

func TestScenario59_Inspect(t *testing.T) {
	m := newM(t, structR(), namesN, nil, nil)
	m.Add1("C", nil) // A (Auto, Require C) follows
	assertActive(t, m, "A", "C")
	want := strings.Join([]string{
		"A:", "  State:   true 1", "  Auto:    true", "  Require: C", "",
		"B:", "  State:   false 0", "  Multi:   true", "  Add:     C", "",
		"C:", "  State:   true 1", "  After:   D", "",
		"D:", "  State:   false 0", "  Add:     C B", "",
		"Exception:", "  State:   false 0", "  Multi:   true", "", "",
	}, "\n")
	assert.Equal(t, want, m.Inspect(nil))

	m.Remove1("C", nil)
	m.Add1("B", nil)
	m.Add1("D", nil)
	require.NoError(t, m.VerifyStates(am.S{am.Exception, "A", "B", "C", "D"}))
	var heads []string
	for _, l := range strings.Split(m.Inspect(nil), "\n") {
		if strings.HasPrefix(l, "  State:") {
			heads = append(heads, strings.Fields(l)[2])
		} else if strings.HasSuffix(l, ":") {
			heads = append(heads, l)
		}
	}
	assert.Equal(t, fields("Exception: 0 A: 3 B: 1 C: 3 D: 1"), heads)
	finish(t, m)
}

func TestScenario60_ExportImport(t *testing.T) {
	src := newN(t, "A", "C")
	src.Remove1("C", nil)
	src.Add(am.S{"B", "C"}, nil)
	data := src.Export()
	require.NotNil(t, data)
	assert.Equal(t, src.ID, data.ID)
	assert.Equal(t, namesN, data.StateNames)
	assert.Equal(t, am.Time{1, 1, 3, 0, 0}, data.Time)

	dst := newM(t, structN(), nil, nil, nil)
	require.NoError(t, dst.Import(data))
	assert.Equal(t, src.ID, dst.ID)
	assert.Equal(t, src.String(), dst.String())
	assert.Equal(t, src.StringAll(), dst.StringAll())
	assert.True(t, dst.StatesVerified)
	assertActive(t, dst, "A", "B", "C")
	finish(t, src)
	finish(t, dst)
}

func TestScenario61_OptsHelpers(t *testing.T) {
	o := am.OptsWithDebug(&am.Opts{})
	assert.True(t, o.DontPanicToException)
	assert.Greater(t, o.HandlerTimeout, time.Duration(0))

	tr := &am.NoOpTracer{}
	o = am.OptsWithTracers(&am.Opts{}, tr)
	assert.Equal(t, []am.Tracer{tr}, o.Tracers)
	o = am.OptsWithTracers(&am.Opts{})
	assert.Nil(t, o.Tracers, "no tracers passed: unchanged")

	mapper := am.NewArgsMapper([]string{"x"}, 0)
	parent := newM(t, structN(), nil, nil, &am.Opts{Tracers: []am.Tracer{tr}, LogArgs: mapper})
	o = am.OptsWithParentTracers(&am.Opts{}, parent)
	assert.Equal(t, []am.Tracer{tr}, o.Tracers)
	require.NotNil(t, o.LogArgs)
	assert.Equal(t, map[string]string{"x": "1"}, o.LogArgs(am.A{"x": 1, "y": 2}))
	finish(t, parent)
}

// Waiters registered before SetStruct still work after the names changed.
func TestSetStructKeepsWaiters(t *testing.T) {
	m := newN(t, "C")
	wAB := m.When(am.S{"A", "B"}, nil)
	wNotC := m.WhenNot1("C", nil)
	wTime := m.WhenTime(am.S{"D"}, am.Time{1}, nil)
	wArgs := m.WhenArgs("B", am.A{"k": 1}, nil)
	ctxC := m.NewStateCtx("C")
	s := am.StructMerge(m.GetStruct(), am.Struct{"E": {}})
	require.NoError(t, m.SetStruct(s, am.S{"E", am.Exception, "D", "C", "B", "A"}))
	assert.Equal(t, am.Time{0, 0, 0, 1, 0, 0}, m.Time(nil))
	assert.False(t, isClosed(wAB))
	assert.Equal(t, am.Executed, m.Add(am.S{"A", "B"}, am.A{"k": 1}))
	assert.True(t, isClosed(wAB), "When(A B)")
	assert.True(t, isClosed(wArgs), "WhenArgs(B)")
	assert.False(t, isClosed(wNotC))
	assert.NoError(t, ctxC.Err())
	assert.Equal(t, am.Executed, m.Remove1("C", nil))
	assert.True(t, isClosed(wNotC), "WhenNot1(C)")
	assert.Error(t, ctxC.Err(), "state ctx of C")
	assert.False(t, isClosed(wTime))
	assert.Equal(t, am.Executed, m.Add1("D", nil))
	assert.True(t, isClosed(wTime), "WhenTime(D)")
	assert.Equal(t, am.Executed, m.Add1("E", nil))
	assertActive(t, m, "A", "B", "D", "E")
	finish(t, m)
}
