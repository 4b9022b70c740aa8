package rpc2

import (
	"bytes"
	"io"
	"math/rand/v2"
	"testing"
	"testing/iotest"

	"github.com/stretchr/testify/require"
)

// chunkReader returns at most the next chunk size of its data per Read, as
// a transport delivers what has arrived so far.
type chunkReader struct {
	data   []byte
	chunks []int
}

func (r *chunkReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	n := len(r.data)
	if len(r.chunks) > 0 {
		n = min(n, r.chunks[0])
		r.chunks = r.chunks[1:]
	}
	n = copy(p, r.data[:n])
	r.data = r.data[n:]
	return n, nil
}

// TestConnReaderFrames: frames of every size around the inline buffer and
// the pooled one, arriving in arbitrary pieces, come out of the frame reader
// whole and in order, and a large payload read with Read matches too; the
// reader ends on the inline buffer once nothing is buffered.
func TestConnReaderFrames(t *testing.T) {
	const size = 2048 // the pooled buffer; the inline one is smallReadBuf
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 200 {
		var (
			stream bytes.Buffer
			want   [][]byte
		)
		for range 1 + rng.IntN(40) {
			n := 1 + rng.IntN(size)
			if rng.IntN(4) == 0 {
				n = smallReadBuf - 2 + rng.IntN(5) // around the inline buffer's edge
			}
			p := make([]byte, n)
			for i := range p {
				p[i] = byte(rng.Uint32())
			}
			want = append(want, p)
			stream.Write(appendUvarint(nil, uint64(n)))
			stream.Write(p)
		}
		var chunks []int
		for range 64 {
			chunks = append(chunks, 1+rng.IntN(3*size))
		}
		src := &chunkReader{data: stream.Bytes(), chunks: chunks}
		fr := &frameReader{br: newConnReader(iotest.HalfReader(src), size), max: 1 << 20}
		for i, p := range want {
			got, err := fr.next()
			require.NoError(t, err, "round %d frame %d", round, i)
			require.Equal(t, p, got, "round %d frame %d (%d bytes)", round, i, len(p))
		}
		_, err := fr.next()
		require.ErrorIs(t, err, io.EOF)
		require.Nil(t, fr.br.big, "round %d: the pooled buffer is kept after the stream is drained", round)
	}
}

// TestConnReaderRead: Read hands out what is buffered, then reads large
// requests straight from the transport.
func TestConnReaderRead(t *testing.T) {
	data := make([]byte, 10000)
	for i := range data {
		data[i] = byte(i)
	}
	r := newConnReader(&chunkReader{data: data, chunks: []int{100, 5000, 3, 4897}}, 1024)
	b, err := r.ReadByte()
	require.NoError(t, err)
	require.Equal(t, data[0], b)
	got, err := io.ReadAll(struct{ io.Reader }{r})
	require.NoError(t, err)
	require.Equal(t, data[1:], got)
	r.release()
	require.Nil(t, r.big)
}

func appendUvarint(b []byte, v uint64) []byte {
	for v >= 0x80 {
		b = append(b, byte(v)|0x80)
		v >>= 7
	}
	return append(b, byte(v))
}
