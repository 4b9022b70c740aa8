package rpc

import "slices"

// updateRing keeps a session's latest updates for a client that resumes:
// their encodings back to back in one buffer, consecutive versions from
// first on. An idle session that was sent a full ring holds about 20 bytes
// per update, where decoded updates would take a few hundred.
type updateRing struct {
	buf   []byte
	ends  []uint32 // ends[i]: where update first+i ends in buf
	first uint64
}

// add appends the encoding of update version (the one after the last, or
// the first after reset), dropping the oldest beyond max. It returns the
// kept copy of enc, valid until the next add or reset.
func (r *updateRing) add(version uint64, enc []byte, max int) []byte {
	if len(r.ends) == 0 {
		r.first = version
	}
	if len(r.ends) >= max {
		// drop the oldest: the buffer stays one block, of at most max
		// updates
		drop := len(r.ends) - max + 1
		cut := r.ends[drop-1]
		r.buf = r.buf[:copy(r.buf, r.buf[cut:])]
		r.ends = r.ends[:copy(r.ends, r.ends[drop:])]
		for i := range r.ends {
			r.ends[i] -= cut
		}
		r.first += uint64(drop)
	}
	start := len(r.buf)
	r.buf = append(r.buf, enc...)
	r.ends = append(r.ends, uint32(len(r.buf)))
	return r.buf[start:len(r.buf):len(r.buf)]
}

// reset forgets every update.
func (r *updateRing) reset() {
	r.buf, r.ends = r.buf[:0], r.ends[:0]
}

// after returns the updates after version v, each as its version and a copy
// of its encoding, or false when the ring no longer has all of them.
func (r *updateRing) after(v uint64) ([]msgUpdate, bool) {
	last := r.first + uint64(len(r.ends)) - 1
	if len(r.ends) == 0 || v+1 < r.first || v >= last {
		return nil, false
	}
	i := int(v + 1 - r.first)
	ups := make([]msgUpdate, 0, len(r.ends)-i)
	for ; i < len(r.ends); i++ {
		start := uint32(0)
		if i > 0 {
			start = r.ends[i-1]
		}
		// copied: the caller adds to the ring before it sends these
		ups = append(ups, msgUpdate{version: r.first + uint64(i), raw: slices.Clone(r.buf[start:r.ends[i]])})
	}
	return ups, true
}
