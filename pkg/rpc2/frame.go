package rpc2

import (
	"encoding/binary"
	"fmt"
	"io"
	"math"
)

// Wire format (see PROTOCOL.md, "Layer 1"):
//
//	frame   = length:uvarint  payload[length]
//	payload = kindflags:byte  fields...  body
//
// Fields per kind:
//
//	request  seq:uvarint(>0) method:uvarint(>0) body
//	notify   method:uvarint(>0) body
//	reply    seq:uvarint(>0) body
//	error    seq:uvarint(>0) code:uvarint message(rest, UTF-8)
//	reset    (nothing)
//	settings window:uvarint(>0) [ignored extension bytes]
//	credit   n:uvarint(>0)
//	cancel   seq:uvarint(>0)
//	ping     opaque:uvarint
//	pong     opaque:uvarint (the ping's)
type kind byte

const (
	kindRequest  kind = 1
	kindNotify   kind = 2
	kindReply    kind = 3
	kindError    kind = 4
	kindReset    kind = 5
	kindSettings kind = 6
	kindCredit   kind = 7
	kindCancel   kind = 8
	kindPing     kind = 9
	kindPong     kind = 10

	kindMask = 0x0f
	// flagRaw marks a body that is the raw bytes of an
	// encoding.BinaryMarshaler/BinaryAppender, not codec output.
	flagRaw byte = 0x10
	// flagsKnown are the flag bits a receiver accepts.
	flagsKnown = flagRaw

	// lenReserve is the room reserved for a frame's length prefix while its
	// payload is encoded (5 uvarint bytes cover maxMessageLimit).
	lenReserve = 5
)

// frame is a parsed payload. body aliases the read buffer.
type frame struct {
	kind   kind
	raw    bool
	seq    uint64 // also the value of settings, credit, ping and pong frames
	method uint64
	code   uint64
	body   []byte
	stream *streamBody // instead of body: a large codec body still in the stream
}

// parseFrame parses one payload (the bytes after the length prefix).
func parseFrame(p []byte) (frame, error) {
	var f frame
	if len(p) == 0 {
		return f, fmt.Errorf("%w: empty frame", ErrProtocol)
	}
	kf := p[0]
	if kf&^(kindMask|flagsKnown) != 0 {
		return f, fmt.Errorf("%w: unknown flags %#x", ErrProtocol, kf)
	}
	f.kind, f.raw = kind(kf&kindMask), kf&flagRaw != 0
	p = p[1:]
	var ok bool
	switch f.kind {
	case kindRequest:
		if f.seq, p, ok = uvarint(p); !ok || f.seq == 0 {
			return f, fmt.Errorf("%w: bad request seq", ErrProtocol)
		}
		if f.method, p, ok = uvarint(p); !ok || f.method == 0 {
			return f, fmt.Errorf("%w: bad request method", ErrProtocol)
		}
	case kindNotify:
		if f.method, p, ok = uvarint(p); !ok || f.method == 0 {
			return f, fmt.Errorf("%w: bad notify method", ErrProtocol)
		}
	case kindReply:
		if f.seq, p, ok = uvarint(p); !ok || f.seq == 0 {
			return f, fmt.Errorf("%w: bad reply seq", ErrProtocol)
		}
	case kindError:
		if f.seq, p, ok = uvarint(p); !ok || f.seq == 0 {
			return f, fmt.Errorf("%w: bad error seq", ErrProtocol)
		}
		if f.code, p, ok = uvarint(p); !ok || f.code > math.MaxUint32 {
			return f, fmt.Errorf("%w: bad error code", ErrProtocol)
		}
		if f.raw {
			return f, fmt.Errorf("%w: raw flag on an error frame", ErrProtocol)
		}
	case kindReset:
		if len(p) != 0 || f.raw {
			return f, fmt.Errorf("%w: malformed reset frame", ErrProtocol)
		}
	case kindSettings:
		if f.seq, p, ok = uvarint(p); !ok || f.seq == 0 || f.seq > maxWindow || f.raw {
			return f, fmt.Errorf("%w: malformed settings frame", ErrProtocol)
		}
	case kindCredit:
		if f.seq, p, ok = uvarint(p); !ok || f.seq == 0 || f.seq > maxWindow || len(p) != 0 || f.raw {
			return f, fmt.Errorf("%w: malformed credit frame", ErrProtocol)
		}
	case kindCancel:
		if f.seq, p, ok = uvarint(p); !ok || f.seq == 0 || len(p) != 0 || f.raw {
			return f, fmt.Errorf("%w: malformed cancel frame", ErrProtocol)
		}
	case kindPing, kindPong:
		if f.seq, p, ok = uvarint(p); !ok || len(p) != 0 || f.raw {
			return f, fmt.Errorf("%w: malformed ping or pong frame", ErrProtocol)
		}
	default:
		return f, fmt.Errorf("%w: unknown frame kind %d", ErrProtocol, f.kind)
	}
	f.body = p
	return f, nil
}

func uvarint(p []byte) (uint64, []byte, bool) {
	v, n := binary.Uvarint(p)
	if n <= 0 {
		return 0, p, false
	}
	return v, p[n:], true
}

// appendHeader appends the kind byte and the fields before the body.
func appendHeader(b []byte, k kind, seq uint64, m Method) []byte {
	b = append(b, byte(k))
	switch k {
	case kindRequest:
		b = binary.AppendUvarint(b, seq)
		b = binary.AppendUvarint(b, uint64(m))
	case kindNotify:
		b = binary.AppendUvarint(b, uint64(m))
	case kindReply, kindError, kindSettings, kindCredit, kindCancel, kindPing, kindPong:
		b = binary.AppendUvarint(b, seq)
	}
	return b
}

// sealFrame writes the length prefix of the frame that starts at start (with
// lenReserve bytes reserved) and returns the new slice. A small frame gets a
// minimal prefix (the payload moves down to close the gap); a large one gets
// a padded 5-byte uvarint instead, which saves moving the payload.
func sealFrame(b []byte, start int) []byte {
	n := len(b) - start - lenReserve
	if n >= padThreshold {
		p := b[start : start+lenReserve]
		x := uint64(n)
		for i := range lenReserve - 1 {
			p[i] = byte(x) | 0x80
			x >>= 7
		}
		p[lenReserve-1] = byte(x)
		return b
	}
	k := uvarintLen(uint64(n))
	if k < lenReserve {
		copy(b[start+k:], b[start+lenReserve:])
		b = b[:len(b)-(lenReserve-k)]
	}
	binary.PutUvarint(b[start:], uint64(n))
	return b
}

// padThreshold is the payload size from which sealFrame pads the prefix.
const padThreshold = 4 << 10

func uvarintLen(x uint64) int {
	n := 1
	for x >= 0x80 {
		x >>= 7
		n++
	}
	return n
}

// frameReader reads length-prefixed frames, checking each length against max
// before allocating or waiting for its bytes.
type frameReader struct {
	br     *connReader
	max    int
	buf    []byte // reused for frames larger than br's buffer
	n      int    // bytes to discard from br after the current frame
	stream streamBody
}

const (
	// keepBufLimit is the largest buffer a connection keeps for reuse
	// (read, write and codec buffers); larger ones are dropped after use, so
	// that a connection that once carried a large message does not keep
	// that much memory.
	keepBufLimit = 256 << 10
	maxLenPrefix = 5
)

// readBufSize is the read buffer of a connection; frames up to it are
// decoded in place, larger ones are read into a reused buffer or streamed.
// A variable so that tests can make every frame "large".
var readBufSize = 8 << 10

func newFrameReader(r io.Reader, max int) *frameReader {
	return &frameReader{br: newConnReader(r, readBufSize), max: max}
}

// next returns the next payload. The slice is valid until the next call.
func (fr *frameReader) next() ([]byte, error) {
	size, err := fr.nextSize()
	if err != nil {
		return nil, err
	}
	return fr.payload(size)
}

// nextSize reads the next length prefix and checks it against the limit.
func (fr *frameReader) nextSize() (int, error) {
	if fr.n > 0 {
		fr.br.Discard(fr.n) // bytes are buffered
		fr.n = 0
	}
	var n uint64
	for i := 0; ; i++ {
		b, err := fr.br.ReadByte()
		if err != nil {
			if i > 0 && err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return 0, err
		}
		if i == maxLenPrefix-1 && b >= 0x80 {
			return 0, fmt.Errorf("%w: frame length prefix too long", ErrProtocol)
		}
		n |= uint64(b&0x7f) << (7 * i)
		if b < 0x80 {
			break
		}
	}
	if n == 0 {
		return 0, fmt.Errorf("%w: empty frame", ErrProtocol)
	}
	if n > uint64(fr.max) {
		return 0, fmt.Errorf("%w: frame of %d bytes exceeds the limit of %d bytes", ErrTooLarge, n, fr.max)
	}
	return int(n), nil
}

// payload returns the size bytes of the current frame's payload.
func (fr *frameReader) payload(size int) ([]byte, error) {
	if size <= fr.br.Size() {
		p, err := fr.br.Peek(size)
		if err != nil {
			return nil, unexpected(err)
		}
		fr.n = size
		return p, nil
	}
	p, err := readGrowing(fr.br, fr.buf[:0], size)
	fr.buf = p[:0]
	if cap(p) > keepBufLimit {
		fr.buf = nil
	}
	if err != nil {
		return nil, err
	}
	return p, nil
}

// growStart is the first allocation for a frame that does not fit the read
// buffer.
const growStart = 16 << 10

// readGrowing reads size bytes, appending to buf, and returns the grown
// slice. A declared size never chooses an allocation: buf grows (doubling,
// up to size) only once the bytes already allocated for have arrived, so a
// peer that declares a large frame and stalls costs at most twice what it
// sent (at least growStart), not what it declared.
func readGrowing(r io.Reader, buf []byte, size int) ([]byte, error) {
	for len(buf) < size {
		if len(buf) == cap(buf) {
			nb := make([]byte, len(buf), min(size, max(growStart, 2*len(buf))))
			copy(nb, buf)
			buf = nb
		}
		k, err := io.ReadFull(r, buf[len(buf):min(cap(buf), size)])
		buf = buf[:len(buf)+k]
		if err != nil {
			return buf, unexpected(err)
		}
	}
	return buf, nil
}

// streamHeaderPeek is how much of a large frame is peeked to parse its
// header (a kind byte and two uvarints need at most 21).
const streamHeaderPeek = 32

// streamFrame parses the header of a large frame of size bytes and, if its
// body is a codec body of a request, notification or reply, returns the
// frame with the body left in the stream (f.stream) so that the codec reads
// it straight from the transport instead of from a copy. Otherwise it
// consumes nothing and returns false.
func (fr *frameReader) streamFrame(size int) (frame, bool) {
	if size <= fr.br.Size() {
		return frame{}, false
	}
	pre, err := fr.br.Peek(streamHeaderPeek)
	if err != nil {
		return frame{}, false
	}
	f, err := parseFrame(pre)
	if err != nil || f.raw || (f.kind != kindRequest && f.kind != kindNotify && f.kind != kindReply) {
		return frame{}, false
	}
	hdr := len(pre) - len(f.body)
	fr.br.Discard(hdr) // buffered
	fr.stream = streamBody{br: fr.br, left: size - hdr}
	f.body, f.stream = nil, &fr.stream
	return f, true
}

// streamBody reads the body of a large frame from the transport, never past
// the end of the frame.
type streamBody struct {
	br   *connReader
	left int
}

func (s *streamBody) Read(p []byte) (int, error) {
	if s.left == 0 {
		return 0, io.EOF
	}
	if len(p) > s.left {
		p = p[:s.left]
	}
	n, err := s.br.Read(p)
	s.left -= n
	return n, unexpected(err)
}

func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}
