package rpc

import (
	"hash/fnv"
	"slices"

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
	for _, name := range names {
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
	return h.Sum64()
}
