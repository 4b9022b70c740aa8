package machine

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// overlapHandlers count how many handlers of the machine run at once; the
// first call of the one named block waits for release.
type overlapHandlers struct {
	block            string
	entered, release chan struct{}
	running, max     atomic.Int32
	calls            atomic.Int32
	blocked          atomic.Bool
}

func (h *overlapHandlers) enter(name string) {
	n := h.running.Add(1)
	for {
		mx := h.max.Load()
		if n <= mx || h.max.CompareAndSwap(mx, n) {
			break
		}
	}
	h.calls.Add(1)
	if name == h.block && h.blocked.CompareAndSwap(false, true) {
		close(h.entered)
		<-h.release
	}
	h.running.Add(-1)
}

func (h *overlapHandlers) AEnter(e *Event) bool { h.enter("AEnter"); return true }
func (h *overlapHandlers) AState(e *Event)      { h.enter("AState") }
func (h *overlapHandlers) BEnter(e *Event) bool { h.enter("BEnter"); return true }
func (h *overlapHandlers) BState(e *Event)      { h.enter("BState") }
func (h *overlapHandlers) AnyAny(e *Event) bool {
	if e.Machine.Transition().CalledStates()[0] == "A" {
		h.enter("AnyAny")
	}
	return true
}

// timeoutLogged returns a channel closed when m logs a handler timeout.
func timeoutLogged(m *Machine) <-chan struct{} {
	ch := make(chan struct{})
	var once atomic.Bool
	m.SetLogger(func(_ LogLevel, msg string, args ...any) {
		if strings.Contains(msg, "by timeout") && once.CompareAndSwap(false, true) {
			close(ch)
		}
	})
	m.SetLogLevel(LogOps)
	return ch
}

type outcome struct {
	res Result
	err error
}

// A handler that overruns HandlerTimeout and keeps running while another
// mutation arrives: the other mutation waits for it (handlers never
// overlap), the overdue transition is canceled with ErrHandlerTimeout, and
// the queue goes on once the handler returns.
func TestTimeoutNoOverlap(t *testing.T) {
	for _, block := range []string{"AEnter", "AnyAny", "AState"} {
		t.Run(block, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				h := &overlapHandlers{block: block, entered: make(chan struct{}), release: make(chan struct{})}
				m := newTestMachine(t, Struct{"A": {}, "B": {}}, &Opts{HandlerTimeout: 50 * time.Millisecond})
				require.NoError(t, m.BindHandlers(h))
				logged := timeoutLogged(m)
				ctx := context.Background()

				aOut := make(chan outcome, 1)
				go func() {
					r, err := m.Mutate(ctx, MutationAdd, S{"A"}, nil)
					aOut <- outcome{r, err}
				}()
				<-h.entered
				// the fake clock moves only while every goroutine is blocked:
				// the timer fires exactly once the timeout has elapsed
				<-logged
				bOut := make(chan outcome, 1)
				go func() {
					r, err := m.Mutate(ctx, MutationAdd, S{"B"}, nil)
					bOut <- outcome{r, err}
				}()
				synctest.Wait()
				assert.False(t, m.Is1("B"), "B waits for the overdue handler")
				select {
				case o := <-bOut:
					t.Fatalf("B returned %v, %v while the overdue handler runs", o.res, o.err)
				case o := <-aOut:
					t.Fatalf("the draining caller returned %v, %v while its handler runs", o.res, o.err)
				default:
				}

				close(h.release)
				a, b := <-aOut, <-bOut
				assert.Equal(t, Canceled, a.res)
				assert.ErrorIs(t, a.err, ErrHandlerTimeout)
				assert.NotErrorIs(t, a.err, ErrCanceled, "a timeout is not a veto")
				assert.Contains(t, a.err.Error(), block)
				assert.Equal(t, Executed, b.res)
				assert.NoError(t, b.err)
				assert.Equal(t, int32(1), h.max.Load(), "handlers overlapped")
				if block == "AState" {
					assert.True(t, m.Is(S{"A", "B"}), "a final-phase timeout keeps the states applied")
				} else {
					assert.False(t, m.Is1("A"), "canceled by the timeout")
					assert.True(t, m.Is1("B"))
				}
				assert.Equal(t, Executed, m.Add1("A", nil), "the machine keeps working")
			})
		})
	}
}

// A Mutate caller waiting on another goroutine for a transition whose
// handler times out is released with ErrHandlerTimeout when the timeout
// fires, while the handler still runs; the queue still waits for it.
func TestTimeoutReleasesWaitingCaller(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := &overlapHandlers{block: "AEnter", entered: make(chan struct{}), release: make(chan struct{})}
		m := newTestMachine(t, Struct{"A": {}, "B": {}, "C": {}}, &Opts{HandlerTimeout: 50 * time.Millisecond})
		require.NoError(t, m.BindHandlers(h))
		gate := &gateHandlers{entered: make(chan struct{}), open: make(chan struct{})}
		require.NoError(t, m.BindHandlers(gate))
		ctx := context.Background()

		// C's handler holds the queue while A's Mutate gets queued behind it
		cOut := make(chan Result, 1)
		go func() { cOut <- m.Add1("C", nil) }()
		<-gate.entered
		aOut := make(chan outcome, 1)
		go func() {
			r, err := m.Mutate(ctx, MutationAdd, S{"A"}, nil)
			aOut <- outcome{r, err}
		}()
		for m.IsQueued(MutationAdd, S{"A"}, false, true, 0) < 0 {
			synctest.Wait()
		}
		close(gate.open)
		<-h.entered
		// A's caller is released by the timeout while AEnter still runs
		a := <-aOut
		assert.Equal(t, Canceled, a.res)
		assert.ErrorIs(t, a.err, ErrHandlerTimeout)
		assert.Equal(t, int32(1), h.running.Load(), "AEnter still runs")
		// the queue waits for it: B stays queued
		bRes := make(chan Result, 1)
		go func() { bRes <- m.Add1("B", nil) }()
		assert.Equal(t, Queued, <-bRes)
		synctest.Wait()
		assert.False(t, m.Is1("B"))

		close(h.release)
		assert.Equal(t, Executed, <-cOut)
		assert.False(t, m.Is1("A"))
		assert.True(t, m.Is(S{"B", "C"}))
		assert.Equal(t, int32(1), h.max.Load(), "handlers overlapped")
	})
}

// gateHandlers hold CState until open closes.
type gateHandlers struct {
	entered, open chan struct{}
}

func (g *gateHandlers) CState(e *Event) {
	close(g.entered)
	<-g.open
}

// The watchdog's timer is armed lazily and re-armed for the remaining time:
// handlers shorter than the timeout, following each other, aren't canceled.
func TestTimeoutNotTriggeredByShortHandlers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := newTestMachine(t, Struct{"A": {}}, &Opts{HandlerTimeout: 80 * time.Millisecond})
		h := &sleepy{d: 30 * time.Millisecond}
		require.NoError(t, m.BindHandlers(h))
		for range 4 {
			require.Equal(t, Executed, m.Add1("A", nil))
			require.Equal(t, Executed, m.Remove1("A", nil))
		}
	})
}

// sleepy's AEnter takes d of (fake) time.
type sleepy struct{ d time.Duration }

func (s *sleepy) AEnter(e *Event) bool { time.Sleep(s.d); return true }

// Disposal while a handler is overdue completes; when the handler returns,
// its caller gets Canceled and the machine refuses new work.
func TestDisposeDuringTimedOutHandler(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := &overlapHandlers{block: "AEnter", entered: make(chan struct{}), release: make(chan struct{})}
		m := New(context.Background(), Struct{"A": {}, "B": {}}, &Opts{HandlerTimeout: 20 * time.Millisecond})
		require.NoError(t, m.BindHandlers(h))
		logged := timeoutLogged(m)
		res := make(chan Result, 1)
		go func() { res <- m.Add1("A", nil) }()
		<-h.entered
		<-logged
		m.Dispose()
		<-m.WhenDisposed()
		close(h.release)
		assert.Equal(t, Canceled, <-res)
		assert.Equal(t, Canceled, m.Add1("B", nil))
	})
}

// Veto, relations and panics give ErrCanceled; the panic's error is
// wrapped too.
func TestMutateErrors(t *testing.T) {
	errBoom := errors.New("boom")
	m := newTestMachine(t, Struct{"A": {}, "B": {Require: S{"C"}}, "C": {}, "P": {}}, nil)
	require.NoError(t, m.BindHandlers(&errHandlers{err: errBoom}))
	ctx := context.Background()
	res, err := m.Mutate(ctx, MutationAdd, S{"A"}, nil)
	assert.Equal(t, Canceled, res)
	assert.ErrorIs(t, err, ErrCanceled)
	res, err = m.Mutate(ctx, MutationAdd, S{"B"}, nil)
	assert.Equal(t, Canceled, res)
	assert.ErrorIs(t, err, ErrCanceled)
	assert.Contains(t, err.Error(), "relations")
	res, err = m.Mutate(ctx, MutationAdd, S{"P"}, nil)
	assert.Equal(t, Canceled, res)
	assert.ErrorIs(t, err, ErrCanceled)
	assert.ErrorIs(t, err, errBoom)
	assert.True(t, m.IsErr(), "the panic became Exception")
	res, err = m.Mutate(ctx, MutationAdd, S{"C"}, nil)
	assert.Equal(t, Executed, res)
	assert.NoError(t, err)
}

type errHandlers struct{ err error }

func (h *errHandlers) AEnter(e *Event) bool { return false }
func (h *errHandlers) PEnter(e *Event) bool { panic(h.err) }

// finalHandlers: AState overruns the timeout once; BState records its call.
type finalHandlers struct {
	timeout time.Duration
	bCalled atomic.Bool
	slow    atomic.Bool
}

func (h *finalHandlers) AState(e *Event) {
	if h.slow.CompareAndSwap(false, true) {
		time.Sleep(3 * h.timeout)
	}
}
func (h *finalHandlers) BState(e *Event) { h.bCalled.Store(true) }

// A timeout in the final phase: the states were applied and stay so; the
// handlers after the overdue one and the Auto follow-up are skipped; the
// mutation reports Canceled with ErrHandlerTimeout.
func TestTimeoutFinalPhase(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const timeout = 50 * time.Millisecond
		h := &finalHandlers{timeout: timeout}
		m := newTestMachine(t, Struct{"A": {}, "B": {After: S{"A"}}, "Z": {Auto: true}},
			&Opts{HandlerTimeout: timeout})
		require.NoError(t, m.BindHandlers(h))
		res, err := m.Mutate(context.Background(), MutationAdd, S{"A", "B"}, nil)
		assert.Equal(t, Canceled, res)
		assert.ErrorIs(t, err, ErrHandlerTimeout)
		assert.True(t, m.Is(S{"A", "B"}), "applied states stay")
		assert.False(t, h.bCalled.Load(), "BState, after the overdue AState, is skipped")
		assert.False(t, m.Is1("Z"), "no Auto follow-up")
		res, err = m.Mutate(context.Background(), MutationRemove, S{"A"}, nil)
		assert.Equal(t, Executed, res)
		assert.NoError(t, err)
		assert.True(t, m.Is1("Z"), "the next transition adds the Auto state")
	})
}
