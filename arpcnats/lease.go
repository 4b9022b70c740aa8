package arpcnats

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// The elector is the Server's one long-lived goroutine: it owns the lease
// and the leadership term. While standing by it polls the lease key; a
// lease whose revision has not moved for a whole lease period is taken
// with a compare-and-set on that revision, so of several standbys exactly
// one wins. While leading it renews the lease the same way; a renewal that
// finds another revision means it was deposed. The lease is for liveness
// only: safety comes from fencing, every state write being a
// compare-and-set on the revision of the previous one, so a deposed leader
// that still believes it leads can't write (and, acknowledging only what
// it wrote in WithAckPersisted mode, can't acknowledge) anything.
func (s *Server) run() {
	defer s.wg.Done()
	every := s.opts.lease / 4
	tick := time.NewTicker(every)
	defer tick.Stop()
	var (
		t          *term
		seenRev    uint64
		seenAt     time.Time
		lastRenew  time.Time
		seenLeased bool
	)
	acquire := func() {
		ctx, cancel := context.WithTimeout(s.ctx, s.opts.lease)
		defer cancel()
		key := keyLease(s.id)
		var rev uint64
		e, err := s.kv.Get(ctx, key)
		// a lease runs from when its write was sent: a standby counts
		// from when it saw the write, never earlier
		sent := time.Now()
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted):
			rev, err = s.kv.Create(ctx, key, []byte(s.instance))
			if err != nil {
				return
			}
		case err != nil:
			return
		default:
			if !seenLeased || e.Revision() != seenRev {
				seenLeased, seenRev, seenAt = true, e.Revision(), time.Now()
				return
			}
			if time.Since(seenAt) < s.opts.lease {
				return
			}
			rev, err = s.kv.Update(ctx, key, []byte(s.instance), seenRev)
			if err != nil {
				seenLeased = false
				return
			}
		}
		seenLeased = false
		nt, err := s.startTerm(rev)
		if err != nil {
			s.setErr(err)
			_ = s.kv.Delete(ctx, key, jetstream.LastRevision(rev))
			return
		}
		t, lastRenew = nt, sent
		s.logf(slog.LevelInfo, "arpcnats: leading", "epoch", nt.epoch)
	}
	acquire()
	for {
		var deposed <-chan struct{}
		if t != nil {
			deposed = t.deposed
		}
		select {
		case <-s.ctx.Done():
			if t != nil {
				s.endTerm(t)
			}
			return
		case req := <-s.shutdownCh:
			var err error
			if t != nil {
				err = s.gracefulEnd(req.ctx, t)
			}
			req.done <- err
			return
		case <-deposed:
			s.logf(slog.LevelWarn, "arpcnats: deposed", "epoch", t.epoch)
			s.endTerm(t)
			t = nil
		case <-tick.C:
			if t == nil {
				acquire()
				continue
			}
			// the lease runs from when the last renewal was sent, so a
			// renewal answered after it ends is too late: cut it off then
			sent := time.Now()
			ctx, cancel := context.WithDeadline(s.ctx, lastRenew.Add(s.opts.lease))
			rev, err := s.kv.Update(ctx, keyLease(s.id), []byte(s.instance), t.leaseRev)
			cancel()
			switch {
			case err == nil:
				t.leaseRev, lastRenew = rev, sent
			case errors.Is(err, jetstream.ErrKeyRevisionMismatch) || errors.Is(err, jetstream.ErrKeyExists) ||
				errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted):
				s.logf(slog.LevelWarn, "arpcnats: lease lost", "err", err)
				s.endTerm(t)
				t = nil
			case time.Since(lastRenew) >= s.opts.lease:
				// standbys may take over now: stop taking mutations
				// (fencing would refuse their writes anyway)
				s.logf(slog.LevelWarn, "arpcnats: lease lapsed", "err", err)
				s.endTerm(t)
				t = nil
			}
		}
	}
}

// gracefulEnd ends the term as Shutdown describes; when ctx ends first it
// ends it abruptly and returns ctx.Err(), and when Close cuts it short,
// ErrClosed.
func (s *Server) gracefulEnd(ctx context.Context, t *term) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stop := context.AfterFunc(s.ctx, func() { cancel(ErrClosed) })
	defer stop()
	err := s.drainIntake(ctx, t)
	s.intakeOnce.Do(func() { close(s.intake) })
	if err == nil {
		err = t.gate.close(ctx)
	}
	if err == nil {
		// requests in flight get their answers (or their own deadlines)
		done := make(chan struct{})
		t.wg.Add(1) // endTerm waits for it
		go func() {
			defer t.wg.Done()
			t.reqs.Wait()
			close(done)
		}()
		select {
		case <-done:
		case <-ctx.Done():
			err = ctx.Err()
		}
	}
	if err == nil {
		err = s.flush(ctx, t)
	}
	if err == nil {
		dctx, cancel := context.WithTimeout(ctx, s.opts.lease)
		derr := s.kv.Delete(dctx, keyLease(s.id), jetstream.LastRevision(t.leaseRev))
		cancel()
		if derr != nil {
			s.logf(slog.LevelWarn, "arpcnats: lease release", "err", derr)
		}
	}
	s.endTerm(t)
	if err != nil && context.Cause(ctx) == ErrClosed {
		return ErrClosed
	}
	return err
}

// flush waits until everything recorded so far is persisted and every
// held reply sent.
func (s *Server) flush(ctx context.Context, t *term) error {
	for {
		s.mu.Lock()
		done := !s.dirty && s.persisted == s.version && len(s.pending) == 0
		ch := s.persistWait
		s.mu.Unlock()
		if done {
			return nil
		}
		s.signal()
		select {
		case <-ch:
		case <-t.deposed:
			return fmt.Errorf("%w: deposed while flushing", ErrNotLeader)
		case <-t.ctx.Done():
			// the persister is gone: nothing more will be written
			return fmt.Errorf("%w: term ended while flushing", ErrNotLeader)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
