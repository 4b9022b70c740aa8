package arpcnats

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// publisher publishes the state on arpc.<id>.upd once per queue pass
// (coalescing passes that come faster than it publishes) and, when idle,
// every heartbeat. With WithAckPersisted it publishes only heartbeats of
// the last persisted state: the persister publishes each new one.
func (s *Server) publisher(t *term) {
	defer t.wg.Done()
	hb := time.NewTicker(s.opts.heartbeat)
	defer hb.Stop()
	subj := subjUpd(s.id)
	var buf []byte
	for {
		beat := false
		select {
		case <-t.ctx.Done():
			return
		case <-s.pubSig:
		case <-hb.C:
			beat = true
		}
		if s.opts.ackPersisted {
			if !beat {
				continue
			}
			s.mu.Lock()
			buf = append(buf[:0], s.lastPersisted...)
			s.mu.Unlock()
		} else {
			et := s.errText()
			s.mu.Lock()
			u := s.snapshotLocked(et)
			s.mu.Unlock()
			buf = appendUpdate(buf[:0], u)
		}
		_ = s.nc.Publish(subj, buf)
	}
}

// persister writes the state to the KV bucket, a compare-and-set on the
// revision of its previous write (fencing: a write that finds another
// revision means another leader took over, and this term ends). Writes
// coalesce: each one takes the newest state. With WithAckPersisted it then
// publishes the written state and sends the replies it covers.
func (s *Server) persister(t *term) {
	defer t.wg.Done()
	key := keyState(s.id)
	retry := time.NewTimer(0)
	<-retry.C
	armed := false
	var last time.Time
	for {
		select {
		case <-t.ctx.Done():
			retry.Stop()
			return
		case <-s.persistSig:
			// without WithAckPersisted nobody waits for the write: write at
			// most once per interval (group commit), so a busy machine
			// writes a fraction of its transitions
			if wait := s.opts.persistEvery - time.Since(last); !s.opts.ackPersisted && wait > 0 {
				if !armed {
					retry.Reset(wait)
					armed = true
				}
				continue
			}
		case <-retry.C:
			armed = false
		}
		last = time.Now()
		s.mu.Lock()
		idle := !s.dirty && s.persisted == s.version && len(s.pending) == 0
		rev := s.stateRev
		s.mu.Unlock()
		if idle {
			continue
		}
		u, b, err := s.encodeState(s.errText())
		if err != nil {
			s.setErr(err)
			continue
		}
		ctx, cancel := context.WithTimeout(t.ctx, s.opts.lease)
		nrev, err := s.kv.Update(ctx, key, b, rev)
		cancel()
		if err != nil {
			if t.ctx.Err() != nil {
				return
			}
			if errors.Is(err, jetstream.ErrKeyRevisionMismatch) || errors.Is(err, jetstream.ErrKeyExists) {
				s.logf(slog.LevelWarn, "arpcnats: fenced: another leader wrote the state", "err", err)
				t.depose()
				return
			}
			// JetStream unavailable for now (a node failing over): retry
			s.logf(slog.LevelWarn, "arpcnats: state write", "err", err)
			if !armed {
				retry.Reset(20 * time.Millisecond)
				armed = true
			}
			continue
		}
		enc := appendUpdate(nil, u)
		s.mu.Lock()
		s.stateRev, s.persisted, s.lastPersisted = nrev, u.Version, enc
		var ready []pendingReply
		keep := s.pending[:0]
		for _, p := range s.pending {
			if p.entry.Version <= u.Version {
				ready = append(ready, p)
			} else {
				keep = append(keep, p)
			}
		}
		s.pending = keep
		close(s.persistWait)
		s.persistWait = make(chan struct{})
		s.mu.Unlock()
		if s.opts.ackPersisted {
			_ = s.nc.Publish(subjUpd(s.id), enc)
			for _, p := range ready {
				_ = p.msg.Respond(replyBytes(p.entry, enc))
			}
		}
	}
}

// replyBytes encodes a mutation's reply with the state update it carries.
func replyBytes(e dedupEntry, upd []byte) []byte {
	return encodeReply(&mutResp{Result: e.Result, Code: e.Code, Msg: e.Msg, Update: upd})
}
