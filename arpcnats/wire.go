package arpcnats

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
)

// update is what the leader publishes on arpc.<id>.upd once per queue pass
// (and as a heartbeat), and what replies and snapshots carry: the whole
// tick vector, not a diff, so a mirror that missed updates loses nothing by
// applying the next one (ticks are cumulative; the difference to the
// mirror's own vector is the diff). Exits counts the deactivations of each
// Multi state, which a tick difference can't tell from a re-entry.
type update struct {
	// Epoch grows with every new leader; a mirror that sees a higher epoch
	// takes the vector as it is, even where ticks went back (a leader that
	// acknowledged before persisting lost its last changes).
	Epoch   uint64
	Version uint64
	Time    []uint64
	Exits   []uint64
	// Err is the text of the source's Err(), empty when nil.
	Err string
}

// updateMagic starts an encoded update (format version 1).
const updateMagic = 0xA1

// maxStates bounds a decoded vector before anything is allocated.
const maxStates = 1 << 14

// appendUpdate encodes u: magic, uvarint epoch, version, n, n ticks, n exits.
func appendUpdate(b []byte, u *update) []byte {
	b = append(b, updateMagic)
	b = binary.AppendUvarint(b, u.Epoch)
	b = binary.AppendUvarint(b, u.Version)
	b = binary.AppendUvarint(b, uint64(len(u.Time)))
	for _, t := range u.Time {
		b = binary.AppendUvarint(b, t)
	}
	for i := range u.Time {
		var e uint64
		if i < len(u.Exits) {
			e = u.Exits[i]
		}
		b = binary.AppendUvarint(b, e)
	}
	b = binary.AppendUvarint(b, uint64(len(u.Err)))
	return append(b, u.Err...)
}

// decodeUpdate parses an update of exactly n states.
func decodeUpdate(b []byte, n int) (*update, error) {
	if len(b) == 0 || b[0] != updateMagic {
		return nil, fmt.Errorf("%w: not an update", ErrInvalidRequest)
	}
	b = b[1:]
	next := func() (uint64, bool) {
		v, k := binary.Uvarint(b)
		if k <= 0 {
			return 0, false
		}
		b = b[k:]
		return v, true
	}
	u := &update{}
	var ok bool
	if u.Epoch, ok = next(); !ok {
		return nil, fmt.Errorf("%w: truncated update", ErrInvalidRequest)
	}
	if u.Version, ok = next(); !ok {
		return nil, fmt.Errorf("%w: truncated update", ErrInvalidRequest)
	}
	cnt, ok := next()
	if !ok || cnt > maxStates || int(cnt) != n {
		return nil, fmt.Errorf("%w: update of %d states for %d", ErrInvalidRequest, cnt, n)
	}
	// each tick takes at least one byte: bound the allocation by the input
	if len(b) < 2*n {
		return nil, fmt.Errorf("%w: truncated update", ErrInvalidRequest)
	}
	u.Time = make([]uint64, n)
	u.Exits = make([]uint64, n)
	for i := range u.Time {
		if u.Time[i], ok = next(); !ok {
			return nil, fmt.Errorf("%w: truncated update", ErrInvalidRequest)
		}
	}
	for i := range u.Exits {
		if u.Exits[i], ok = next(); !ok {
			return nil, fmt.Errorf("%w: truncated update", ErrInvalidRequest)
		}
	}
	el, ok := next()
	if !ok || el != uint64(len(b)) {
		return nil, fmt.Errorf("%w: bad error text length", ErrInvalidRequest)
	}
	u.Err = string(b)
	return u, nil
}

// newer tells whether u comes after (epoch, version).
func (u *update) newer(epoch, version uint64) bool {
	return u.Epoch > epoch || u.Epoch == epoch && u.Version > version
}

// mutReq is a mutation request on arpc.<id>.mut (JSON).
type mutReq struct {
	// ID identifies the mutation for deduplication: a retry carries the
	// same ID and gets the first attempt's outcome.
	ID string `json:"id"`
	// Lo is the lowest request seq the client still waits for: it won't
	// retry below it, so the server forgets those outcomes.
	Lo     uint64            `json:"lo,omitempty"`
	Type   int               `json:"t"`
	States []string          `json:"s"`
	Args   map[string]any    `json:"a,omitempty"`
	Cond   map[string]uint64 `json:"c,omitempty"`
	// Err, with HasErr, makes it an AddErrState.
	HasErr bool   `json:"he,omitempty"`
	Err    string `json:"e,omitempty"`
}

// mutResp is the reply to a mutation: its outcome and the machine's state
// right after it (an encoded update, possibly empty). Binary: magic,
// uvarint result, uvarint length + code, uvarint length + message, then
// the update to the end.
type mutResp struct {
	Result int
	Code   string
	Msg    string
	Update []byte
}

// replyMagic starts an encoded mutation reply.
const replyMagic = 0xB1

func encodeReply(r *mutResp) []byte {
	b := make([]byte, 0, 8+len(r.Code)+len(r.Msg)+len(r.Update))
	b = append(b, replyMagic)
	b = binary.AppendUvarint(b, uint64(r.Result))
	b = binary.AppendUvarint(b, uint64(len(r.Code)))
	b = append(b, r.Code...)
	b = binary.AppendUvarint(b, uint64(len(r.Msg)))
	b = append(b, r.Msg...)
	return append(b, r.Update...)
}

func decodeReply(b []byte) (*mutResp, error) {
	bad := fmt.Errorf("%w: malformed reply", ErrInvalidRequest)
	if len(b) == 0 || b[0] != replyMagic {
		return nil, bad
	}
	b = b[1:]
	res, k := binary.Uvarint(b)
	if k <= 0 || res > 1<<8 {
		return nil, bad
	}
	b = b[k:]
	str := func() (string, bool) {
		l, k := binary.Uvarint(b)
		if k <= 0 || l > uint64(len(b)-k) {
			return "", false
		}
		v := string(b[k : k+int(l)])
		b = b[k+int(l):]
		return v, true
	}
	r := &mutResp{Result: int(res)}
	var ok bool
	if r.Code, ok = str(); !ok {
		return nil, bad
	}
	if r.Msg, ok = str(); !ok {
		return nil, bad
	}
	r.Update = b
	return r, nil
}

// errResp builds an error reply.
func errResp(code, msg string) []byte {
	return encodeReply(&mutResp{Result: 2, Code: code, Msg: msg})
}

// stateDoc is the machine's state as kept in the KV bucket under
// <id>.state: what a new leader restores.
type stateDoc struct {
	Epoch   uint64   `json:"epoch"`
	Version uint64   `json:"version"`
	Names   []string `json:"names"`
	Time    []uint64 `json:"time"`
	Exits   []uint64 `json:"exits"`
	Err     string   `json:"err,omitempty"`
	// Args are the JSON-serialisable args of the last activation of each
	// active state.
	Args map[string]json.RawMessage `json:"args,omitempty"`
	// Dedup are the outcomes of recent mutations by request id.
	Dedup []dedupEntry `json:"dedup,omitempty"`
	// Leader is the instance that wrote it.
	Leader string `json:"leader"`
}

// dedupEntry is the outcome of one mutation, kept to answer its retries.
type dedupEntry struct {
	ID      string `json:"id"`
	Result  int    `json:"r"`
	Code    string `json:"c,omitempty"`
	Msg     string `json:"m,omitempty"`
	Version uint64 `json:"v"`
}
