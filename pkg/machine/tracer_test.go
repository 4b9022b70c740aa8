package machine_test

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	am "github.com/arpc-go/arpc/pkg/machine"
)

// hookTracer records every Tracer hook, in order.
type hookTracer struct {
	mu          sync.Mutex
	events      []string
	emitters    []string
	ends        []*am.Transition
	inheritable bool
}

func (h *hookTracer) add(ev string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.events = append(h.events, ev)
}

func (h *hookTracer) take() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	ev := h.events
	h.events = nil
	return ev
}

func (h *hookTracer) TransitionInit(*am.Transition)  { h.add("TransitionInit") }
func (h *hookTracer) TransitionStart(*am.Transition) { h.add("TransitionStart") }
func (h *hookTracer) TransitionEnd(t *am.Transition) {
	h.mu.Lock()
	h.ends = append(h.ends, t)
	h.mu.Unlock()
	h.add("TransitionEnd")
}

func (h *hookTracer) HandlerStart(_ *am.Transition, emitter, handler string) {
	h.mu.Lock()
	h.emitters = append(h.emitters, emitter)
	h.mu.Unlock()
	h.add("HandlerStart:" + handler)
}
func (h *hookTracer) HandlerEnd(_ *am.Transition, _, handler string) { h.add("HandlerEnd:" + handler) }
func (h *hookTracer) End()                                           { h.add("End") }
func (h *hookTracer) MachineInit(*am.Machine)                        { h.add("MachineInit") }
func (h *hookTracer) MachineDispose(id string)                       { h.add("MachineDispose:" + id) }
func (h *hookTracer) NewSubmachine(_, m *am.Machine)                 { h.add("NewSubmachine:" + m.ID) }
func (h *hookTracer) Inheritable() bool                              { return h.inheritable }
func (h *hookTracer) QueueEnd(*am.Machine)                           { h.add("QueueEnd") }
func (h *hookTracer) StructChange(*am.Machine, am.Struct)            { h.add("StructChange") }
func (h *hookTracer) VerifyStates(*am.Machine)                       { h.add("VerifyStates") }

// When each tracer hook fires.
func TestTracerHooks(t *testing.T) {
	h := &hookTracer{}
	m := am.New(context.Background(), structN(), &am.Opts{ID: "traced", Tracers: []am.Tracer{h}})
	assert.Equal(t, fields("MachineInit"), h.take())
	require.NoError(t, m.VerifyStates(namesN))
	assert.Equal(t, fields("VerifyStates"), h.take())
	assert.Error(t, m.VerifyStates(am.S{"A"}))
	assert.Empty(t, h.take(), "no VerifyStates hook on failure")

	r := newRecorder()
	require.NoError(t, m.BindHandlers(r))
	m.Add1("A", nil)
	assert.Equal(t, fields("TransitionInit TransitionStart "+
		"HandlerStart:AnyA HandlerEnd:AnyA HandlerStart:AEnter HandlerEnd:AEnter "+
		"HandlerStart:AnyAny HandlerEnd:AnyAny HandlerStart:AState HandlerEnd:AState "+
		"TransitionEnd QueueEnd"), h.take())
	h.mu.Lock()
	for _, e := range h.emitters {
		assert.Contains(t, e, "recorder", "emitters are named after their type")
	}
	h.mu.Unlock()

	s := am.StructMerge(m.GetStruct(), am.Struct{"E": {}})
	require.NoError(t, m.SetStruct(s, am.S{"A", "B", "C", "D", "E", am.Exception}))
	assert.Equal(t, fields("StructChange"), h.take())

	// Opts.Parent: the parent's inheritable tracers learn of the child, the
	// child gets none of them, as in asyncmachine-go.
	h.inheritable = true
	child := am.New(context.Background(), structN(), &am.Opts{ID: "child", Parent: m})
	assert.Equal(t, m.ID, child.ParentID)
	assert.Empty(t, child.Tracers)
	assert.Equal(t, fields("NewSubmachine:child"), h.take())
	finish(t, child)

	m.Dispose()
	waitClosed(t, m.WhenDisposed(), "WhenDisposed")
	ev := h.take()
	require.NotEmpty(t, ev)
	assert.Equal(t, "MachineDispose:traced", ev[0])
	assert.NotContains(t, ev, "End", "the engine never calls End")
}

// Transition records, read by a tracer at TransitionEnd.
func TestTransitionRecord(t *testing.T) {
	h := &hookTracer{}
	m := newM(t, structN(), namesN, nil, &am.Opts{Tracers: []am.Tracer{h}}, "B")
	m.SetLogArgs(am.NewArgsMapper([]string{"k"}, 0))
	assert.Equal(t, am.Executed, m.Set(am.S{"A", "C"}, am.A{"k": "v", "hidden": 1}))
	h.mu.Lock()
	require.NotEmpty(t, h.ends)
	tr := h.ends[len(h.ends)-1]
	h.mu.Unlock()

	assert.True(t, tr.IsCompleted())
	assert.True(t, tr.Accepted)
	assert.False(t, tr.IsAuto())
	assert.Equal(t, am.MutationSet, tr.Type())
	assert.Equal(t, am.S{"A", "C"}, tr.CalledStates())
	assert.Equal(t, am.A{"k": "v", "hidden": 1}, tr.Args())
	assert.Equal(t, " (k=v)", tr.LogArgs())
	assert.Equal(t, am.S{"B"}, tr.StatesBefore)
	assert.Equal(t, am.S{"B"}, tr.Exits)
	assert.ElementsMatch(t, am.S{"A", "C"}, tr.Enters)
	assert.ElementsMatch(t, am.S{"A", "C"}, tr.TargetStates)
	assert.Same(t, m, tr.Machine)
	assert.Equal(t, am.Time{0, 1, 0, 0, 0}, tr.TimeBefore)
	assert.Equal(t, am.Time{1, 2, 1, 0, 0}, tr.TimeAfter)
	assert.Equal(t, am.Clock{"A": 0, "B": 1, "C": 0, "D": 0, am.Exception: 0}, tr.ClockBefore())
	assert.Equal(t, am.Clock{"A": 1, "B": 2, "C": 1, "D": 0, am.Exception: 0}, tr.ClockAfter())
	require.NotNil(t, tr.Mutation)
	assert.True(t, tr.Mutation.StateWasCalled("C"))
	assert.False(t, tr.Mutation.StateWasCalled("B"))
	finish(t, m)
}

// Log entries are kept in the transition when a logger is active.
func TestTransitionLogEntries(t *testing.T) {
	h := &hookTracer{}
	m := newM(t, structN(), namesN, nil, &am.Opts{Tracers: []am.Tracer{h}})
	capture(m, am.LogOps)
	m.Add1("A", nil)
	h.mu.Lock()
	tr := h.ends[len(h.ends)-1]
	h.mu.Unlock()
	var texts []string
	for _, e := range tr.LogEntries {
		texts = append(texts, e.Text)
	}
	assert.Contains(t, strings.Join(texts, "\n"), "[state] +A")
	finish(t, m)
}
