package benchgrpc

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestWorkerCallOp(t *testing.T) {
	w := NewWorker(1)
	var notified []int
	w.SetListener(func(v int) { notified = append(notified, v) })

	assert.Equal(t, 0, w.Value(), "no value before Start")
	assert.False(t, w.CallOp(1), "an op before Start is an error")
	assert.Equal(t, uint64(1), w.Errors())

	w.Start()
	require.Len(t, notified, 1)
	v := w.Value()
	assert.Equal(t, notified[0], v)
	assert.Contains(t, []int{1, 2, 3}, v)

	wrong := v%3 + 1
	assert.False(t, w.CallOp(wrong))
	assert.Equal(t, v, w.Value(), "a wrong op changes nothing")
	assert.Len(t, notified, 1, "a wrong op notifies nobody")
	assert.Equal(t, uint64(2), w.Errors())
	assert.Equal(t, uint64(0), w.Completions())

	for i := range 50 {
		v := w.Value()
		require.True(t, w.CallOp(v), "cycle %d", i)
		require.Len(t, notified, i+2)
		require.Equal(t, notified[i+1], w.Value(), "the listener gets the new value")
	}
	assert.Equal(t, uint64(50), w.Completions())
	assert.Equal(t, uint64(2), w.Errors())
}

func TestWorkerSeedDeterminesSequence(t *testing.T) {
	seq := func(seed uint64) []int {
		w := NewWorker(seed)
		w.Start()
		out := []int{w.Value()}
		for range 40 {
			w.CallOp(w.Value())
			out = append(out, w.Value())
		}
		return out
	}
	a := seq(7)
	assert.Equal(t, a, seq(7), "same seed, same values")
	assert.NotEqual(t, a, seq(8), "another seed, other values")
	seen := map[int]bool{}
	for _, v := range a {
		seen[v] = true
	}
	assert.Len(t, seen, 3, "all three values occur: %v", a)
}

func TestLocalClient(t *testing.T) {
	w := NewWorker(3)
	c := NewLocalClient(w)
	for i := range 50 {
		require.NoError(t, c.Cycle(t.Context()), "cycle %d", i)
	}
	require.NoError(t, c.Close())
	assert.Equal(t, uint64(50), w.Completions())
	assert.Equal(t, uint64(0), w.Errors())

	// Without the listener no notification arrives, and the cycle says so.
	assert.ErrorIs(t, c.Cycle(t.Context()), ErrNoNotification)
}
