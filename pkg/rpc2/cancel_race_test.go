package rpc2

import (
	"context"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestHandlerCtxCancelRace: Done, AfterFunc and Err race with two cancels
// (the peer's cancel frame and the handler's return) on fresh contexts. A
// context is canceled exactly once, every Done channel handed out gets
// closed, every AfterFunc runs exactly once, and nothing panics (a Done that
// first looked after the cancel's compare-and-swap used to hand out the
// shared closed channel, which the cancel then closed again).
func TestHandlerCtxCancelRace(t *testing.T) {
	const rounds, watchers = 3000, 6
	for round := range rounds {
		h := &handlerCtx{tracked: true}
		start := make(chan struct{})
		var wg, afters sync.WaitGroup
		var ran, wins atomic.Int32
		dones := make([]<-chan struct{}, watchers)
		for i := range watchers {
			wg.Add(1)
			if i%3 == 1 {
				afters.Add(1)
			}
			go func() {
				defer wg.Done()
				<-start
				switch i % 3 {
				case 0:
					dones[i] = h.Done()
				case 1:
					h.AfterFunc(func() {
						ran.Add(1)
						afters.Done()
					})
				case 2:
					_ = h.Err()
					dones[i] = h.Done()
				}
			}()
		}
		for range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				if h.cancel() {
					wins.Add(1)
				}
			}()
		}
		close(start)
		wg.Wait()
		waitGroupWithin(t, &afters, 10*time.Second)
		require.Equal(t, int32(1), wins.Load(), "round %d: one cancel wins", round)
		require.Equal(t, int32(watchers/3), ran.Load(), "round %d: every AfterFunc ran once", round)
		require.ErrorIs(t, h.Err(), context.Canceled)
		for i, ch := range dones {
			if ch == nil {
				continue
			}
			select {
			case <-ch:
			default:
				t.Fatalf("round %d: Done channel %d not closed after cancel", round, i)
			}
		}
	}
}

// TestCancelRaceWire: the same race through a connection. Each handler
// starts goroutines that look at its ctx (Done, Err, a derived context,
// which registers through AfterFunc), releases them together and returns at
// once, while the caller
// cancels the call: the peer's cancel frame (read loop), the handler's
// return (worker) and the watchers all touch the context together.
func TestCancelRaceWire(t *testing.T) {
	const calls, watchers = 400, 4
	var wg sync.WaitGroup
	r := NewRegistry()
	require.NoError(t, HandleFunc(r, 1, "watched", func(ctx context.Context, _ *Conn, _ *Args, _ *Reply) error {
		var start atomic.Bool
		var ready sync.WaitGroup
		for i := range watchers {
			wg.Add(1)
			ready.Add(1)
			go func() {
				defer wg.Done()
				ready.Done()
				for !start.Load() { // spin, to be running when the handler returns
					runtime.Gosched()
				}
				switch i % 3 {
				case 0:
					<-ctx.Done()
				case 1:
					d, cancel := context.WithCancel(ctx)
					<-d.Done()
					cancel()
				case 2:
					for ctx.Err() == nil {
						<-ctx.Done()
					}
				}
			}()
		}
		ready.Wait()
		start.Store(true) // the watchers look while the handler returns
		return nil
	}))
	transports(t, func(t *testing.T, dial func(t *testing.T) (net.Conn, net.Conn)) {
		c, s := connPair(t, dial, nil, r)
		done := make(chan *Call, calls)
		for range calls {
			ctx, cancel := context.WithCancel(context.Background())
			c.Go(ctx, 1, &Args{}, nil, done)
			cancel()
		}
		for range calls {
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("a call did not complete")
			}
		}
		require.NoError(t, c.Err())
		require.NoError(t, s.Err())
		closeWithin(t, c, s) // every handler has returned: no more wg.Add
		waitGroupWithin(t, &wg, 10*time.Second)
	})
}

// waitGroupWithin fails the test unless wg's count reaches zero within d.
func waitGroupWithin(t testing.TB, wg *sync.WaitGroup, d time.Duration) {
	t.Helper()
	ch := make(chan struct{})
	go func() {
		wg.Wait()
		close(ch)
	}()
	select {
	case <-ch:
	case <-time.After(d):
		t.Fatal("goroutines did not finish")
	}
}
