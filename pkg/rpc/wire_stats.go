package rpc

import (
	"encoding/binary"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/arpc-go/arpc/pkg/rpc2"
)

// respStats carries a server's Stats as named counters, so that either end
// may know counters the other does not: a receiver skips the names it
// doesn't know.
type respStats struct {
	st Stats
}

// errorPrefix names the counters of Traffic.Errors: "errors.<code>".
const errorPrefix = "errors."

// statsFields lists the named counters of Stats, in wire order.
func statsFields(st *Stats) []struct {
	name string
	v    *uint64
} {
	return []struct {
		name string
		v    *uint64
	}{
		{"refusedConns", &st.RefusedConns}, {"refusedAuth", &st.RefusedAuth},
		{"refusedSessions", &st.RefusedSessions}, {"forbidden", &st.Forbidden},
		{"handshakeTimeouts", &st.HandshakeTimeouts}, {"idleTimeouts", &st.IdleTimeouts},
		{"slowPeers", &st.SlowPeers}, {"handshakes", &st.Handshakes},
		{"mutationsExecuted", &st.MutationsExecuted}, {"mutationsCanceled", &st.MutationsCanceled},
		{"mutationsQueued", &st.MutationsQueued}, {"mutationsFailed", &st.MutationsFailed},
		{"updates", &st.Updates}, {"pushes", &st.Pushes}, {"pushesDeferred", &st.PushesDeferred},
		{"bytesIn", &st.BytesIn}, {"bytesOut", &st.BytesOut},
	}
}

// AppendBinary implements encoding.BinaryAppender:
// count:uvarint (name:string value:uvarint)*count.
func (m *respStats) AppendBinary(b []byte) ([]byte, error) {
	fields := statsFields(&m.st)
	codes := make([]rpc2.Code, 0, len(m.st.Errors))
	for c := range m.st.Errors {
		codes = append(codes, c)
	}
	slices.Sort(codes)
	b = binary.AppendUvarint(b, uint64(2+len(fields)+len(codes)))
	b = appendString(b, "conns")
	b = binary.AppendUvarint(b, uint64(max(m.st.Conns, 0)))
	b = appendString(b, "sessions")
	b = binary.AppendUvarint(b, uint64(max(m.st.Sessions, 0)))
	for _, f := range fields {
		b = appendString(b, f.name)
		b = binary.AppendUvarint(b, *f.v)
	}
	for _, c := range codes {
		b = appendString(b, errorPrefix+strconv.FormatUint(uint64(c), 10))
		b = binary.AppendUvarint(b, m.st.Errors[c])
	}
	return b, nil
}

// maxStatsEntries bounds the counters a Stats reply may carry.
const maxStatsEntries = 1024

// UnmarshalBinary implements encoding.BinaryUnmarshaler. Unknown names are
// skipped; a name given twice is an error.
func (m *respStats) UnmarshalBinary(data []byte) error {
	r := reader{b: data}
	n := r.count(2)
	if n > maxStatsEntries {
		return fmt.Errorf("%w: %d counters", ErrInvalidMsg, n)
	}
	m.st = Stats{}
	fields := statsFields(&m.st)
	seen := make(map[string]bool, n)
	for range n {
		name := string(r.bytes())
		v := r.uvarint()
		if r.err != nil {
			break
		}
		if seen[name] {
			return fmt.Errorf("%w: counter %q twice", ErrInvalidMsg, name)
		}
		seen[name] = true
		switch {
		case name == "conns":
			m.st.Conns = int(min(v, 1<<31))
		case name == "sessions":
			m.st.Sessions = int(min(v, 1<<31))
		case strings.HasPrefix(name, errorPrefix):
			code, err := strconv.ParseUint(name[len(errorPrefix):], 10, 32)
			if err != nil {
				continue
			}
			if m.st.Errors == nil {
				m.st.Errors = map[rpc2.Code]uint64{}
			}
			m.st.Errors[rpc2.Code(code)] = v
		default:
			for _, f := range fields {
				if f.name == name {
					*f.v = v
					break
				}
			}
		}
	}
	return r.done()
}
