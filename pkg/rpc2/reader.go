package rpc2

import (
	"io"
	"sync"
)

// connReader is the buffered reader of a connection's transport. Its read
// buffer is borrowed from a pool only while bytes wait in it: a connection
// whose peer is quiet blocks in a read into a small array of its own, so an
// idle connection holds smallReadBuf bytes instead of a whole read buffer.
// Frames up to Size bytes can still be peeked whole (see frameReader).
type connReader struct {
	rd   io.Reader
	size int    // the pooled buffer's size
	buf  []byte // small[:] or a pooled buffer of size bytes
	r, w int    // buf[r:w] is buffered
	err  error  // sticky: the transport failed
	big  *[]byte
	// small holds what an idle connection reads next: most frames of a
	// request-reply exchange fit, so they never touch the pool
	small [smallReadBuf]byte
}

// smallReadBuf is the read buffer of an idle connection.
const smallReadBuf = 512

// readPools hold the read buffers borrowed by busy connections, by size.
var readPools sync.Map // int -> *sync.Pool

func readPool(size int) *sync.Pool {
	if p, ok := readPools.Load(size); ok {
		return p.(*sync.Pool)
	}
	p, _ := readPools.LoadOrStore(size, &sync.Pool{New: func() any {
		b := make([]byte, size)
		return &b
	}})
	return p.(*sync.Pool)
}

func newConnReader(rd io.Reader, size int) *connReader {
	r := &connReader{rd: rd, size: size}
	r.buf = r.smallBuf()
	return r
}

// smallBuf is the inline buffer, never larger than Size.
func (b *connReader) smallBuf() []byte {
	return b.small[:min(smallReadBuf, b.size)]
}

// Size returns the largest n Peek can return whole.
func (b *connReader) Size() int { return b.size }

// Buffered returns the number of bytes buffered.
func (b *connReader) Buffered() int { return b.w - b.r }

// fill reads at least one more byte from the transport, with room for need
// bytes buffered in all (need <= Size).
func (b *connReader) fill(need int) {
	if b.r == b.w {
		b.r, b.w = 0, 0
		if b.big != nil && need <= min(smallReadBuf, b.size) {
			// nothing buffered: give the buffer back before a read
			// that may wait for the peer for long
			readPool(b.size).Put(b.big)
			b.big, b.buf = nil, b.smallBuf()
		}
	}
	if len(b.buf)-b.r < need {
		if need > len(b.buf) {
			nb := readPool(b.size).Get().(*[]byte)
			b.w = copy(*nb, b.buf[b.r:b.w])
			if b.big != nil {
				readPool(b.size).Put(b.big)
			}
			b.big, b.buf, b.r = nb, *nb, 0
		} else {
			b.w = copy(b.buf, b.buf[b.r:b.w])
			b.r = 0
		}
	}
	for range 100 {
		n, err := b.rd.Read(b.buf[b.w:])
		b.w += n
		if err != nil {
			b.err = err
			return
		}
		if n > 0 {
			return
		}
	}
	b.err = io.ErrNoProgress
}

// ReadByte reads one byte.
func (b *connReader) ReadByte() (byte, error) {
	for b.r == b.w {
		if b.err != nil {
			return 0, b.err
		}
		b.fill(1)
	}
	c := b.buf[b.r]
	b.r++
	return c, nil
}

// Peek returns the next n bytes (n <= Size) without consuming them, valid
// until the next read; fewer only with an error.
func (b *connReader) Peek(n int) ([]byte, error) {
	if n > b.size {
		return nil, io.ErrShortBuffer
	}
	for b.w-b.r < n && b.err == nil {
		b.fill(n)
	}
	if b.w-b.r < n {
		return b.buf[b.r:b.w], b.err
	}
	return b.buf[b.r : b.r+n], nil
}

// Discard skips n buffered bytes.
func (b *connReader) Discard(n int) {
	b.r += min(n, b.w-b.r)
}

// Read reads up to len(p) bytes: buffered ones first, then (for a large p,
// with nothing buffered) straight from the transport.
func (b *connReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if b.r == b.w {
		if b.err != nil {
			return 0, b.err
		}
		if len(p) >= b.size {
			n, err := b.rd.Read(p)
			if err != nil {
				b.err = err
			}
			return n, err
		}
		b.fill(1)
		if b.r == b.w {
			return 0, b.err
		}
	}
	n := copy(p, b.buf[b.r:b.w])
	b.r += n
	return n, nil
}

// release gives the pooled buffer back (the connection has ended).
func (b *connReader) release() {
	if b.big != nil {
		readPool(b.size).Put(b.big)
		b.big, b.buf, b.r, b.w = nil, b.smallBuf(), 0, 0
	}
}
