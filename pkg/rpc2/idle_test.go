package rpc2

import (
	"context"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"
)

// connGoroutines counts the goroutines running a function of Conn whose
// name contains one of fns.
func connGoroutines(fns ...string) int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	count := 0
	for _, g := range strings.Split(string(buf), "\n\n") {
		for _, fn := range fns {
			if strings.Contains(g, "rpc2.(*Conn)."+fn+"(") {
				count++
				break
			}
		}
	}
	return count
}

// TestIdleConnGoroutines: once a connection has been idle for a timer
// period, it keeps no goroutine but its read loop: its handler workers are
// retired, its writer has exited, and its timers and parent-context watch
// are callbacks. The next request starts a worker again. (In a synctest
// bubble: the timer periods pass at once.)
func TestIdleConnGoroutines(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		a, b := net.Pipe()
		opts := []Option{WithKeepalive(time.Second)}
		cfg, err := newConfig(opts)
		require.NoError(t, err)
		s := newConn(ctx, b, testRegistry(t), cfg, nil, false, nil)
		c := NewConn(a, nil, opts...)
		defer closeWithin(t, c, s)

		call := func() {
			var r Reply
			require.NoError(t, c.Call(ctx, mAdd, &Args{A: 1, B: 2}, &r))
			require.Equal(t, 3, r.C)
		}
		call()
		synctest.Wait()
		require.Equal(t, 1, connGoroutines("worker"), "the call's worker is parked")
		// two timer periods (a quarter of the keepalive each) with no frame
		time.Sleep(600 * time.Millisecond)
		synctest.Wait()
		require.Zero(t, connGoroutines("worker", "orderedWorker", "writer", "timers", "watch"), "goroutines left on an idle connection")
		require.Equal(t, 2, connGoroutines("readLoop"), "one read loop per end")
		call()
	})
}

// TestRetireRace: retiring the parked workers while requests arrive never
// strands a request: every call is answered.
func TestRetireRace(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	// one worker at most: requests queue behind it, the path a retiring
	// worker races with
	reg := testRegistry(t)
	const mOrdered Method = 99
	require.NoError(t, HandleFunc(reg, mOrdered, "ordered", func(_ context.Context, _ *Conn, a *Args, rep *Reply) error {
		rep.C = a.A + a.B
		return nil
	}, Ordered()))
	c, s := connPair(t, tcpPair, nil, reg, WithMaxConcurrency(1))
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
				s.retireWorkers()
				runtime.Gosched()
			}
		}
	}()
	var calls sync.WaitGroup
	// one caller at a time per kind of worker is the case that strands a
	// request for good: no later request starts a worker for it
	for g, m := range []Method{mAdd, mOrdered} {
		calls.Add(1)
		go func() {
			defer calls.Done()
			for i := range 3000 {
				var r Reply
				cctx, ccancel := context.WithTimeout(ctx, 5*time.Second)
				err := c.Call(cctx, m, &Args{A: g, B: i}, &r)
				ccancel()
				if err != nil {
					t.Errorf("call %d/%d: %v", g, i, err)
					return
				}
				if r.C != g+i {
					t.Errorf("call %d/%d: got %d", g, i, r.C)
					return
				}
			}
		}()
	}
	calls.Wait()
	close(stop)
	wg.Wait()
}
