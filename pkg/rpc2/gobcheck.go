package rpc2

import (
	"errors"
	"fmt"
)

// gob is not hardened against hostile input: it sizes a map from the count
// the peer declares (a 184-byte body declaring 2^22 entries allocates
// hundreds of MiB), recurses as deep as the data nests, and keeps every type
// the peer defines. So before gob sees a body, gobChecker walks it the way
// gob's decoder will, with the type definitions the peer sent on this stream,
// and refuses it unless:
//
//   - every map declares at most one entry per 2 bytes left in the body, and
//     every slice or array at most one element per byte left (each entry or
//     element takes at least that much), so no count chooses an allocation
//     larger than the body can back;
//   - strings, byte slices, interface names and marshaled values fit in the
//     message that holds them;
//   - values nest at most gobMaxDepth deep;
//   - the stream defines at most gobMaxTypes types with gobMaxFields struct
//     fields in all;
//   - an interface value's byte count covers exactly its value, within one
//     message: gob skips an interface value it does not store by that count
//     and decodes one it stores by walking it, and the two must land on the
//     same byte. (An interface value that holds another interface value
//     whose type was not sent before on the stream is split by gob's
//     encoder across messages; it is refused, as gob itself can't skip it.)
//
// A refused body wraps ErrDesync: the connection closes, since gob's stream
// state would otherwise drift from the checker's. The walk costs one pass
// over the body and allocates only the type table.
type gobChecker struct {
	types  map[int64]*gobType
	fields int // struct fields of all the types

	// The body being checked: the rest of the current gob message, the
	// messages after it, and how many messages were started.
	buf     []byte
	rest    []byte
	started int
}

// Limits of the checker.
const (
	gobMaxTypes  = 4096
	gobMaxFields = 1 << 16
	gobMaxDepth  = 100
	gobMaxName   = 1024 // gob's own limit on interface type names
	// gobFirstUserID is the first type ID a peer may define; lower IDs are
	// gob's.
	gobFirstUserID = 64
)

// Built-in gob type IDs.
const (
	gobBool      = 1
	gobInt       = 2
	gobUint      = 3
	gobFloat     = 4
	gobBytes     = 5
	gobString    = 6
	gobComplex   = 7
	gobInterface = 8
)

type gobKind uint8

const (
	gobStruct gobKind = iota + 1
	gobSlice
	gobArray
	gobMap
	gobMarshaler // GobEncoder, BinaryMarshaler, TextMarshaler: bytes
)

// gobType is a type definition received from the peer.
type gobType struct {
	kind      gobKind
	key, elem int64   // map key; slice, array and map element
	fields    []int64 // struct fields' type IDs, in wire order
}

var errGobShort = errors.New("body ends inside a value")

func gobErr(format string, args ...any) error {
	return fmt.Errorf("%w: gob: "+format, append([]any{ErrDesync}, args...)...)
}

// reset forgets the types (the peer reset its encoder).
func (g *gobChecker) reset() {
	g.types, g.fields = nil, 0
}

// check walks one body: zero or more type definitions, then one value.
func (g *gobChecker) check(body []byte) (err error) {
	if len(body) == 0 {
		return gobErr("empty body")
	}
	g.buf, g.rest, g.started = nil, body, 0
	defer func() { g.buf, g.rest = nil, nil }()
	id, err := g.typeSequence(false)
	if err != nil {
		return err
	}
	if err := g.top(id, 0); err != nil {
		return err
	}
	if len(g.rest) > 0 {
		return gobErr("%d bytes after the value", len(g.rest))
	}
	return nil
}

// next starts the next message of the body.
func (g *gobChecker) next() error {
	if len(g.rest) == 0 {
		return gobErr("body holds no complete value")
	}
	n, w, err := gobCount(g.rest)
	if err != nil {
		return err
	}
	g.buf, g.rest = g.rest[w:w+n], g.rest[w+n:]
	g.started++
	return nil
}

func (g *gobChecker) uint() (uint64, error) {
	if len(g.buf) == 0 {
		return 0, gobErr("%v", errGobShort)
	}
	b := g.buf[0]
	if b < 0x80 {
		g.buf = g.buf[1:]
		return uint64(b), nil
	}
	n := -int(int8(b))
	if n > 8 || n >= len(g.buf) {
		return 0, gobErr("bad unsigned integer")
	}
	var x uint64
	for _, c := range g.buf[1 : 1+n] {
		x = x<<8 | uint64(c)
	}
	g.buf = g.buf[1+n:]
	return x, nil
}

func (g *gobChecker) int() (int64, error) {
	x, err := g.uint()
	i := int64(x >> 1)
	if x&1 != 0 {
		i = ^i
	}
	return i, err
}

// bytes skips a length-prefixed byte string within the current message.
func (g *gobChecker) bytes(max uint64) error {
	n, err := g.uint()
	if err != nil {
		return err
	}
	if n > uint64(len(g.buf)) || n > max {
		return gobErr("length %d exceeds the message", n)
	}
	g.buf = g.buf[n:]
	return nil
}

// left is how many bytes of the body are not walked yet.
func (g *gobChecker) left() uint64 { return uint64(len(g.buf) + len(g.rest)) }

// typeSequence reads type definitions up to the ID of the next value, as
// gob's decodeTypeSequence does: a definition at the top level is a message
// of its own; within an interface value it may be followed by the count of
// the next delimited item.
func (g *gobChecker) typeSequence(inInterface bool) (int64, error) {
	for {
		if len(g.buf) == 0 {
			if err := g.next(); err != nil {
				return 0, err
			}
		}
		id, err := g.int()
		if err != nil {
			return 0, err
		}
		if id >= 0 {
			return id, nil
		}
		if err := g.define(-id); err != nil {
			return 0, err
		}
		if len(g.buf) > 0 {
			if !inInterface {
				return 0, gobErr("extra data after a type definition")
			}
			if _, err := g.uint(); err != nil {
				return 0, err
			}
		}
	}
}

// define reads the definition of type id (a gob wireType) from the current
// message.
func (g *gobChecker) define(id int64) error {
	if id < gobFirstUserID || id > 1<<31 {
		return gobErr("definition of reserved type %d", id)
	}
	if g.types[id] != nil {
		return gobErr("type %d defined twice", id)
	}
	if len(g.types) >= gobMaxTypes {
		return gobErr("more than %d types", gobMaxTypes)
	}
	t := &gobType{}
	set := 0
	// wireType{ArrayT, SliceT, StructT, MapT, GobEncoderT, BinaryMarshalerT,
	// TextMarshalerT}, each a pointer to a struct; exactly one is set.
	err := g.structFields(7, func(f int) error {
		set++
		switch f {
		case 0: // arrayType{CommonType, Elem, Len}
			t.kind = gobArray
			return g.structFields(3, func(f int) (err error) {
				switch f {
				case 0:
					return g.commonType()
				case 1:
					t.elem, err = g.int()
				default:
					_, err = g.int()
				}
				return err
			})
		case 1: // sliceType{CommonType, Elem}
			t.kind = gobSlice
			return g.structFields(2, func(f int) (err error) {
				if f == 0 {
					return g.commonType()
				}
				t.elem, err = g.int()
				return err
			})
		case 2: // structType{CommonType, Field []fieldType{Name, Id}}
			t.kind = gobStruct
			return g.structFields(2, func(f int) error {
				if f == 0 {
					return g.commonType()
				}
				n, err := g.uint()
				if err != nil {
					return err
				}
				if n > uint64(len(g.buf)) || g.fields+int(n) > gobMaxFields {
					return gobErr("struct of %d fields", n)
				}
				g.fields += int(n)
				t.fields = make([]int64, n)
				for i := range t.fields {
					err := g.structFields(2, func(f int) (err error) {
						if f == 0 {
							return g.bytes(1 << 20)
						}
						t.fields[i], err = g.int()
						return err
					})
					if err != nil {
						return err
					}
				}
				return nil
			})
		case 3: // mapType{CommonType, Key, Elem}
			t.kind = gobMap
			return g.structFields(3, func(f int) (err error) {
				switch f {
				case 0:
					return g.commonType()
				case 1:
					t.key, err = g.int()
				default:
					t.elem, err = g.int()
				}
				return err
			})
		default: // gobEncoderType{CommonType}
			t.kind = gobMarshaler
			return g.structFields(1, func(int) error { return g.commonType() })
		}
	})
	if err != nil {
		return err
	}
	if set != 1 {
		return gobErr("type %d has %d definitions", id, set)
	}
	if g.types == nil {
		g.types = make(map[int64]*gobType)
	}
	g.types[id] = t
	return nil
}

// commonType skips a gob CommonType{Name string, Id typeId}.
func (g *gobChecker) commonType() error {
	return g.structFields(2, func(f int) error {
		if f == 0 {
			return g.bytes(1 << 20)
		}
		_, err := g.int()
		return err
	})
}

// structFields walks the fields of a struct encoding (field-number deltas,
// ending with 0) of a struct with n fields, calling fn for each field
// present.
func (g *gobChecker) structFields(n int, fn func(field int) error) error {
	field := -1
	for {
		d, err := g.uint()
		if err != nil {
			return err
		}
		if d == 0 {
			return nil
		}
		if d > uint64(n-1-field) {
			return gobErr("field number out of range")
		}
		field += int(d)
		if err := fn(field); err != nil {
			return err
		}
	}
}

// top walks a value at the top of a message or of an interface: a struct
// directly, anything else as a singleton (field delta 0, then the value).
func (g *gobChecker) top(id int64, depth int) error {
	if t := g.types[id]; t != nil && t.kind == gobStruct {
		return g.value(id, depth)
	}
	d, err := g.uint()
	if err != nil {
		return err
	}
	if d != 0 {
		return gobErr("non-zero delta for a singleton")
	}
	return g.value(id, depth)
}

// value walks one value of type id.
func (g *gobChecker) value(id int64, depth int) error {
	if depth > gobMaxDepth {
		return gobErr("values nested deeper than %d", gobMaxDepth)
	}
	switch id {
	case gobBool, gobInt, gobUint, gobFloat:
		_, err := g.uint()
		return err
	case gobComplex:
		if _, err := g.uint(); err != nil {
			return err
		}
		_, err := g.uint()
		return err
	case gobBytes, gobString:
		return g.bytes(^uint64(0))
	case gobInterface:
		return g.iface(depth)
	}
	t := g.types[id]
	if t == nil {
		return gobErr("unknown type %d", id)
	}
	switch t.kind {
	case gobStruct:
		return g.structFields(len(t.fields), func(f int) error {
			return g.value(t.fields[f], depth+1)
		})
	case gobSlice, gobArray:
		n, err := g.uint()
		if err != nil {
			return err
		}
		if n > g.left() {
			return gobErr("%d elements declared with %d bytes left", n, g.left())
		}
		for range n {
			if err := g.value(t.elem, depth+1); err != nil {
				return err
			}
		}
		return nil
	case gobMap:
		n, err := g.uint()
		if err != nil {
			return err
		}
		if n > g.left()/2 {
			return gobErr("map of %d entries declared with %d bytes left", n, g.left())
		}
		for range n {
			if err := g.value(t.key, depth+1); err != nil {
				return err
			}
			if err := g.value(t.elem, depth+1); err != nil {
				return err
			}
		}
		return nil
	default:
		return g.bytes(^uint64(0))
	}
}

// iface walks an interface value: the concrete type's name (empty: nil),
// type definitions, the type ID, the value's byte count and the value.
func (g *gobChecker) iface(depth int) error {
	n, err := g.uint()
	if err != nil || n == 0 {
		return err
	}
	if n > gobMaxName || n > uint64(len(g.buf)) {
		return gobErr("interface type name of %d bytes", n)
	}
	g.buf = g.buf[n:]
	id, err := g.typeSequence(true)
	if err != nil {
		return err
	}
	size, err := g.uint()
	if err != nil {
		return err
	}
	if size > uint64(len(g.buf)) {
		return gobErr("interface value of %d bytes exceeds the message", size)
	}
	started, before := g.started, len(g.buf)
	if err := g.top(id, depth+1); err != nil {
		return err
	}
	if g.started != started || uint64(before-len(g.buf)) != size {
		return gobErr("interface value does not match its byte count %d", size)
	}
	return nil
}
