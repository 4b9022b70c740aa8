package rpc2

import (
	"bytes"
	"context"
	"encoding/gob"
	"errors"
	"io"
	"net"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// bombArgs has the shape of aRPC's WatchArgs: a map of interface values.
type bombArgs struct {
	ID    uint64
	State int
	Args  map[string]any
}

// mapBomb returns a gob body (type definitions and one value) of bombArgs
// whose map declares entries entries but holds one.
func mapBomb(t testing.TB, entries uint64) []byte {
	t.Helper()
	var buf bytes.Buffer
	require.NoError(t, gob.NewEncoder(&buf).Encode(bombArgs{ID: 1, State: 1, Args: map[string]any{"a": 1}}))
	b := buf.Bytes()
	// the value is the last message (messages are short: one-byte counts);
	// in it, the map's count 1 precedes its key "a"
	var msgs [][]byte
	for p := b; len(p) > 0; {
		n := int(p[0])
		msgs = append(msgs, p[1:1+n])
		p = p[1+n:]
	}
	v := msgs[len(msgs)-1]
	j := bytes.Index(v, []byte{0x01, 0x01, 0x61})
	bomb := append(append(append([]byte{}, v[:j]...), 0xfc,
		byte(entries>>24), byte(entries>>16), byte(entries>>8), byte(entries)), v[j+1:]...)
	var out []byte
	for _, m := range msgs[:len(msgs)-1] {
		out = append(append(out, byte(len(m))), m...)
	}
	return append(append(out, byte(len(bomb))), bomb...)
}

// allocated returns the bytes allocated while fn ran.
func allocated(fn func()) uint64 {
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	before := ms.TotalAlloc
	fn()
	runtime.ReadMemStats(&ms)
	return ms.TotalAlloc - before
}

// TestGobMapBomb: a body of about 100 bytes that declares a map of 2^22
// entries makes plain gob allocate hundreds of MiB; the connection's codec
// refuses it (ErrDesync) after allocating next to nothing.
func TestGobMapBomb(t *testing.T) {
	body := mapBomb(t, 1<<22)
	var plain uint64
	if !testing.Short() {
		plain = allocated(func() {
			var v bombArgs
			_ = gob.NewDecoder(bytes.NewReader(body)).Decode(&v)
		})
	}
	codec := NewGobCodec()
	var err error
	checked := allocated(func() {
		var v bombArgs
		err = codec.Decode(body, &v)
	})
	t.Logf("%d-byte body declaring 2^22 map entries: plain gob allocates %d MiB, the checked codec %d bytes",
		len(body), plain>>20, checked)
	require.ErrorIs(t, err, ErrDesync)
	assert.Less(t, checked, uint64(64<<10))
	if !testing.Short() {
		assert.Greater(t, plain, uint64(100<<20), "the attack no longer works on plain gob: rebuild it")
	}

	// the same map with its real count decodes, through the same codec type
	ok := NewGobCodec()
	var buf bytes.Buffer
	require.NoError(t, gob.NewEncoder(&buf).Encode(bombArgs{ID: 1, State: 1, Args: map[string]any{"a": 1}}))
	var v bombArgs
	require.NoError(t, ok.Decode(buf.Bytes(), &v))
	assert.Equal(t, map[string]any{"a": 1}, v.Args)
}

// TestGobBombOverConn: the bomb sent as a request's body closes the
// connection with ErrDecode/ErrDesync instead of allocating.
func TestGobBombOverConn(t *testing.T) {
	r := NewRegistry()
	require.NoError(t, HandleFunc(r, 1, "watch", func(_ context.Context, _ *Conn, a *bombArgs, _ *struct{}) error {
		return nil
	}))
	a, b := net.Pipe()
	c := NewConn(a, r)
	defer c.Close()
	go func() { _, _ = io.Copy(io.Discard, b) }()
	body := mapBomb(t, 1<<22)
	frame := append([]byte{byte(3 + len(body)), byte(kindRequest), 1, 1}, body...)
	frame[0] = byte(len(frame) - 1)
	grew := allocated(func() {
		_, _ = b.Write(append(buildFrames(t, testFrame{kind: kindSettings, seq: 8}), frame...))
		select {
		case <-c.Done():
		case <-time.After(10 * time.Second):
			t.Fatal("the connection did not end")
		}
	})
	t.Logf("allocated %d KiB while reading and refusing the bomb", grew>>10)
	assert.Less(t, grew, uint64(1<<20))
	assert.ErrorIs(t, c.Err(), ErrDecode)
	assert.ErrorIs(t, c.Err(), ErrDesync)
	_ = b.Close()
}

// gobSample values round-trip through the checked codec.
type (
	gobInner struct {
		X int
		M map[string]int
	}
	gobList struct {
		V    int
		Next *gobList
	}
	gobAll struct {
		B    bool
		I    int64
		U    uint32
		F    float64
		C    complex128
		S    string
		Bs   []byte
		Arr  [3]int16
		Sl   []gobInner
		M    map[int][]string
		Any  any
		Anys []any
		T    time.Time
		P    *gobInner
		L    *gobList
		E    struct{}
		Es   []struct{}
		MA   map[string]any
	}
)

func init() {
	gob.Register(gobInner{})
	gob.Register(map[string]any{})
	gob.Register([]any{})
	gob.Register(gobList{})
	gob.Register(gobLone{})
}

// gobLone is referenced by no other test type, so its definition is sent
// only where a value holds it.
type gobLone struct{ Z int }

// TestGobCheckAccepts: values of every kind gob encodes, sent one after
// another on one stream (later ones reuse type definitions), pass the
// checker and decode as plain gob decodes them.
func TestGobCheckAccepts(t *testing.T) {
	values := []any{
		&gobAll{},
		&gobAll{
			B: true, I: -1 << 40, U: 7, F: 1.5, C: 2i, S: "s", Bs: []byte{1, 2},
			Arr: [3]int16{1, -2, 3}, Sl: []gobInner{{X: 1, M: map[string]int{"a": 1}}, {}},
			M: map[int][]string{1: {"x", ""}, -5: nil}, Any: gobInner{X: 3},
			Anys: []any{1, "two", gobInner{}, nil}, T: time.Unix(1e9, 5).UTC(),
			P: &gobInner{X: 9}, L: &gobList{1, &gobList{2, &gobList{3, nil}}},
			Es: make([]struct{}, 5), MA: map[string]any{"k": []byte("v"), "n": 3.5},
		},
		&gobAll{Any: map[string]any{"k": 1}, Anys: []any{[]any{1, 2}}},
		ptr(42), ptr("text"), ptr([]int{1, 2, 3}), ptr(map[string]int{"a": 1}),
		ptr([]byte("bytes")), ptr(time.Unix(5, 0).UTC()), ptr([2]gobInner{{X: 1}}),
	}
	var buf, plainIn bytes.Buffer
	enc := gob.NewEncoder(&buf)
	plain := gob.NewDecoder(&plainIn)
	codec := NewGobCodec()
	for i, v := range values {
		buf.Reset()
		require.NoError(t, enc.Encode(v), "%d", i)
		plainIn.Write(buf.Bytes())
		want, got := newLike(v), newLike(v)
		require.NoError(t, plain.Decode(want), "%d: plain", i)
		require.NoError(t, codec.Decode(buf.Bytes(), got), "%d", i)
		assert.Equal(t, deref(want), deref(got), "%d", i)
	}
}

// TestGobCheckRefuses: bodies that would make gob allocate more than their
// size, recurse without bound, or parse differently when skipped.
func TestGobCheckRefuses(t *testing.T) {
	enc := func(vs ...any) []byte {
		var buf bytes.Buffer
		e := gob.NewEncoder(&buf)
		for _, v := range vs {
			require.NoError(t, e.Encode(v))
		}
		return buf.Bytes()
	}
	deep := &gobList{}
	for range 200 {
		deep = &gobList{V: 1, Next: deep}
	}
	slice := enc([]int{1, 2, 3})
	slice[len(slice)-4] = 0x7f // 127 elements declared, 3 sent
	cases := map[string][]byte{
		"map bomb":     mapBomb(t, 1<<22),
		"map count":    mapBomb(t, 200),
		"slice count":  slice,
		"deep nesting": enc(deep),
		// an interface in an interface of a type not sent before: gob's
		// encoder splits the outer value across messages
		"split interface": enc(&gobAll{Any: []any{gobLone{Z: 1}}}),
		"two values":      enc(1, 2),
		"garbage":         {3, 0xff, 0xff, 0xff},
		"reserved type":   {3, 0x1f, 0x01, 0x00},
		"unknown type":    {3, 0xff, 0x90, 0x00},
	}
	for name, body := range cases {
		t.Run(name, func(t *testing.T) {
			var v any
			err := NewGobCodec().Decode(body, &v)
			require.Error(t, err)
			assert.True(t, errors.Is(err, ErrDesync), "%v", err)
		})
	}
}

func ptr[T any](v T) *T { return &v }

// newLike returns a new pointer to the zero value of *v's type.
func newLike(v any) any {
	switch v.(type) {
	case *gobAll:
		return new(gobAll)
	case *int:
		return new(int)
	case *string:
		return new(string)
	case *[]int:
		return new([]int)
	case *map[string]int:
		return new(map[string]int)
	case *[]byte:
		return new([]byte)
	case *time.Time:
		return new(time.Time)
	case *[2]gobInner:
		return new([2]gobInner)
	}
	panic("newLike")
}

func deref(v any) any {
	switch p := v.(type) {
	case *gobAll:
		return *p
	case *int:
		return *p
	case *string:
		return *p
	case *[]int:
		return *p
	case *map[string]int:
		return *p
	case *[]byte:
		return *p
	case *time.Time:
		return *p
	case *[2]gobInner:
		return *p
	}
	return nil
}
