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

// Defaults of New.
func TestNewDefaults(t *testing.T) {
	m := am.New(context.Background(), nil, nil)
	assert.Len(t, m.ID, 32)
	assert.Equal(t, 100*time.Millisecond, m.HandlerTimeout)
	assert.True(t, m.LogStackTrace)
	assert.True(t, m.PanicToException)
	assert.True(t, m.LogID)
	assert.Equal(t, 1000, m.QueueLimit)
	assert.Equal(t, am.LogNothing, m.GetLogLevel())
	assert.False(t, m.StatesVerified)
	assert.Equal(t, am.S{am.Exception}, m.StateNames(), "a nil schema gets Exception")
	assert.True(t, m.GetStruct()[am.Exception].Multi)
	finish(t, m)

	o := &am.Opts{
		ID: "custom", HandlerTimeout: time.Second, DontLogStackTrace: true, DontPanicToException: true,
		DontLogID: true, LogLevel: am.LogOps, QueueLimit: 7, ParentID: "p", Tags: []string{"t"},
	}
	m = am.New(context.Background(), am.Struct{am.Exception: {}}, o)
	assert.Equal(t, "custom", m.ID)
	assert.Equal(t, time.Second, m.HandlerTimeout)
	assert.False(t, m.LogStackTrace)
	assert.False(t, m.PanicToException)
	assert.False(t, m.LogID)
	assert.Equal(t, 7, m.QueueLimit)
	assert.Equal(t, am.LogOps, m.GetLogLevel())
	assert.Equal(t, "p", m.ParentID)
	assert.Equal(t, []string{"t"}, m.Tags)
	assert.False(t, m.GetStruct()[am.Exception].Multi, "a user-defined Exception is kept as written")
	finish(t, m)
}

// A full queue cancels further mutations.
func TestQueueLimit(t *testing.T) {
	var results []am.Result
	r := newRecorder().on("AState", func(e *am.Event) {
		for _, s := range []string{"B", "C", "D"} {
			results = append(results, e.Machine.Add1(s, nil))
		}
	})
	m := newM(t, structN(), namesN, r, &am.Opts{QueueLimit: 2})
	assert.Equal(t, am.Executed, m.Add1("A", nil))
	assert.Equal(t, []am.Result{am.Queued, am.Queued, am.Canceled}, results)
	assertActive(t, m, "A", "B", "C")
	finish(t, m)
}

// With LogID, lines are prefixed with the first 5 characters of the ID.
func TestLogIDPrefix(t *testing.T) {
	m := newM(t, structN(), namesN, nil, &am.Opts{ID: "abcdefgh"})
	log := capture(m, am.LogChanges)
	m.Add1("A", nil)
	lines := strings.Split(log.text(), "\n")
	require.NotEmpty(t, lines)
	for _, l := range lines {
		assert.True(t, strings.HasPrefix(l, "[abcde] "), "%q", l)
	}
	finish(t, m)

	m = newM(t, structN(), namesN, nil, &am.Opts{ID: "abcdefgh", DontLogID: true})
	log = capture(m, am.LogChanges)
	m.Add1("A", nil)
	assert.True(t, strings.HasPrefix(log.text(), "[state] +A"), "%q", log.text())
	finish(t, m)
}

// noResult has negotiation handlers without a result: they count as true.
type noResult struct{ entered, exited bool }

func (h *noResult) AEnter(*am.Event) { h.entered = true }
func (h *noResult) AExit(*am.Event)  { h.exited = true }

func TestHandlerWithoutResult(t *testing.T) {
	h := &noResult{}
	m := newM(t, structN(), namesN, h, nil)
	assert.Equal(t, am.Executed, m.Add1("A", nil))
	assert.Equal(t, am.Executed, m.Remove1("A", nil))
	assert.True(t, h.entered)
	assert.True(t, h.exited)
	finish(t, m)
}

// Emitters are consulted in binding order; the first false skips the rest.
type firstEmitter struct{ calls *[]string }

func (f *firstEmitter) AEnter(*am.Event) bool { *f.calls = append(*f.calls, "firstA"); return false }
func (f *firstEmitter) CEnter(*am.Event) bool { *f.calls = append(*f.calls, "firstC"); return true }

type secondEmitter struct{ calls *[]string }

func (s *secondEmitter) AEnter(*am.Event) bool { *s.calls = append(*s.calls, "secondA"); return true }
func (s *secondEmitter) BEnter(*am.Event) bool { *s.calls = append(*s.calls, "secondB"); return true }
func (s *secondEmitter) CEnter(*am.Event) bool { *s.calls = append(*s.calls, "secondC"); return true }

func TestEmittersInBindingOrder(t *testing.T) {
	var calls []string
	m := newM(t, structN(), namesN, &firstEmitter{&calls}, nil)
	require.NoError(t, m.BindHandlers(&secondEmitter{&calls}))
	assert.Equal(t, am.Canceled, m.Add1("A", nil))
	assert.Equal(t, []string{"firstA"}, calls, "the first false skips the rest")
	calls = nil
	assert.Equal(t, am.Executed, m.Add1("C", nil))
	assert.Equal(t, []string{"firstC", "secondC"}, calls, "binding order")
	calls = nil
	assert.Equal(t, am.Executed, m.Add1("B", nil))
	assert.Equal(t, []string{"secondB"}, calls)
	finish(t, m)
}
