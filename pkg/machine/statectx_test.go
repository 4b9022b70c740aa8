package machine_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	am "github.com/arpc-go/arpc/pkg/machine"
)

func TestScenario54_StateCtx(t *testing.T) {
	var ctx, enterCtx context.Context
	r := newRecorder().
		on("AEnter", func(e *am.Event) { enterCtx = e.Machine.NewStateCtx("A") }).
		on("AState", func(e *am.Event) { ctx = e.Machine.NewStateCtx("A") })
	m := newM(t, structN(), namesN, r, nil)
	assert.Equal(t, am.Executed, m.Add1("A", nil))
	require.NotNil(t, ctx)
	assert.NoError(t, ctx.Err(), "live while A is active")
	require.NotNil(t, enterCtx)
	assert.Error(t, enterCtx.Err(), "taken in AEnter (A not active yet): already canceled")

	assert.Equal(t, am.Executed, m.Remove(am.S{"A"}, nil))
	assert.Error(t, ctx.Err(), "canceled by the transition that removed A")
	assertActive(t, m)
	finish(t, m)
}

func TestStateCtxMultiReentry(t *testing.T) {
	s := structN()
	s["B"] = am.State{Multi: true}
	m := newM(t, s, namesN, nil, nil, "B")
	ctx := m.NewStateCtx("B")
	assert.Equal(t, am.Executed, m.Add1("B", nil))
	assert.Equal(t, uint64(3), m.Tick("B"))
	assert.NoError(t, ctx.Err(), "Multi re-entry does not cancel")
	finish(t, m)
	assert.Error(t, ctx.Err(), "disposal cancels")
}
