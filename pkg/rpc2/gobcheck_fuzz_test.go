package rpc2

import (
	"bytes"
	"encoding/gob"
	"runtime/metrics"
	"testing"
	"time"
)

// FuzzGobCheck: whatever the body, the checked codec never panics, and a
// body it lets through costs gob allocations in proportion to its size
// (here at most 1 MiB plus 256 bytes per body byte; the constant covers the
// runtime's per-span accounting of small allocations), whatever the target
// type. Plain gob fails this on a 113-byte map bomb by a factor of 300.
func FuzzGobCheck(f *testing.F) {
	for _, v := range []any{
		&bombArgs{ID: 1, State: 2, Args: map[string]any{"a": 1, "b": "x", "c": []byte{1}}},
		&gobAll{Anys: []any{1, gobInner{X: 1}}, M: map[int][]string{1: {"a"}}, MA: map[string]any{"k": 2.5}},
		&gobAll{T: time.Unix(1, 0), Any: []byte("x")},
		ptr([]any{[]any{1}, map[string]any{}}),
		ptr([3]int{1, 2, 3}),
	} {
		var buf bytes.Buffer
		if err := gob.NewEncoder(&buf).Encode(v); err != nil {
			f.Fatal(err)
		}
		f.Add(buf.Bytes())
	}
	f.Add(mapBomb(f, 1<<22))
	f.Add(mapBomb(f, 40))
	sample := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}
	allocs := func() uint64 {
		metrics.Read(sample)
		return sample[0].Value.Uint64()
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		targets := []func() any{
			func() any { return new(bombArgs) },
			func() any { return new(gobAll) },
			func() any { return new(any) },
			func() any { return new(map[string]any) },
			func() any { return new([]any) },
			func() any { return nil },
		}
		limit := uint64(1<<20 + 256*len(body))
		for _, target := range targets {
			codec := NewGobCodec()
			v := target()
			before := allocs()
			_ = codec.Decode(body, v)
			if grew := allocs() - before; grew > limit {
				t.Fatalf("%d-byte body, target %T: %d bytes allocated", len(body), v, grew)
			}
		}
	})
}
