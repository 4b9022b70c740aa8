package arpcnats

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"unicode/utf8"

	"github.com/nats-io/nats.go/jetstream"
)

// Bounds on what one mutation adds to the stored state (its outcome), so
// that a client's large requests don't grow every later state write.
const (
	// maxRequestID bounds a mutation's request id.
	maxRequestID = 128
	// maxOutcomeMsg bounds the error text kept with an outcome; the code
	// beside it carries the meaning.
	maxOutcomeMsg = 256
	// stateHeadroom is what a KV write adds to its value (headers).
	stateHeadroom = 1 << 10
)

// docLocked builds the stored state for u, with the args of the active
// states when withArgs. Needs s.mu.
func (s *Server) docLocked(u *update, withArgs bool) *stateDoc {
	d := &stateDoc{Epoch: u.Epoch, Version: u.Version, Names: s.names, Time: u.Time, Exits: u.Exits,
		Err: u.Err, Dedup: s.dedup.list(), Leader: s.instance}
	for i, a := range s.args {
		if !withArgs || a == nil || u.Time[i]%2 == 0 {
			continue
		}
		if b, err := json.Marshal(a); err == nil {
			if d.Args == nil {
				d.Args = map[string]json.RawMessage{}
			}
			d.Args[s.names[i]] = b
		}
	}
	return d
}

// encodeState cuts a version and encodes its stored state (with errText
// as the source's error) and its update, consistent with each other. The
// state must fit in one NATS message, or every later write would fail and
// the leader would stall: past the connection's maximum payload it leaves
// out the args, then forgets the oldest mutation outcomes (their retries
// would run again), and reports that through Err.
func (s *Server) encodeState(errText string) (*update, []byte, error) {
	limit := int(s.nc.MaxPayload()) - stateHeadroom
	withArgs := true
	for {
		s.mu.Lock()
		u := s.snapshotLocked(errText)
		doc := s.docLocked(u, withArgs)
		s.mu.Unlock()
		b, err := json.Marshal(doc)
		if err != nil {
			return nil, nil, err
		}
		if len(b) <= limit {
			return u, b, nil
		}
		if withArgs && len(doc.Args) > 0 {
			withArgs = false
			s.setErr(fmt.Errorf("%w: state of %d bytes over %d: args left out", ErrTooLarge, len(b), limit))
			continue
		}
		if len(doc.Dedup) == 0 {
			return nil, nil, fmt.Errorf("%w: state of %d bytes over %d", ErrTooLarge, len(b), limit)
		}
		// forget a share of the outcomes proportional to the excess
		k := len(doc.Dedup)*(len(b)-limit)/len(b) + 1
		s.mu.Lock()
		s.dedup.evictOldest(k)
		s.mu.Unlock()
		s.logf(slog.LevelWarn, "arpcnats: state too large: oldest outcomes forgotten", "bytes", len(b), "forgotten", k)
		s.setErr(fmt.Errorf("%w: state of %d bytes over %d: %d oldest outcomes forgotten", ErrTooLarge, len(b), limit, k))
	}
}

// clip returns s cut to at most n bytes, on a rune boundary.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// loadState reads the stored state of machine id.
func loadState(ctx context.Context, kv jetstream.KeyValue, id string) (*stateDoc, uint64, error) {
	e, err := kv.Get(ctx, keyState(id))
	if err != nil {
		return nil, 0, err
	}
	var doc stateDoc
	if err := json.Unmarshal(e.Value(), &doc); err != nil {
		return nil, 0, fmt.Errorf("%w: %v", ErrSchemaMismatch, err)
	}
	return &doc, e.Revision(), nil
}
