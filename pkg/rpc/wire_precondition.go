package rpc

import "encoding/binary"

// condFlag, set in a mutation's type byte, says that a precondition follows
// the type's fields. A server that predates preconditions sees an unknown
// mutation type and runs nothing, so a precondition is never ignored.
const condFlag byte = 0x80

// wireCond is one entry of a precondition: the state at index idx must have
// the tick tick in the client's mirror, whose ticks are the source's plus
// offset (see Worker.MutateIf): it holds when the source's tick plus offset
// equals tick.
type wireCond struct {
	idx    int
	tick   uint64
	offset uint64
}

// appendCond encodes a precondition: count, then (index, tick, offset)
// triples.
func appendCond(b []byte, c []wireCond) []byte {
	b = binary.AppendUvarint(b, uint64(len(c)))
	for _, e := range c {
		b = binary.AppendUvarint(b, uint64(e.idx))
		b = binary.AppendUvarint(b, e.tick)
		b = binary.AppendUvarint(b, e.offset)
	}
	return b
}

// readCond decodes a precondition; never nil, so an empty one stays one.
func readCond(r *reader) []wireCond {
	n := r.count(3)
	c := make([]wireCond, n)
	for i := range c {
		c[i].idx = int(r.uvarint())
		c[i].tick = r.uvarint()
		c[i].offset = r.uvarint()
	}
	return c
}

// gobCond converts the flat triples of MsgMutateGob.Cond. A length that is
// not a multiple of 3 gives an entry with an invalid index, which fails the
// call with outInvalid.
func gobCond(flat []uint64) []wireCond {
	c := make([]wireCond, 0, len(flat)/3+1)
	for i := 0; i+2 < len(flat); i += 3 {
		// an index beyond int's range becomes negative: out of range too
		c = append(c, wireCond{idx: int(flat[i]), tick: flat[i+1], offset: flat[i+2]})
	}
	if len(flat)%3 != 0 {
		c = append(c, wireCond{idx: -1})
	}
	return c
}
