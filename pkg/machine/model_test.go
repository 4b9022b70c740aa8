package machine_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	am "github.com/arpc-go/arpc/pkg/machine"
	"github.com/arpc-go/arpc/pkg/machine/machinetest"
)

// diffMirror is an am.Api built the way a remote mirror is: reads and waits
// are answered by an am.Model that a feeder moves with clock diffs, while
// mutations run on a source machine. Here the feeder is a tracer of the
// source, so the diffs arrive in-process and in order; a network mirror
// sends the same deltas over its connection.
type diffMirror struct {
	*am.Model
	src *am.Machine
	w   *am.ModelWriter
}

// diffFeeder turns each completed transition of the source into one
// ModelWriter.Apply, and each entered state into a MatchArgs.
type diffFeeder struct {
	am.NoOpTracer
	w *am.ModelWriter
}

func (f *diffFeeder) TransitionEnd(t *am.Transition) {
	if t.TimeAfter == nil {
		return
	}
	var deltas []am.TickDelta
	for i := range t.TimeAfter {
		if i < len(t.TimeBefore) && t.TimeAfter[i] != t.TimeBefore[i] {
			// a Multi state active at both ends was re-entered, not exited
			deltas = append(deltas, am.TickDelta{Index: i, Delta: t.TimeAfter[i] - t.TimeBefore[i]})
		}
	}
	f.w.Apply(deltas)
	if t.Accepted {
		for _, s := range t.Enters {
			f.w.MatchArgs(s, t.Args())
		}
	}
}

func newDiffMirror(t *testing.T, s am.Struct, names am.S, handlers any, timeout time.Duration) am.Api {
	t.Helper()
	md, w, err := am.NewModel(context.Background(), s, names)
	require.NoError(t, err)
	feeder := &diffFeeder{w: w}
	src := am.New(context.Background(), s, &am.Opts{HandlerTimeout: timeout, Tracers: []am.Tracer{feeder}})
	require.NoError(t, src.VerifyStates(names))
	if handlers != nil {
		require.NoError(t, src.BindHandlers(handlers))
	}
	require.NoError(t, w.SetTime(src.Time(nil)))
	mirror := &diffMirror{Model: md, src: src, w: w}
	t.Cleanup(func() {
		mirror.Dispose()
		select {
		case <-src.WhenDisposed():
		case <-time.After(deadline):
			t.Error("cleanup: WhenDisposed not closed")
		}
	})
	return mirror
}

// mutations and lifecycle go to the source
func (d *diffMirror) Add1(s string, a am.A) am.Result    { return d.src.Add1(s, a) }
func (d *diffMirror) Add(s am.S, a am.A) am.Result       { return d.src.Add(s, a) }
func (d *diffMirror) Remove1(s string, a am.A) am.Result { return d.src.Remove1(s, a) }
func (d *diffMirror) Remove(s am.S, a am.A) am.Result    { return d.src.Remove(s, a) }
func (d *diffMirror) Set(s am.S, a am.A) am.Result       { return d.src.Set(s, a) }
func (d *diffMirror) AddErr(err error, a am.A) am.Result { return d.src.AddErr(err, a) }
func (d *diffMirror) Err() error                         { return d.src.Err() }
func (d *diffMirror) Log(msg string, args ...any)        { d.src.Log(msg, args...) }
func (d *diffMirror) Export() *am.Serialized             { return d.src.Export() }
func (d *diffMirror) WhenDisposed() <-chan struct{}      { return d.src.WhenDisposed() }
func (d *diffMirror) AddErrState(s string, e error, a am.A) am.Result {
	return d.src.AddErrState(s, e, a)
}

func (d *diffMirror) Dispose() {
	d.w.Close()
	d.src.Dispose()
}

var _ am.Api = (*diffMirror)(nil)

// The whole behaviour suite, handler scenarios included, passes on a Model
// fed only with clock diffs: the read-and-wait model a mirror shares with
// the engine.
func TestModelFedByDiffs(t *testing.T) {
	machinetest.Run(t, func(t *testing.T, s am.Struct, names am.S) am.Api {
		return newDiffMirror(t, s, names, nil, 0)
	}, machinetest.WithHandlers(newDiffMirror))
}

// A mirror sees a state that was activated and deactivated between two
// updates: When and WhenNot release, a state context is canceled.
func TestModelTransientStates(t *testing.T) {
	md, w, err := am.NewModel(context.Background(), am.Struct{"A": {}, "M": {Multi: true}}, am.S{"A", "M", am.Exception})
	require.NoError(t, err)
	defer w.Close()
	whenA := md.When1("A", nil)
	require.NoError(t, w.SetTime(am.Time{0, 1, 0}))
	ctxM := md.NewStateCtx("M")
	notM := md.WhenNot1("M", nil)
	// A: 0 -> 2 (on and off again); M: 1 -> 3, re-entered only
	w.Apply([]am.TickDelta{{Index: 0, Delta: 2}, {Index: 1, Delta: 2}})
	assert.True(t, isClosed(whenA), "A was active within the update")
	assert.False(t, md.Is1("A"))
	assert.False(t, isClosed(notM), "M was only re-entered")
	assert.NoError(t, ctxM.Err())
	// M: 3 -> 5, deactivated in between
	w.Apply([]am.TickDelta{{Index: 1, Delta: 2, Exited: true}})
	assert.True(t, isClosed(notM), "M was inactive within the update")
	assert.Error(t, ctxM.Err(), "M's context ends with its activation")
	assert.Equal(t, "(M:5)", md.String())
	assert.Equal(t, "(M:5)[A:2 Exception:0]", md.StringAll())
	assert.Contains(t, md.Inspect(am.S{"M"}), "Multi:   true")
}

// NewModel checks the names against the normalised schema, SetTime checks
// the length, and Close releases waiters.
func TestModelChecksAndClose(t *testing.T) {
	_, _, err := am.NewModel(context.Background(), am.Struct{"A": {}}, am.S{"A"})
	require.Error(t, err, "Exception is part of the normalised schema")
	md, w, err := am.NewModel(context.Background(), am.Struct{"A": {}}, am.S{"A", am.Exception})
	require.NoError(t, err)
	require.Error(t, w.SetTime(am.Time{1}))
	args := md.WhenArgs("A", am.A{"k": 1}, nil)
	w.MatchArgs("A", am.A{"k": 2})
	assert.False(t, isClosed(args))
	w.MatchArgs("A", am.A{"k": 1, "x": true})
	assert.True(t, isClosed(args))
	pending := md.When1("A", nil)
	w.Close()
	assert.True(t, isClosed(pending))
	assert.True(t, isClosed(md.When1("A", nil)), "closed model: waits return at once")
	w.Close()
}

// ReleaseArgs releases exactly the wait it names: other waits of the state,
// even ones whose args the match would satisfy, stay pending.
func TestModelReleaseArgs(t *testing.T) {
	md, w, err := am.NewModel(context.Background(), am.Struct{"A": {}}, am.S{"A", am.Exception})
	require.NoError(t, err)
	defer w.Close()
	assert.Equal(t, am.S{}, md.ActiveStates(), "empty, not nil")
	k1 := md.WhenArgs("A", am.A{"k": 1}, nil)
	any1 := md.WhenArgs("A", nil, nil)
	assert.True(t, w.ReleaseArgs("A", any1))
	assert.True(t, isClosed(any1))
	assert.False(t, isClosed(k1), "only the named wait is released")
	assert.False(t, w.ReleaseArgs("A", any1), "already released")
	assert.False(t, w.ReleaseArgs("Unknown", k1))
	assert.False(t, w.ReleaseArgs("A", make(chan struct{})), "a foreign channel")
	assert.False(t, isClosed(k1))
	assert.True(t, w.ReleaseArgs("A", k1))
	assert.True(t, isClosed(k1))
}

// NormalizeSchema is pure and matches what a machine keeps.
func TestNormalizeSchema(t *testing.T) {
	s := am.Struct{"A": {Remove: am.S{"A", "B"}, Add: am.S{"B"}, After: am.S{"A"}}, "B": {}}
	got := am.NormalizeSchema(s)
	assert.Equal(t, am.S{"A", "B"}, s["A"].Remove, "input untouched")
	assert.Equal(t, am.S{}, got["A"].Remove)
	assert.Equal(t, am.S{}, got["A"].After)
	assert.True(t, got[am.Exception].Multi)
	m := am.New(context.Background(), s, nil)
	defer m.DisposeForce()
	assert.Equal(t, m.GetStruct(), got)
}

// Updates applied while other goroutines read and wait: reads see whole
// updates (A and B always flip together), and every waiter is released.
func TestModelConcurrentFeed(t *testing.T) {
	md, w, err := am.NewModel(context.Background(), am.Struct{"A": {}, "B": {}},
		am.S{"A", "B", am.Exception})
	require.NoError(t, err)
	defer w.Close()
	const rounds = 2000
	var waits []<-chan struct{}
	for k := range 50 {
		waits = append(waits, md.WhenTicksEq("B", uint64(k*40+1), nil), md.When1("A", nil))
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range rounds {
			w.Apply([]am.TickDelta{{Index: 0, Delta: 1}, {Index: 1, Delta: 1}})
		}
	}()
	for range 500 {
		tm := md.Time(nil)
		require.Equal(t, tm[0], tm[1], "torn read: %v", tm)
	}
	<-done
	for _, ch := range waits {
		select {
		case <-ch:
		case <-time.After(deadline):
			t.Fatal("a waiter was not released")
		}
	}
	assert.Equal(t, am.Time{rounds, rounds, 0}, md.Time(nil))
}
