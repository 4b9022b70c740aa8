package rpc

import (
	"context"
	"errors"
	"fmt"
	"time"

	am "github.com/arpc-go/arpc/pkg/machine"
)

// maxPending caps out-of-order updates kept while waiting for a missing
// version; beyond it the mirror resynchronises at once.
const maxPending = 64

// verWaiter waits for the mirror to reach a version.
type verWaiter struct {
	version uint64
	ch      chan struct{}
}

// applyLocked applies one update in version order: the next version is
// applied (then any buffered successors), a later one is buffered until the
// gap fills or a resync, an older one is dropped. w.mu must be held.
func (w *Worker) applyLocked(u *update) {
	if u.err != nil && u.version == 0 {
		w.err = &RemoteError{Msg: u.err.Msg}
	}
	switch {
	case u.version == 0 || u.version <= w.version:
		return
	case u.version > w.version+1:
		if len(w.pending) >= maxPending {
			w.c.requestResync()
			return
		}
		w.pending[u.version] = u
		w.c.requestResync()
		return
	}
	w.applyOneLocked(u)
	w.drainPendingLocked()
}

func (w *Worker) drainPendingLocked() {
	for v := range w.pending {
		if v <= w.version {
			delete(w.pending, v)
		}
	}
	for {
		next, ok := w.pending[w.version+1]
		if !ok {
			break
		}
		delete(w.pending, next.version)
		w.applyOneLocked(next)
	}
	if len(w.verWait) > 0 {
		kept := w.verWait[:0]
		for _, v := range w.verWait {
			if v.version <= w.version {
				close(v.ch)
			} else {
				kept = append(kept, v)
			}
		}
		w.verWait = kept
	}
}

func (w *Worker) applyOneLocked(u *update) {
	w.version = u.version
	if u.err != nil {
		w.err = &RemoteError{Msg: u.err.Msg}
	}
	var buf [8]change
	changes := buf[:0]
	for _, e := range u.entries {
		if e.idx < 0 || e.idx >= len(w.time) || e.delta == 0 {
			continue
		}
		old := w.time[e.idx]
		w.time[e.idx] = old + e.delta
		changes = append(changes, change{idx: e.idx, old: old, new: old + e.delta, exited: e.exited})
	}
	if len(changes) > 0 {
		w.fireLocked(changes)
	}
}

// applyFullLocked fires what a full clock replacing old changed.
func (w *Worker) applyFullLocked(old []uint64) {
	var changes []change
	for i, t := range w.time {
		if i < len(old) && t != old[i] {
			changes = append(changes, change{idx: i, old: old[i], new: t})
		}
	}
	if len(changes) > 0 {
		w.fireLocked(changes)
	}
}

// applyPush applies a server push and resolves its remote WhenArgs matches.
func (w *Worker) applyPush(m *msgPush) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.applyLocked(&m.upd)
	for _, id := range m.matched {
		if aw, ok := w.watches[id]; ok {
			delete(w.watches, id)
			aw.close()
		}
	}
}

// applyReply applies a mutation reply and waits until the mirror has reached
// its version, so a mutation's effect is visible when it returns.
func (w *Worker) applyReply(u *update) error {
	w.mu.Lock()
	w.applyLocked(u)
	if u.version <= w.version || w.disposed.Load() {
		w.mu.Unlock()
		return nil
	}
	ch := make(chan struct{})
	w.verWait = append(w.verWait, verWaiter{version: u.version, ch: ch})
	w.mu.Unlock()
	t := time.NewTimer(w.c.opts.resyncAfter)
	defer t.Stop()
	select {
	case <-ch:
		return nil
	case <-w.ctx.Done():
		return w.ctx.Err()
	case <-t.C:
		return w.Resync(w.ctx)
	}
}

// Resync replaces the mirrored clock with the server's and resets the
// server's diff baseline for this client.
func (w *Worker) Resync(ctx context.Context) error {
	var resp respSync
	if err := w.c.call(ctx, mSync, &Empty{}, &resp); err != nil {
		w.setErr(err)
		return err
	}
	if len(resp.time) != len(w.names) {
		err := fmt.Errorf("%w: sync time has %d ticks, want %d", ErrInvalidResp, len(resp.time), len(w.names))
		w.setErr(err)
		return err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.gapSince = false
	if resp.version <= w.version {
		// a newer update already arrived: nothing to do
		return nil
	}
	old := w.time
	w.time = resp.time
	w.version = resp.version
	if resp.err != nil {
		w.err = &RemoteError{Msg: resp.err.Msg}
	}
	w.applyFullLocked(old)
	w.drainPendingLocked()
	return nil
}

// Sync brings the mirror up to date with the server (for example after a
// batch of AddNS) and returns the new time. It resets the server's diff
// baseline for this client, so nothing is applied twice.
func (w *Worker) Sync() am.Time {
	if err := w.Resync(w.ctx); err != nil && !errors.Is(err, context.Canceled) {
		w.setErr(err)
	}
	return w.Time(nil)
}

// hasGap tells whether updates are buffered behind a missing version, or an
// update may have been lost with no later one to show it (markGap).
func (w *Worker) hasGap() bool {
	w.mu.RLock()
	defer w.mu.RUnlock()
	return len(w.pending) > 0 || w.gapSince
}

// markGap notes that an update may have been lost unseen (the reply of a
// timed-out mutation the server may still run), so housekeeping resyncs.
func (w *Worker) markGap() {
	w.mu.Lock()
	w.gapSince = true
	w.mu.Unlock()
	w.c.requestResync()
}
