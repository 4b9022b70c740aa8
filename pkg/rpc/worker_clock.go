package rpc

import (
	"context"
	"fmt"

	am "github.com/arpc-go/arpc/pkg/machine"
)

// verWaiter waits for the mirror to reach a version.
type verWaiter struct {
	version uint64
	ch      chan struct{}
}

// applyUpdate applies one update of the session's stream. The stream is
// ordered (replies and pushes share one version sequence and one writer on
// the server), so an update is either the whole clock or exactly the next
// version; anything else is a broken stream, reported as an error so the
// connection is dropped and the session resumed or resynced.
func (w *Worker) applyUpdate(u *msgUpdate) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	switch {
	case u.full:
		if err := w.applyFullLocked(u.time); err != nil {
			return err
		}
	case u.version != w.version+1:
		return fmt.Errorf("%w: update version %d after %d", ErrInvalidResp, u.version, w.version)
	default:
		w.applyDiffLocked(u.entries)
	}
	w.version = u.version
	if u.err != nil {
		w.err = &RemoteError{Msg: u.err.Msg}
	}
	// after the diff: a matched wait returns once the mirror reflects the
	// transition that matched it
	for _, id := range u.matched {
		if aw, ok := w.watches[id]; ok {
			delete(w.watches, id)
			w.stopWatchLocked(aw)
			w.mw.ReleaseArgs(aw.name, aw.ch)
		}
	}
	w.deliverAnswers(u.answers)
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
	return nil
}

// applyDiffLocked applies one diff to the model; a state's exit flag tells
// a Multi state's deactivation from a re-entry.
func (w *Worker) applyDiffLocked(entries []tickEntry) {
	var buf [8]am.TickDelta
	deltas := buf[:0]
	for _, e := range entries {
		deltas = append(deltas, am.TickDelta{Index: e.idx, Delta: e.delta, Exited: e.exited})
	}
	w.mw.Apply(deltas)
}

// applyFullLocked replaces the mirrored clock with the source's clock src,
// never letting a tick decrease: the mirror keeps, per state, an offset
// between its ticks and the source's. A source that restarted (its ticks
// began again from its own start) gets the offset raised so that each
// mirrored tick is at least the old one, with the source's activity (the
// parity of its tick). Diffs are deltas, so they apply unchanged on top.
// Only applyUpdate moves the model, under w.mu, so its ticks read here are
// the ones SetTime replaces.
func (w *Worker) applyFullLocked(src am.Time) error {
	if len(src) != len(w.offset) {
		return fmt.Errorf("%w: full update has %d ticks, want %d", ErrInvalidResp, len(src), len(w.offset))
	}
	next := w.Time(nil)
	for i, t := range src {
		old := next[i]
		next[i] = t + w.offset[i]
		if next[i] < old {
			next[i] = old
			if next[i]%2 != t%2 {
				next[i]++
			}
			w.offset[i] = next[i] - t
		}
	}
	return w.mw.SetTime(next)
}

// waitVersion waits until the mirror has applied version v: the update that
// carries a mutation's effect precedes its reply on the stream, so this
// returns at once unless the connection dropped in between.
func (w *Worker) waitVersion(ctx context.Context, v uint64, lost <-chan struct{}) {
	w.mu.Lock()
	if w.version >= v || w.disposed.Load() {
		w.mu.Unlock()
		return
	}
	ch := make(chan struct{})
	w.verWait = append(w.verWait, verWaiter{version: v, ch: ch})
	w.mu.Unlock()
	select {
	case <-ch:
	case <-ctx.Done():
	case <-lost:
	case <-w.ctx.Done():
	}
}

// Sync brings the mirror up to date with the server (for example after a
// batch of AddNS) and returns the new time.
func (w *Worker) Sync() am.Time {
	ctx, cancel := context.WithTimeout(w.ctx, w.c.opts.callTimeout)
	defer cancel()
	_ = w.Resync(ctx)
	return w.Time(nil)
}

// Resync asks the server to send every change it has not sent yet and
// waits until the mirror has applied them.
func (w *Worker) Resync(ctx context.Context) error {
	conn, err := w.c.liveConn()
	if err != nil {
		return err
	}
	var v wireUint
	if err := w.c.callOn(ctx, conn, mSync, &Empty{}, &v); err != nil {
		return err
	}
	w.waitVersion(ctx, v.v, conn.Done())
	return nil
}
