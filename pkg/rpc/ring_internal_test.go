package rpc

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestUpdateRing: the ring keeps the last max updates, consecutive, and
// hands out copies of the ones after a version; an older version, or one
// it has not reached, is not there.
func TestUpdateRing(t *testing.T) {
	var r updateRing
	enc := func(v uint64) []byte { return []byte(fmt.Sprintf("update-%d:%s", v, string(make([]byte, v%7)))) }
	const keep = 5
	for v := uint64(10); v <= 30; v++ {
		got := r.add(v, enc(v), keep)
		require.Equal(t, enc(v), got)
		oldest := uint64(10)
		if v >= 10+keep {
			oldest = v - keep + 1
		}
		require.Equal(t, oldest, r.first, "after adding %d", v)
		ups, ok := r.after(oldest - 1)
		require.True(t, ok)
		require.Len(t, ups, int(v-oldest+1))
		for i, u := range ups {
			require.Equal(t, oldest+uint64(i), u.version)
			require.Equal(t, enc(u.version), u.raw)
		}
		if oldest > 10 {
			_, ok = r.after(oldest - 2)
			require.False(t, ok, "a dropped update is not there")
		}
		_, ok = r.after(v)
		require.False(t, ok, "nothing after the last")
	}
	ups, _ := r.after(27)
	r.add(31, enc(31), keep) // shifts the buffer: copies handed out stay right
	require.Equal(t, enc(28), ups[0].raw)
	r.reset()
	_, ok := r.after(30)
	require.False(t, ok)
	r.add(40, enc(40), keep)
	ups, ok = r.after(39)
	require.True(t, ok)
	require.Equal(t, uint64(40), ups[0].version)
}
