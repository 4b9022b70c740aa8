package rpc2

import (
	"encoding/gob"
	"errors"
	"fmt"
	"io"
	"reflect"
)

// Codec encodes and decodes message bodies for one connection. A Codec may
// keep stream state (gob sends each type description once per stream), so
// every connection gets its own from the factory given to WithCodec.
//
// The connection serializes Encode and ResetEncoder calls (they run in the
// order frames are written) and serializes Decode and ResetDecoder calls (in
// the order frames are read); an Encode may run concurrently with a Decode.
//
// Values that implement encoding.BinaryAppender or encoding.BinaryMarshaler
// never reach the Codec: they travel as raw bytes (see PROTOCOL.md).
type Codec interface {
	// Encode appends the encoding of v to dst and returns the extended slice.
	// On error the connection drops whatever was appended, calls
	// ResetEncoder and tells the peer to call ResetDecoder.
	Encode(dst []byte, v any) ([]byte, error)
	// Decode decodes one body produced by the peer's Encode into v, which is
	// a pointer, or nil to decode and discard (every body is passed to Decode
	// so that stream state stays in sync). If the stream state is lost so
	// that later bodies cannot be decoded, the error must wrap ErrDesync and
	// the connection closes; any other error fails only that message.
	Decode(body []byte, v any) error
	// ResetEncoder returns the encoding side to its initial state.
	ResetEncoder()
	// ResetDecoder returns the decoding side to its initial state.
	ResetDecoder()
}

// NewGobCodec returns the default Codec: one encoding/gob stream per
// direction, so each type is described once per connection and later
// messages carry only values. Concrete types sent inside interface values
// must be registered with gob.Register on both ends.
//
// The gob streams are created on first use: a connection that never sends
// or receives a gob body (aRPC's own messages travel raw) pays nothing for
// them.
func NewGobCodec() Codec { return &gobCodec{} }

type gobCodec struct {
	w     appendWriter
	enc   *gob.Encoder
	r     bodyReader
	dec   *gob.Decoder
	chk   gobChecker
	spool []byte // a large body read from the stream
}

func (g *gobCodec) Encode(dst []byte, v any) ([]byte, error) {
	g.w.b = dst
	if g.enc == nil {
		g.enc = gob.NewEncoder(&g.w)
	}
	err := g.enc.Encode(v)
	out := g.w.b
	g.w.b = nil
	return out, err
}

// Decode checks body (see gobChecker) and decodes it into v.
func (g *gobCodec) Decode(body []byte, v any) error {
	if err := g.chk.check(body); err != nil {
		return err
	}
	g.r.reset(body)
	defer g.r.reset(nil)
	return g.decode(v)
}

// streamDecoder is implemented by codecs that can decode a large body
// straight from the transport (see frameReader.streamFrame).
type streamDecoder interface {
	decodeStream(s *streamBody, v any) error
}

// decodeStream reads a large body, its buffer growing only with the bytes
// that arrive (a peer that declares a large body and stalls costs what it
// sent), then decodes it as Decode does: the checker needs the whole body
// before gob may see any of it.
func (g *gobCodec) decodeStream(s *streamBody, v any) error {
	body, err := readGrowing(s, g.spool[:0], s.left)
	g.spool = body[:0]
	if cap(body) > keepBufLimit {
		g.spool = nil
	}
	if err != nil {
		return fmt.Errorf("%w: %w", ErrDesync, err)
	}
	return g.Decode(body, v)
}

// decode decodes the body that g.r serves and checks it was consumed exactly.
func (g *gobCodec) decode(v any) error {
	if g.dec == nil {
		g.dec = gob.NewDecoder(&g.r)
	}
	err := g.dec.Decode(v)
	if g.r.len() > 0 {
		if err == nil {
			return fmt.Errorf("%w: %d bytes after the gob value", ErrDesync, g.r.len())
		}
		if g.r.off > 0 {
			// gob stopped inside the body: what it learnt of the stream's
			// types may differ from what the checker learnt.
			return fmt.Errorf("%w: %w", ErrDesync, err)
		}
		// gob refused before reading (e.g. v is not a pointer): read the
		// body anyway so its type descriptions are learnt.
		if err2 := g.dec.DecodeValue(reflect.Value{}); err2 != nil || g.r.len() > 0 {
			return fmt.Errorf("%w: %w", ErrDesync, err)
		}
		return err
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w: body holds no complete gob value", ErrDesync)
	}
	return err
}

// ResetEncoder drops the encoding stream; the next Encode starts a new one.
func (g *gobCodec) ResetEncoder() { g.enc = nil }

// ResetDecoder drops the decoding stream; the next Decode starts a new one.
func (g *gobCodec) ResetDecoder() {
	g.dec = nil
	g.chk.reset()
}

// gobCount parses the gob message count at the start of p and checks that
// the message fits in p. It returns the count and the width of its encoding.
func gobCount(p []byte) (n, w int, err error) {
	left := len(p)
	b := p[0]
	var x uint64
	if b < 0x80 {
		x, w = uint64(b), 1
	} else {
		k := -int(int8(b)) // 0x80 gives 128, not -128
		if k > 8 || k >= len(p) {
			return 0, 0, fmt.Errorf("%w: bad gob message count", ErrDesync)
		}
		for _, c := range p[1 : 1+k] {
			x = x<<8 | uint64(c)
		}
		w = 1 + k
	}
	if x == 0 || left < w || x > uint64(left-w) {
		return 0, 0, fmt.Errorf("%w: gob message count %d exceeds the body", ErrDesync, x)
	}
	return int(x), w, nil
}

// appendWriter is an io.Writer that appends to a slice.
type appendWriter struct{ b []byte }

func (w *appendWriter) Write(p []byte) (int, error) {
	w.b = append(w.b, p...)
	return len(p), nil
}

// bodyReader serves one body to the gob decoder; it implements
// io.ByteReader so that gob does not wrap it in a buffer that would read
// ahead.
type bodyReader struct {
	b   []byte
	off int
}

func (r *bodyReader) reset(b []byte) { r.b, r.off = b, 0 }

func (r *bodyReader) len() int { return len(r.b) - r.off }

func (r *bodyReader) Read(p []byte) (int, error) {
	if r.off >= len(r.b) {
		return 0, io.EOF
	}
	n := copy(p, r.b[r.off:])
	r.off += n
	return n, nil
}

func (r *bodyReader) ReadByte() (byte, error) {
	if r.off >= len(r.b) {
		return 0, io.EOF
	}
	b := r.b[r.off]
	r.off++
	return b, nil
}
