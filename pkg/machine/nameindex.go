package machine

import (
	"encoding/binary"
	"math/bits"
	"unsafe"
)

// nameIndex maps state names to indexes: an immutable open-addressing table
// with a cheap hash over a name's length and its first and last 8 bytes.
// State names are few and short, so it beats the generic map on the hot
// read path (Is, Tick, ...).
type nameIndex struct {
	slots []nameSlot
	shift uint8
}

type nameSlot struct {
	name string
	idx  int32
	used bool
}

func newNameIndex(names []string) nameIndex {
	size := 8
	for size < 2*len(names) {
		size *= 2
	}
	ni := nameIndex{slots: make([]nameSlot, size), shift: uint8(64 - bits.TrailingZeros(uint(size)))}
	mask := uint64(size - 1)
	for i, n := range names {
		h := ni.hash(n)
		for k := uint64(0); ; k++ {
			s := &ni.slots[(h+k)&mask]
			if !s.used {
				*s = nameSlot{name: n, idx: int32(i), used: true}
				break
			}
			if s.name == n {
				break // duplicate; keep the first
			}
		}
	}
	return ni
}

// hash mixes the length and up to 16 bytes of s.
func (ni *nameIndex) hash(s string) uint64 {
	n := len(s)
	var x uint64
	b := unsafe.Slice(unsafe.StringData(s), n)
	switch {
	case n >= 8:
		x = binary.LittleEndian.Uint64(b) ^ bits.RotateLeft64(binary.LittleEndian.Uint64(b[n-8:]), 29)
	default:
		for i := 0; i < n; i++ {
			x = x<<8 | uint64(b[i])
		}
	}
	x ^= uint64(n) << 56
	x *= 0x9E3779B97F4A7C15
	return x >> ni.shift
}

// get returns the index of name, or -1.
func (ni *nameIndex) get(name string) int {
	mask := uint64(len(ni.slots) - 1)
	for h := ni.hash(name); ; h++ {
		s := &ni.slots[h&mask]
		if !s.used {
			return -1
		}
		if s.name == name {
			return int(s.idx)
		}
	}
}
