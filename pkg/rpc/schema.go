package rpc

import (
	"fmt"
	"hash"
	"hash/fnv"
	"slices"
	"strings"

	am "github.com/arpc-go/arpc/pkg/machine"
)

// SchemaHash returns a hash of an ordered state list and its schema: the
// names in order, and for each state its Auto and Multi flags and its
// relations (as sets, after the engine's clean-up: a state never removes or
// follows itself, and Remove drops what Add names). A client and a server agree
// on a session only when their hashes are equal. A missing Exception state is
// treated as the engine adds it: {Multi: true}.
func SchemaHash(s am.Struct, names am.S) uint64 {
	h := fnv.New64a()
	for _, name := range names {
		writeState(h, s, name)
	}
	return h.Sum64()
}

// stateHashes returns one hash per state (in names order), so that a server
// refusing a handshake can name the states whose definitions differ.
func stateHashes(s am.Struct, names am.S) []uint64 {
	out := make([]uint64, len(names))
	h := fnv.New64a()
	for i, name := range names {
		h.Reset()
		writeState(h, s, name)
		out[i] = h.Sum64()
	}
	return out
}

// writeState feeds one state's name, flags and cleaned relations to h.
func writeState(h hash.Hash64, s am.Struct, name string) {
	w := func(str string) {
		_, _ = h.Write([]byte(str))
		_, _ = h.Write([]byte{0})
	}
	list := func(tag string, l am.S, drop func(string) bool) {
		c := make([]string, 0, len(l))
		for _, n := range l {
			if !drop(n) {
				c = append(c, n)
			}
		}
		slices.Sort(c)
		c = slices.Compact(c)
		w(tag)
		for _, n := range c {
			w(n)
		}
	}
	st, ok := s[name]
	if !ok && name == am.Exception {
		st = am.State{Multi: true}
	}
	w("\x01" + name)
	if st.Auto {
		w("auto")
	}
	if st.Multi {
		w("multi")
	}
	none := func(string) bool { return false }
	self := func(n string) bool { return n == name }
	list("add", st.Add, none)
	list("require", st.Require, none)
	list("remove", st.Remove, func(n string) bool {
		return n == name || slices.Contains(st.Add, n)
	})
	list("after", st.After, self)
}

// namesDiff describes how a client's ordered state names differ from the
// server's.
func namesDiff(client, server am.S) string {
	var missing, extra []string
	for _, n := range server {
		if !slices.Contains(client, n) {
			missing = append(missing, n)
		}
	}
	for _, n := range client {
		if !slices.Contains(server, n) {
			extra = append(extra, n)
		}
	}
	var parts []string
	if len(missing) > 0 {
		parts = append(parts, "client lacks "+strings.Join(missing, ", "))
	}
	if len(extra) > 0 {
		parts = append(parts, "server lacks "+strings.Join(extra, ", "))
	}
	if len(parts) == 0 {
		for i := range server {
			if i < len(client) && client[i] != server[i] {
				parts = append(parts, fmt.Sprintf("order differs at %d: client %s, server %s", i, client[i], server[i]))
				break
			}
		}
	}
	return "state names differ: " + strings.Join(parts, "; ")
}

// relationsDiff names the states whose definitions (flags or relations)
// differ between a client's handshake and the server's schema.
func (s *Server) relationsDiff(m *msgHandshake) string {
	mine := stateHashes(s.source.GetStruct(), s.names)
	var diff []string
	for i, n := range s.names {
		if i >= len(m.StateHashes) || m.StateHashes[i] != mine[i] {
			diff = append(diff, n)
		}
	}
	if len(diff) == 0 {
		return fmt.Sprintf("schema hash differs: client %x, server %x", m.SchemaHash, s.hash)
	}
	return "state definitions differ (flags or relations): " + strings.Join(diff, ", ")
}
