package rpc2

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"
)

// TestCallTimeout: with WithCallTimeout, a call without a reply fails with
// ErrTimeout and context.DeadlineExceeded, even with a ctx that never ends;
// its pending entry is gone and the connection keeps serving.
func TestCallTimeout(t *testing.T) {
	transports(t, func(t *testing.T, dial func(t *testing.T) (net.Conn, net.Conn)) {
		c, _ := connPair(t, dial, nil, testRegistry(t), WithCallTimeout(50*time.Millisecond))
		start := time.Now()
		err := c.Call(context.Background(), mSlow, &Args{}, &Reply{})
		if !errors.Is(err, ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Call(slow) = %v, want ErrTimeout and DeadlineExceeded", err)
		}
		if d := time.Since(start); d < 50*time.Millisecond {
			t.Fatalf("timed out after %s, before the 50ms timeout", d)
		}
		if n := c.npending.Load(); n != 0 {
			t.Fatalf("%d calls still pending", n)
		}
		var r Reply
		if err := c.Call(context.Background(), mAdd, &Args{A: 2, B: 3}, &r); err != nil || r.C != 5 {
			t.Fatalf("Call(add) after a timeout = %v, %d", err, r.C)
		}
	})
}

// TestCallTimeoutGo: Go calls are bounded too.
func TestCallTimeoutGo(t *testing.T) {
	c, _ := connPair(t, pipePair, nil, testRegistry(t), WithCallTimeout(30*time.Millisecond))
	call := c.Go(context.Background(), mSlow, &Args{}, &Reply{}, nil)
	select {
	case <-call.Done:
	case <-time.After(5 * time.Second):
		t.Fatal("Go call not completed by the timeout")
	}
	if !errors.Is(call.Error, ErrTimeout) {
		t.Fatalf("Go(slow).Error = %v, want ErrTimeout", call.Error)
	}
}

// TestCallTimeoutOption rejects a negative timeout.
func TestCallTimeoutOption(t *testing.T) {
	a, b := net.Pipe()
	defer b.Close()
	c := NewConn(a, nil, WithCallTimeout(-time.Second))
	if !errors.Is(c.Err(), ErrInvalid) {
		t.Fatalf("Err() = %v, want ErrInvalid", c.Err())
	}
	_ = c.Close()
}
