package machine_test

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	am "github.com/arpc-go/arpc/pkg/machine"
)

// panicEnter panics in BEnter; the embedded nil *ExceptionHandler supplies
// ExceptionState.
type panicEnter struct{ *am.ExceptionHandler }

func (h *panicEnter) BEnter(*am.Event) bool { panic("BEnter panic") }

func TestScenario50_PanicInEnter(t *testing.T) {
	m := newM(t, structN(), namesN, &panicEnter{}, nil, "A")
	log := capture(m, am.LogOps)
	assert.Equal(t, am.Canceled, m.Add(am.S{"B"}, nil))
	assertActive(t, m, "A", am.Exception)
	log.has(t, "[cancel] (B A) by recover")
	require.Error(t, m.Err())
	assert.Contains(t, m.Err().Error(), "BEnter panic")
	// The machine keeps working.
	assert.Equal(t, am.Executed, m.Add1("C", nil))
	assertActive(t, m, "A", "C", am.Exception)
	finish(t, m)
}

// panicState panics in BState.
type panicState struct{ *am.ExceptionHandler }

func (h *panicState) BState(*am.Event) { panic("BState panic") }

func TestScenario51_PanicInState(t *testing.T) {
	m := newM(t, structN(), namesN, &panicState{}, nil)
	log := capture(m, am.LogOps)
	assert.Equal(t, am.Canceled, m.Add(am.S{"A", "B", "C"}, nil))
	assertActive(t, m, "A", am.Exception)
	assertConsistent(t, m)
	log.has(t, "[error:add] A B C (BState panic")
	log.has(t, "panicState")
	log.has(t, "[cancel] (A B C) by recover")
	finish(t, m)
}

// errXHandlers records what ErrXState sees.
type errXHandlers struct {
	*am.ExceptionHandler
	mu   sync.Mutex
	args am.A
}

func (h *errXHandlers) ErrXState(e *am.Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.args = e.Args
}

func TestScenario52_AddErrState(t *testing.T) {
	s := structN()
	s["ErrX"] = am.State{Require: am.S{am.Exception}}
	h := &errXHandlers{}
	m := newM(t, s, nil, h, nil)
	errX := errors.New("x failed")
	args := am.A{"k": 1}
	assert.Equal(t, am.Executed, m.AddErrState("ErrX", errX, args))
	assertActive(t, m, "ErrX", am.Exception)
	h.mu.Lock()
	got := h.args
	h.mu.Unlock()
	require.NotNil(t, got, "ErrXState ran")
	assert.Equal(t, 1, got["k"])
	assert.Equal(t, errX, got["err"])
	trace, ok := got["err.trace"].(string)
	assert.True(t, ok, "err.trace is a string")
	assert.NotEmpty(t, trace, "LogStackTrace is on by default")
	assert.Equal(t, am.A{"k": 1}, args, "the caller's args are not modified")
	assert.Same(t, errX, m.Err())
	assert.True(t, m.IsErr())

	assert.Equal(t, am.Executed, m.Remove(am.S{am.Exception}, nil))
	assertActive(t, m)
	assert.Same(t, errX, m.Err(), "Err is never cleared")
	finish(t, m)
}

// slowState blocks in AState until released (or the test deadline).
type slowState struct {
	release chan struct{}
	done    chan struct{}
}

func (h *slowState) AState(*am.Event) {
	defer close(h.done)
	select {
	case <-h.release:
	case <-time.After(deadline):
	}
}

// A final handler overrunning HandlerTimeout: the mutation is canceled, its
// states stay applied, and the machine keeps working. The fake clock of a
// synctest bubble makes the timeout fire exactly when it's due.
func TestScenario53_HandlerTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := &slowState{release: make(chan struct{}), done: make(chan struct{})}
		m := newM(t, structN(), namesN, h, &am.Opts{HandlerTimeout: 100 * time.Millisecond})
		// Release the handler once the engine has logged the timeout.
		var once sync.Once
		m.SetLogger(func(_ am.LogLevel, msg string, args ...any) {
			if strings.Contains(fmt.Sprintf(msg, args...), "by timeout") {
				once.Do(func() { close(h.release) })
			}
		})
		m.SetLogLevel(am.LogOps)
		start := time.Now()
		assert.Equal(t, am.Canceled, m.Add1("A", nil))
		assert.Equal(t, 100*time.Millisecond, time.Since(start), "released when the timeout fired")
		waitClosed(t, h.done, "AState returned")
		// A final-phase timeout keeps the states applied, as in asyncmachine-go.
		assertActive(t, m, "A")
		// The machine keeps working.
		assert.Equal(t, am.Executed, m.Add1("B", nil))
		finish(t, m)
	})
}
