package machine_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	am "github.com/arpc-go/arpc/pkg/machine"
)

// The handler-order scenarios bind a recorder with every handler of A-D
// (including AnyAny, XEnd and XState) and compare the full recorded order
// with the one the spec prescribes.

func TestScenario18_HandlerOrderSetC(t *testing.T) {
	r := newRecorder()
	m := newM(t, structN(), namesN, r, nil, "A", "B")
	assert.Equal(t, am.Executed, m.Set(am.S{"C"}, nil))
	assert.Equal(t, fields("AExit AC AAny BExit BC BAny AnyC CEnter AnyAny AEnd BEnd CState"), r.take())
	assertActive(t, m, "C")
	finish(t, m)
}

func TestScenario19_HandlerOrderSetBC(t *testing.T) {
	r := newRecorder()
	m := newM(t, structN(), namesN, r, nil, "A")
	assert.Equal(t, am.Executed, m.Set(am.S{"B", "C"}, nil))
	assert.Equal(t, fields("AExit AB AC AAny AnyB BEnter AnyC CEnter AnyAny AEnd BState CState"), r.take())
	assertActive(t, m, "B", "C")
	finish(t, m)
}

func TestScenario20_HandlerOrderSetDC(t *testing.T) {
	r := newRecorder()
	m := newM(t, structN(), namesN, r, nil, "A", "B")
	assert.Equal(t, am.Executed, m.Set(am.S{"D", "C"}, nil))
	assert.Equal(t, fields("AExit AD AC AAny BExit BD BC BAny AnyD DEnter AnyC CEnter AnyAny "+
		"AEnd BEnd DState CState"), r.take())
	assertActive(t, m, "C", "D")
	finish(t, m)
}

func TestScenario21_SetActiveState(t *testing.T) {
	r := newRecorder()
	m := newM(t, structN(), namesN, r, nil, "A", "B")
	assert.Equal(t, am.Executed, m.Set(am.S{"A"}, nil))
	calls := r.take()
	assert.NotContains(t, calls, "AExit")
	assert.NotContains(t, calls, "AnyA")
	assert.NotContains(t, calls, "AEnter")
	assert.NotContains(t, calls, "AState")
	assert.Equal(t, fields("AA BExit BA BAny AnyAny BEnd"), calls)
	assertActive(t, m, "A")
	assert.Equal(t, uint64(1), m.Tick("A"))
	finish(t, m)
}

func TestScenario22_AfterOrdersHandlers(t *testing.T) {
	s := structN()
	s["C"] = am.State{After: am.S{"D"}}
	s["A"] = am.State{After: am.S{"B"}}
	r := newRecorder()
	m := newM(t, s, namesN, r, nil, "A", "B")
	assert.Equal(t, am.Executed, m.Set(am.S{"C", "D"}, nil))
	assert.Equal(t, fields("BExit BD BC BAny AExit AD AC AAny AnyD DEnter AnyC CEnter AnyAny "+
		"BEnd AEnd DState CState"), r.take())
	finish(t, m)
}

func TestScenario23_AnyAnyPlacement(t *testing.T) {
	t.Run("Accepted", func(t *testing.T) {
		r := newRecorder()
		m := newM(t, structN(), namesN, r, nil)
		assert.Equal(t, am.Executed, m.Add1("A", nil))
		assert.Equal(t, fields("AnyA AEnter AnyAny AState"), r.take())
		finish(t, m)
	})
	t.Run("EnterCanceled", func(t *testing.T) {
		r := newRecorder("AEnter")
		m := newM(t, structN(), namesN, r, nil)
		assert.Equal(t, am.Canceled, m.Add1("A", nil))
		assert.Equal(t, fields("AnyA AEnter AnyAny"), r.take())
		assertActive(t, m)
		finish(t, m)
	})
	t.Run("RequireRejected", func(t *testing.T) {
		s := structN()
		s["A"] = am.State{Require: am.S{"B"}}
		r := newRecorder()
		m := newM(t, s, namesN, r, nil)
		assert.Equal(t, am.Canceled, m.Add1("A", nil))
		assert.Equal(t, fields("AnyAny"), r.take())
		assertActive(t, m)
		finish(t, m)
	})
	t.Run("AnyAnyCancels", func(t *testing.T) {
		r := newRecorder("AnyAny")
		m := newM(t, structN(), namesN, r, nil)
		assert.Equal(t, am.Canceled, m.Add1("A", nil))
		assert.Equal(t, fields("AnyA AEnter AnyAny"), r.take())
		assertActive(t, m)
		assert.Equal(t, uint64(0), m.Tick("A"))
		finish(t, m)
	})
}

func TestScenario24_SelfHandlerCancels(t *testing.T) {
	r := newRecorder("AA")
	m := newM(t, structN(), namesN, r, nil, "A")
	assert.Equal(t, am.Canceled, m.Set(am.S{"A", "B"}, nil))
	calls := r.take()
	assert.Equal(t, 1, count(calls, "AA"))
	assert.NotContains(t, calls, "AnyB")
	assert.Equal(t, fields("AA AnyAny"), calls)
	assertActive(t, m, "A")
	finish(t, m)
}

func TestScenario25_SelfThenEnter(t *testing.T) {
	r := newRecorder()
	m := newM(t, structN(), namesN, r, nil, "A")
	assert.Equal(t, am.Executed, m.Set(am.S{"A", "B"}, nil))
	assert.Equal(t, fields("AA AnyB BEnter AnyAny BState"), r.take())
	assertActive(t, m, "A", "B")
	finish(t, m)
}

func TestScenario26_SelfOnlyForCalled(t *testing.T) {
	r := newRecorder()
	m := newM(t, structN(), namesN, r, nil, "A")
	assert.Equal(t, am.Executed, m.Add(am.S{"B"}, nil))
	assert.Equal(t, am.Executed, m.Add(am.S{"A"}, nil))
	calls := r.take()
	assert.Equal(t, 0, count(calls, "BB"))
	assert.Equal(t, 1, count(calls, "AA"))
	assert.Equal(t, fields("AnyB BEnter AnyAny BState AA AnyAny"), calls)
	finish(t, m)
}

func TestScenario27_EnterCancels(t *testing.T) {
	r := newRecorder("DEnter")
	m := newM(t, structN(), namesN, r, nil, "A")
	log := capture(m, am.LogOps)
	assert.Equal(t, am.Canceled, m.Set(am.S{"D"}, nil))
	assertActive(t, m, "A")
	log.has(t, "[cancel] (D) by DEnter")
	assert.Equal(t, fields("AExit AD AAny AnyD DEnter AnyAny"), r.take())

	assert.Equal(t, am.Canceled, m.Add(am.S{"D"}, nil))
	assertActive(t, m, "A")
	log.has(t, "[cancel] (D A) by DEnter")
	finish(t, m)
}

func TestScenario28_ExitCancelsRemove(t *testing.T) {
	r := newRecorder("AExit")
	m := newM(t, structN(), namesN, r, nil, "A")
	log := capture(m, am.LogOps)
	assert.Equal(t, am.Canceled, m.Remove(am.S{"A"}, nil))
	assertActive(t, m, "A")
	log.has(t, "[cancel] () by AExit")
	assert.Equal(t, fields("AExit AnyAny"), r.take())
	finish(t, m)
}

func TestScenario29_TransitionInsideEnter(t *testing.T) {
	var (
		active, targets am.S
		called, isA     bool
		str             string
	)
	r := newRecorder().on("DEnter", func(e *am.Event) {
		active = e.Machine.ActiveStates()
		isA = e.Machine.Is1("A")
		tr := e.Transition()
		if tr == nil {
			return
		}
		targets = tr.TargetStates
		called = e.Mutation().StateWasCalled("D")
		str = tr.String()
	})
	m := newM(t, structN(), namesN, r, nil, "A")
	assert.Equal(t, am.Executed, m.Set(am.S{"D"}, nil))
	assert.Equal(t, am.S{"A"}, active)
	assert.True(t, isA)
	assert.Equal(t, am.S{"D"}, targets)
	assert.True(t, called, "StateWasCalled(D)")
	want := []string{
		"D -> requested", "D -> set", "A -> remove",
		"Ahandler   (AExit)", "D -> Ahandler   (AD)", "Any -> Ahandler   (AAny)", "D -> Anyhandler   (AnyD)",
	}
	lines := strings.Split(str, "\n")
	// The expected lines appear in this order (other lines may be between).
	i := 0
	for _, l := range lines {
		if i < len(want) && l == want[i] {
			i++
		}
	}
	assert.Equal(t, len(want), i, "Transition.String() lacks %q (in order); got:\n%s", want[min(i, len(want)-1)], str)
	assertActive(t, m, "D")
	finish(t, m)
}

func TestScenario30_ArgsReachHandlers(t *testing.T) {
	r := newRecorder()
	m := newM(t, structN(), namesN, r, nil, "A")
	addArgs := am.A{"add": 1}
	remArgs := am.A{"rem": "x"}
	setArgs := am.A{"set": true}
	assert.Equal(t, am.Executed, m.Add(am.S{"B"}, addArgs))
	assert.Equal(t, am.Executed, m.Remove(am.S{"A"}, remArgs))
	assert.Equal(t, am.Executed, m.Set(am.S{"C"}, setArgs))
	assert.Equal(t, am.A{"add": 1}, r.argsOf("BEnter"))
	assert.Equal(t, am.A{"rem": "x"}, r.argsOf("AExit"))
	assert.Equal(t, am.A{"set": true}, r.argsOf("CState"))
	// Nil args reach handlers as an empty map.
	assert.Equal(t, am.Executed, m.Add1("D", nil))
	require.NotNil(t, r.argsOf("DEnter"))
	assert.Empty(t, r.argsOf("DEnter"))
	finish(t, m)
}

// A handler's step is recorded once the handler returned: inside DEnter the
// transition lists the handlers that ran before it, not DEnter itself; after
// the transition both are listed, in order.
func TestHandlerStepRecordedAfterReturn(t *testing.T) {
	var inside string
	var held *am.Transition
	r := newRecorder().on("DEnter", func(e *am.Event) {
		held = e.Transition()
		inside = held.String()
	})
	m := newM(t, structN(), namesN, r, nil)
	assert.Equal(t, am.Executed, m.Add1("D", nil))
	assert.Contains(t, inside, "AnyD", "AnyD ran before DEnter")
	assert.NotContains(t, inside, "DEnter", "DEnter's own step isn't recorded yet")
	after := held.String()
	assert.Contains(t, after, "DEnter")
	assert.Less(t, strings.Index(after, "AnyD"), strings.Index(after, "DEnter"))
	finish(t, m)
}
