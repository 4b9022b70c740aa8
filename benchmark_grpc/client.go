package benchgrpc

import (
	"context"
	"errors"
)

// ErrMismatch is returned by Cycle when the worker counted the called operation as an error, i.e. the
// client's view of the value was wrong.
var ErrMismatch = errors.New("benchgrpc: op/value mismatch")

// ErrNoNotification is returned by a Cycle whose operation succeeded but was not followed by the
// notification of the next value.
var ErrNoNotification = errors.New("benchgrpc: no notification after the op")

// Client runs the benchmark cycle against one worker over one transport. Every constructor returns a
// client that has already received the worker's first notification, so each Cycle is a whole,
// self-contained round: read the value, call the matching operation, wait for the notification of
// the next value. A Client is not safe for concurrent use; concurrent benchmarks give each goroutine
// its own.
type Client interface {
	// Cycle reads the worker's value, calls the matching operation and waits until the notification
	// of the new value has arrived. It returns ErrMismatch if the worker counted an error.
	Cycle(ctx context.Context) error
	// Close releases the client and waits for its goroutines. It is idempotent.
	Close() error
}

// LocalClient calls a Worker directly, in-process: the floor for the workload's own logic. Its
// notification is the Worker's synchronous listener setting a flag.
type LocalClient struct {
	w        *Worker
	notified bool
}

var _ Client = (*LocalClient)(nil)

// NewLocalClient installs itself as w's listener and starts w (the first notification).
func NewLocalClient(w *Worker) *LocalClient {
	c := &LocalClient{w: w}
	w.SetListener(func(int) { c.notified = true })
	w.Start()
	return c
}

// Cycle implements Client. The context is not consulted: nothing blocks.
func (c *LocalClient) Cycle(context.Context) error {
	if !c.notified {
		return ErrNoNotification
	}
	c.notified = false
	if !c.w.CallOp(c.w.Value()) {
		return ErrMismatch
	}
	if !c.notified {
		return ErrNoNotification
	}
	return nil
}

// Close implements Client; it removes the listener.
func (c *LocalClient) Close() error {
	c.w.SetListener(nil)
	return nil
}
