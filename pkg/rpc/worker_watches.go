package rpc

import (
	"context"
	"fmt"

	am "github.com/arpc-go/arpc/pkg/machine"
	"github.com/arpc-go/arpc/pkg/rpc2"
)

// argsWatch is a remote WhenArgs: the server matches the args and reports
// the watch's ID in the update that carries the matching transition.
type argsWatch struct {
	// ch is the model's WhenArgs channel
	ch    <-chan struct{}
	name  string
	state int
	args  am.A
	// stop releases the watcher of the caller's ctx
	stop func() bool
}

// stopWatchLocked stops aw's ctx watcher, if it hasn't run. Needs w.mu.
func (w *Worker) stopWatchLocked(aw *argsWatch) {
	if aw.stop != nil && aw.stop() {
		w.cbs.Done()
	}
}

// WhenArgs returns a channel closed once state is activated (its final
// handler runs on the remote machine) with arguments that include args (==
// compared). The server watches for it; the channel closes after the mirror
// reflects that transition, or when ctx ends or the Worker is disposed. The
// watch survives reconnections: after a server restart it is registered
// again. If the server can't be asked, the channel stays open until ctx
// ends. An unknown state sets Err and never matches.
func (w *Worker) WhenArgs(state string, args am.A, ctx context.Context) <-chan struct{} {
	if ctx == nil {
		ctx = w.ctx
	}
	// the model owns the channel: it closes it on ctx's end and on disposal
	ch := w.model.WhenArgs(state, args, ctx)
	i := w.Index(state)
	if i < 0 {
		w.setErr(fmt.Errorf("%w: %s", am.ErrStateUnknown, state))
		return ch
	}
	w.mu.Lock()
	if w.disposed.Load() || ctx.Err() != nil {
		w.mu.Unlock()
		return ch
	}
	w.watchSeq++
	id := w.watchSeq
	aw := &argsWatch{ch: ch, name: state, state: i, args: args}
	w.watches[id] = aw
	w.mu.Unlock()

	err := w.c.call(ctx, mWatchArgs, &MsgWatchArgs{ID: id, State: i, Args: args}, &Empty{})
	w.mu.Lock()
	defer w.mu.Unlock()
	if err != nil {
		w.err = err
	}
	if w.watches[id] != aw {
		// matched already, or disposed
		return ch
	}
	w.cbs.Add(1)
	aw.stop = context.AfterFunc(ctx, func() {
		defer w.cbs.Done()
		w.mu.Lock()
		defer w.mu.Unlock()
		if w.watches[id] == aw {
			delete(w.watches, id)
			if err == nil {
				w.unwatches = append(w.unwatches, id)
				w.c.requestUnwatch()
			}
		}
	})
	return ch
}

// rewatch registers the open WhenArgs watches again on a new session.
func (w *Worker) rewatch(ctx context.Context, conn *rpc2.Conn) error {
	w.mu.Lock()
	msgs := make([]*MsgWatchArgs, 0, len(w.watches))
	for id, aw := range w.watches {
		msgs = append(msgs, &MsgWatchArgs{ID: id, State: aw.state, Args: aw.args})
	}
	w.mu.Unlock()
	for _, m := range msgs {
		if err := w.c.callOn(ctx, conn, mWatchArgs, m, &Empty{}); err != nil {
			return err
		}
	}
	return nil
}
