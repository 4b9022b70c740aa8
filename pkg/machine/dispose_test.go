package machine_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	am "github.com/arpc-go/arpc/pkg/machine"
)

func TestScenario62_DisposalHandlers(t *testing.T) {
	m := newN(t, "A")
	var order []int
	var mu sync.Mutex
	for i := range 3 {
		m.RegisterDisposalHandler(func() {
			mu.Lock()
			defer mu.Unlock()
			order = append(order, i)
		})
	}
	m.Dispose()
	waitClosed(t, m.WhenDisposed(), "WhenDisposed")
	mu.Lock()
	assert.Equal(t, []int{0, 1, 2}, order, "ran in order, before WhenDisposed closed")
	mu.Unlock()
	assert.True(t, m.Disposed.Load())

	m = newN(t, "A")
	var ran atomic.Bool
	m.RegisterDisposalHandler(func() { ran.Store(true) })
	m.DisposeForce()
	assert.True(t, ran.Load(), "DisposeForce runs the handlers before returning")
	waitClosed(t, m.WhenDisposed(), "WhenDisposed after DisposeForce")
}

func TestDisposeEffects(t *testing.T) {
	m := newN(t, "A")
	stateCtx := m.NewStateCtx("A")
	when := m.When1("B", nil)
	whenNot := m.WhenNot1("A", nil)
	m.Dispose()
	waitClosed(t, m.WhenDisposed(), "WhenDisposed")
	assert.Error(t, m.Ctx.Err(), "m.Ctx canceled")
	assert.Error(t, stateCtx.Err(), "state ctx canceled")
	assert.True(t, isClosed(when), "When released")
	assert.True(t, isClosed(whenNot), "WhenNot released")
	assert.ErrorIs(t, m.Err(), context.Canceled, "the ctx error is stored when Err was nil")
	assert.True(t, m.Is1("A"), "Is still shows the last active set")
	assert.Equal(t, uint64(0), m.Tick("A"), "the clock is cleared")
	assert.Equal(t, am.Canceled, m.Add1("B", nil))
	assert.Equal(t, am.Canceled, m.Remove1("A", nil))
	assert.Equal(t, am.Canceled, m.Set(am.S{"C"}, nil))
	assert.True(t, isClosed(m.When1("C", nil)))
	assert.True(t, isClosed(m.WhenNot1("C", nil)))
	assert.True(t, isClosed(m.WhenArgs("C", am.A{"a": 1}, nil)))
	//lint:ignore SA1012 a nil ctx is accepted by the API and tested here
	assert.True(t, isClosed(m.WhenQueueEnds(nil)))
	require.NotPanics(t, func() { m.Dispose() }, "a repeated Dispose only logs")
}

// Dispose is asynchronous, so a handler may call it.
func TestDisposeFromHandler(t *testing.T) {
	r := newRecorder().on("AState", func(e *am.Event) { e.Machine.Dispose() })
	m := newM(t, structN(), namesN, r, nil)
	m.Add1("A", nil)
	waitClosed(t, m.WhenDisposed(), "WhenDisposed")
}

// Team decision: every goroutine the machine starts is gone once
// WhenDisposed has closed.
func TestDisposeLeavesNoGoroutines(t *testing.T) {
	before := goleak.IgnoreCurrent()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r := newRecorder()
	m := am.New(ctx, structR(), &am.Opts{Tracers: []am.Tracer{&tracer{}}})
	require.NoError(t, m.VerifyStates(namesN))
	require.NoError(t, m.BindHandlers(r))
	m.Add1("B", nil)
	wctx, wcancel := context.WithCancel(context.Background())
	defer wcancel()
	_ = m.When1("D", wctx)
	_ = m.WhenNot1("B", wctx)
	_ = m.WhenTime(am.S{"A"}, am.Time{9}, wctx)
	_ = m.WhenTicks("C", 4, wctx)
	_ = m.WhenArgs("B", am.A{"x": 1}, wctx)
	_ = m.WhenErr(wctx)
	_ = m.NewStateCtx("B")
	_, _ = m.Mutate(context.Background(), am.MutationAdd, am.S{"D"}, nil)
	m.Dispose()
	waitClosed(t, m.WhenDisposed(), "WhenDisposed")
	// Checked before the contexts above are canceled.
	goleak.VerifyNone(t, before)
}
