package rpc2

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSealFrameRoundTrip(t *testing.T) {
	for _, n := range []int{1, 127, 128, padThreshold - 1, padThreshold, 1 << 20} {
		b := append([]byte{0xaa}, 0, 0, 0, 0, 0) // a frame before, then the reserve
		payload := bytes.Repeat([]byte{7}, n)
		b = append(b, payload...)
		b = sealFrame(b, 1)
		if n < padThreshold {
			assert.Len(t, b, 1+uvarintLen(uint64(n))+n, "minimal prefix for %d", n)
		} else {
			assert.Len(t, b, 1+lenReserve+n, "padded prefix for %d", n)
		}
		fr := newFrameReader(bytes.NewReader(b[1:]), 2<<20)
		got, err := fr.next()
		require.NoError(t, err, "n=%d", n)
		assert.Equal(t, payload, got)
	}
}
