package rpc

import (
	"context"
	"encoding/binary"
	"fmt"
	"slices"
	"unicode/utf8"

	am "github.com/arpc-go/arpc/pkg/machine"
	"github.com/arpc-go/arpc/pkg/rpc2"
)

// Bounds of an ActiveArgs reply: what a tool needs to show, not a way to
// copy arbitrary data out of the server.
const (
	maxArgKeys     = 32  // keys shown per state
	maxArgValueLen = 256 // bytes of each value's text
)

// recordArgsLocked keeps the arguments of the transition for the states it
// activated (an inactive state that became active, or a Multi state
// activated again). It keeps the map, not a copy: the engine hands the same
// map to every handler, and callers must not change it after a mutation
// either. t.mu must be held.
func (t *sourceTracer) recordArgsLocked(before, after am.Time, args am.A) {
	for i, v := range after {
		if v != before[i] && v%2 == 1 {
			t.args[i] = args
		}
	}
}

// activeArgs returns the arguments of the last activation of each active
// state, by index.
func (t *sourceTracer) activeArgs() map[int]am.A {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := map[int]am.A{}
	for i, v := range t.time {
		if v%2 == 1 && len(t.args[i]) > 0 {
			out[i] = t.args[i]
		}
	}
	return out
}

// respActiveArgs is the reply of ActiveArgs: per active state, its last
// activation's arguments as text.
type respActiveArgs struct {
	states []stateArgs
}

// stateArgs is one state's arguments, rendered.
type stateArgs struct {
	idx  int
	args []argText
}

type argText struct{ key, value string }

// AppendBinary implements encoding.BinaryAppender:
// count:uvarint (index:uvarint n:uvarint (key:string value:string)*n)*count.
func (m *respActiveArgs) AppendBinary(b []byte) ([]byte, error) {
	b = binary.AppendUvarint(b, uint64(len(m.states)))
	for _, s := range m.states {
		b = binary.AppendUvarint(b, uint64(s.idx))
		b = binary.AppendUvarint(b, uint64(len(s.args)))
		for _, a := range s.args {
			b = appendString(b, a.key)
			b = appendString(b, a.value)
		}
	}
	return b, nil
}

// UnmarshalBinary implements encoding.BinaryUnmarshaler.
func (m *respActiveArgs) UnmarshalBinary(data []byte) error {
	r := reader{b: data}
	n := r.count(2)
	m.states = make([]stateArgs, 0, n)
	for range n {
		s := stateArgs{idx: int(min(r.uvarint(), 1<<31))}
		k := r.count(2)
		s.args = make([]argText, k)
		for j := range s.args {
			s.args[j] = argText{key: string(r.bytes()), value: string(r.bytes())}
		}
		if r.err != nil {
			break
		}
		m.states = append(m.states, s)
	}
	return r.done()
}

// renderArgs writes arguments as sorted, bounded text.
func renderArgs(a am.A) []argText {
	keys := make([]string, 0, len(a))
	for k := range a {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	if len(keys) > maxArgKeys {
		keys = keys[:maxArgKeys]
	}
	out := make([]argText, len(keys))
	for i, k := range keys {
		v := fmt.Sprintf("%v", a[k])
		if s, ok := a[k].(string); ok {
			v = fmt.Sprintf("%q", s)
		}
		if len(v) > maxArgValueLen {
			cut := maxArgValueLen
			for cut > 0 && !utf8.RuneStart(v[cut]) {
				cut--
			}
			v = v[:cut] + "…"
		}
		out[i] = argText{key: k, value: v}
	}
	return out
}

// handleActiveArgs answers with the arguments of the active states the
// session's identity may observe.
func (s *Server) handleActiveArgs(_ context.Context, c *rpc2.Conn, _ *Empty, resp *respActiveArgs) error {
	se, err := sessionOf(c)
	if err != nil {
		return err
	}
	if s.opts.introspectionOff {
		return codeErr(CodeIntrospectionOff, "server %s does not share arguments", s.id)
	}
	byIdx := s.tracer.activeArgs()
	idxs := make([]int, 0, len(byIdx))
	for i := range byIdx {
		if se.grant.observes(i) {
			idxs = append(idxs, i)
		}
	}
	slices.Sort(idxs)
	for _, i := range idxs {
		resp.states = append(resp.states, stateArgs{idx: i, args: renderArgs(byIdx[i])})
	}
	return nil
}

// ActiveArgs asks the server for the arguments of the last activation of
// each active state (those this client's identity may observe), rendered as
// text (fmt's %v; strings quoted), sorted by key, at most 32 keys per state
// and 256 bytes per value. States activated without arguments are left
// out. It fails with ErrIntrospectionOff on a server started with
// WithIntrospection(false) or older than this call.
func (c *Client) ActiveArgs(ctx context.Context) (map[string]map[string]string, error) {
	var resp respActiveArgs
	if err := c.call(ctx, mActiveArgs, &Empty{}, &resp); err != nil {
		return nil, introspectionErr(err)
	}
	out := make(map[string]map[string]string, len(resp.states))
	for _, s := range resp.states {
		if s.idx < 0 || s.idx >= len(c.names) {
			continue
		}
		m := make(map[string]string, len(s.args))
		for _, a := range s.args {
			m[a.key] = a.value
		}
		out[c.names[s.idx]] = m
	}
	return out, nil
}
