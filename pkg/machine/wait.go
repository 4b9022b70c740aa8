package machine

import "context"

// Wait waits for a condition of mach and tells whether it held: nil when it
// did, ctx.Err() when ctx ended first, ErrDisposed when mach was disposed
// first (a condition that held as disposal began may also give ErrDisposed).
// when registers the condition (mach.When1, mach.WhenArgs, mach.WhenTime...)
// with the context it is given.
//
// A When* channel is closed when its condition holds, but also when its
// context ends and when the machine is disposed, so a bare receive from it
// can't tell success from a deadline, and a select on it and on ctx.Done()
// picks at random when both are ready. Wait registers the condition with a
// context of its own, which ends only when Wait returns, so the channel
// closing means the condition held (or disposal), and ctx is watched
// separately. When the condition holds and ctx ends at the same moment,
// either answer may be returned, each of them true.
//
//	if err := am.Wait(ctx, m, func(ctx context.Context) <-chan struct{} {
//		return m.When1("Done", ctx)
//	}); err != nil {
//		return err // 504: Done was not reached in time
//	}
//
// Safe to call concurrently; the condition's binding is released when Wait
// returns.
func Wait(ctx context.Context, mach Api, when func(ctx context.Context) <-chan struct{}) error {
	if ctx == nil {
		ctx = context.Background()
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	wctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch := when(wctx)
	select {
	case <-ch:
	case <-ctx.Done():
		return ctx.Err()
	}
	// the channel closed with wctx live: the condition held, or mach is
	// being disposed (which closes every waiter before WhenDisposed)
	if isDisposed(mach) {
		return ErrDisposed
	}
	return nil
}

// Disposer is implemented by Api implementations that tell whether their
// disposal has started (a *Machine, an aRPC Worker). Wait uses it to tell
// a waiter released by disposal from one whose condition held.
type Disposer interface {
	IsDisposed() bool
}

// IsDisposed tells whether the machine's disposal has started.
func (m *Machine) IsDisposed() bool { return m.Disposed.Load() }

// isDisposed tells whether mach's disposal has started, as far as it can
// tell: without Disposer, only a finished disposal is seen.
func isDisposed(mach Api) bool {
	if d, ok := mach.(Disposer); ok {
		return d.IsDisposed()
	}
	select {
	case <-mach.WhenDisposed():
		return true
	default:
		return false
	}
}

// WaitFor waits until all the states are active on mach (at some moment
// they all were): nil when they were, ctx.Err() when ctx ended first,
// ErrDisposed when mach was disposed first. It returns nil at once when they
// are active now. An unknown state never becomes active, so WaitFor then
// returns ctx.Err(). See Wait for why a bare When channel is not enough.
func WaitFor(ctx context.Context, mach Api, states ...string) error {
	return Wait(ctx, mach, func(ctx context.Context) <-chan struct{} {
		return mach.When(states, ctx)
	})
}

// WaitForNot waits until none of the states is active on mach (at some
// moment): nil when that happened, ctx.Err() when ctx ended first,
// ErrDisposed when mach was disposed first.
func WaitForNot(ctx context.Context, mach Api, states ...string) error {
	return Wait(ctx, mach, func(ctx context.Context) <-chan struct{} {
		return mach.WhenNot(states, ctx)
	})
}
