package machine_test

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	am "github.com/arpc-go/arpc/pkg/machine"
)

// waitErr runs fn on its own goroutine and returns its error, failing the
// test if it doesn't return within the deadline.
func waitErr(t *testing.T, fn func() error, what string) error {
	t.Helper()
	ch := make(chan error, 1)
	go func() { ch <- fn() }()
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	select {
	case err := <-ch:
		return err
	case <-ctx.Done():
		t.Fatalf("%s: did not return within %v", what, deadline)
		return nil
	}
}

// TestWaitForHolds: nil when the states are active now, and when they are
// activated while waiting.
func TestWaitForHolds(t *testing.T) {
	m := newN(t, "A")
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	require.NoError(t, am.WaitFor(ctx, m, "A"))

	started := make(chan struct{})
	errc := make(chan error, 1)
	go func() {
		close(started)
		errc <- am.WaitFor(ctx, m, "A", "B")
	}()
	<-started
	m.Add1("B", nil)
	select {
	case err := <-errc:
		require.NoError(t, err)
	case <-ctx.Done():
		t.Fatal("WaitFor did not return after B was activated")
	}
}

// TestWaitForNeverMistaken: a condition that never holds gives ctx.Err()
// every time, never nil, whether ctx ended before or during the wait. (A
// bare select on When1(state, ctx) and ctx.Done() picks either case once
// ctx ends, since the When channel closes then too.)
func TestWaitForNeverMistaken(t *testing.T) {
	m := newN(t)
	for i := 0; i < 200; i++ {
		ctx, cancel := context.WithCancel(context.Background())
		if i%2 == 0 {
			cancel()
			assert.ErrorIs(t, am.WaitFor(ctx, m, "A"), context.Canceled)
			continue
		}
		err := waitErr(t, func() error {
			go cancel()
			return am.WaitFor(ctx, m, "A")
		}, "WaitFor")
		assert.ErrorIs(t, err, context.Canceled, "round %d", i)
		cancel()
	}
	// deadlines are reported as such
	ctx, cancel := context.WithTimeout(context.Background(), 0)
	defer cancel()
	assert.ErrorIs(t, am.WaitFor(ctx, m, "A"), context.DeadlineExceeded)
}

// TestWaitForNot and Wait with a custom condition (WhenArgs).
func TestWaitForNotAndWait(t *testing.T) {
	m := newM(t, am.Struct{"A": {}, "M": {Multi: true}}, am.S{"A", "M", am.Exception}, nil, nil, "A")
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()

	err := waitErr(t, func() error {
		go m.Remove1("A", nil)
		return am.WaitForNot(ctx, m, "A")
	}, "WaitForNot")
	require.NoError(t, err)

	err = waitErr(t, func() error {
		return am.Wait(ctx, m, func(ctx context.Context) <-chan struct{} {
			ch := m.WhenArgs("M", am.A{"id": 2}, ctx)
			m.Add1("M", am.A{"id": 1})
			m.Add1("M", am.A{"id": 2})
			return ch
		})
	}, "Wait(WhenArgs)")
	require.NoError(t, err)

	short, cancelShort := context.WithCancel(ctx)
	cancelShort()
	err = am.Wait(short, m, func(ctx context.Context) <-chan struct{} {
		return m.WhenArgs("M", am.A{"id": 3}, ctx)
	})
	require.ErrorIs(t, err, context.Canceled)
}

// TestWaitDisposed: a wait released by disposal is not a success.
func TestWaitDisposed(t *testing.T) {
	m := am.New(context.Background(), structN(), nil)
	require.NoError(t, m.VerifyStates(namesN))
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	started := make(chan struct{})
	errc := make(chan error, 1)
	go func() {
		close(started)
		errc <- am.WaitFor(ctx, m, "A")
	}()
	<-started
	m.Dispose()
	waitClosed(t, m.WhenDisposed(), "WhenDisposed")
	select {
	case err := <-errc:
		require.True(t, errors.Is(err, am.ErrDisposed), "got %v", err)
	case <-ctx.Done():
		t.Fatal("WaitFor did not return after disposal")
	}
	require.ErrorIs(t, am.WaitFor(ctx, m, "A"), am.ErrDisposed)
	require.True(t, m.IsDisposed())
}
