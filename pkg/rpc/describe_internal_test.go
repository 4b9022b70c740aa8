package rpc

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"testing"

	"github.com/stretchr/testify/require"

	am "github.com/arpc-go/arpc/pkg/machine"
	"github.com/arpc-go/arpc/pkg/rpc2"
)

// rawReply is a reply whose bytes a test chooses, sent as a raw body.
type rawReply struct{ b []byte }

// AppendBinary implements encoding.BinaryAppender.
func (r *rawReply) AppendBinary(b []byte) ([]byte, error) { return append(b, r.b...), nil }

// fakeDescriber serves Describe with reply on a loopback port, and nothing
// else; stopped at cleanup.
func fakeDescriber(t *testing.T, reply func() []byte) string {
	t.Helper()
	reg := rpc2.NewRegistry()
	require.NoError(t, rpc2.HandleFunc(reg, mDescribe, "Describe",
		func(_ context.Context, _ *rpc2.Conn, _ *msgDescribe, r *rawReply) error {
			r.b = reply()
			return nil
		}))
	srv := rpc2.NewServer(reg)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(context.Background(), lis)
	}()
	t.Cleanup(func() {
		_ = srv.Close()
		itWait(t, done, "fake server stopped")
	})
	return lis.Addr().String()
}

func describedBytes(t *testing.T, d *respDescribe) []byte {
	t.Helper()
	b, err := d.AppendBinary(nil)
	require.NoError(t, err)
	return b
}

func validDescribe() *respDescribe {
	s := am.Struct{
		"A":          {Add: am.S{"B"}, Remove: am.S{"Ghost"}},
		"B":          {Multi: true, Require: am.S{"A"}},
		am.Exception: {Multi: true},
	}
	names := am.S{"A", "B", am.Exception}
	return &respDescribe{MachineID: "m", SchemaHash: SchemaHash(s, names), Names: names, Schema: s}
}

// TestDescribeHostileReply: whatever a server answers, Describe returns a
// schema that matches its hash or an error wrapping ErrInvalidResp; it never
// panics or allocates what a count declares.
func TestDescribeHostileReply(t *testing.T) {
	valid := describedBytes(t, validDescribe())
	uv := func(v uint64) []byte { return binary.AppendUvarint(nil, v) }
	header := func() []byte {
		b := appendString(nil, "m")
		return binary.LittleEndian.AppendUint64(b, 0)
	}
	cases := map[string][]byte{
		"empty":           {},
		"garbage":         []byte("\xff\xfe\xfd\xfc garbage"),
		"truncated":       valid[:len(valid)-1],
		"trailing":        append(append([]byte(nil), valid...), 0),
		"huge name count": append(header(), uv(1<<40)...),
		"huge refs count": append(append(append(header(), uv(1)...), appendString(nil, "A")...),
			append(uv(0), append([]byte{0}, uv(1<<40)...)...)...),
		"ref out of range": append(append(append(header(), uv(1)...), appendString(nil, "A")...),
			append(uv(0), 0, 1, 7, 0, 0, 0)...),
		"repeated name": append(append(append(header(), uv(2)...), appendString(nil, "A")...),
			appendString(nil, "A")...),
		"empty name": append(append(header(), uv(1)...), appendString(nil, "")...),
		"unknown flag": append(append(append(header(), uv(1)...), appendString(nil, "A")...),
			append(uv(0), 0x80, 0, 0, 0, 0)...),
	}
	// a well-formed reply whose schema is not the one its hash names
	wrong := validDescribe()
	wrong.SchemaHash++
	cases["wrong hash"] = describedBytes(t, wrong)

	for name, body := range cases {
		t.Run(name, func(t *testing.T) {
			addr := fakeDescriber(t, func() []byte { return body })
			ctx, cancel := context.WithTimeout(context.Background(), itDeadline)
			defer cancel()
			s, n, err := Describe(ctx, addr)
			require.ErrorIs(t, err, ErrInvalidResp)
			require.Nil(t, s)
			require.Nil(t, n)
		})
	}

	t.Run("valid", func(t *testing.T) {
		addr := fakeDescriber(t, func() []byte { return valid })
		ctx, cancel := context.WithTimeout(context.Background(), itDeadline)
		defer cancel()
		s, n, err := Describe(ctx, addr)
		require.NoError(t, err)
		require.Equal(t, am.S{"A", "B", am.Exception}, n)
		require.Equal(t, am.S{"Ghost"}, s["A"].Remove)
	})
}

// TestDescribeReplyTooLarge: a reply over the client's message size limit
// fails the call before it is read, with ErrInvalidResp.
func TestDescribeReplyTooLarge(t *testing.T) {
	big := &respDescribe{MachineID: "big", Schema: am.Struct{}}
	for i := range 2000 {
		n := fmt.Sprintf("State%04d", i)
		big.Names = append(big.Names, n)
		big.Schema[n] = am.State{}
	}
	big.SchemaHash = SchemaHash(big.Schema, big.Names)
	body := describedBytes(t, big)
	require.Greater(t, len(body), 16<<10)
	addr := fakeDescriber(t, func() []byte { return body })
	ctx, cancel := context.WithTimeout(context.Background(), itDeadline)
	defer cancel()

	_, _, err := Describe(ctx, addr, WithClientMaxMessageSize(16<<10))
	require.ErrorIs(t, err, ErrInvalidResp)
	require.ErrorIs(t, err, rpc2.ErrTooLarge)

	// within the limit it is accepted
	_, n, err := Describe(ctx, addr)
	require.NoError(t, err)
	require.Len(t, n, 2000)
}

// FuzzDescribeReply: the decoder of Describe replies never panics, and what
// it accepts encodes back to a reply that decodes the same.
func FuzzDescribeReply(f *testing.F) {
	b, _ := validDescribe().AppendBinary(nil)
	f.Add(b)
	f.Add([]byte{})
	f.Add([]byte{1, 'm', 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 'A', 0, 3, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		var d respDescribe
		if d.UnmarshalBinary(data) != nil {
			return
		}
		again, err := d.AppendBinary(nil)
		require.NoError(t, err)
		var d2 respDescribe
		require.NoError(t, d2.UnmarshalBinary(again))
		require.Equal(t, d.Names, d2.Names)
		require.Equal(t, SchemaHash(d.Schema, d.Names), SchemaHash(d2.Schema, d2.Names))
	})
}

// TestDescribeRequestRoundTrip checks the request's encoding both ways.
func TestDescribeRequestRoundTrip(t *testing.T) {
	m := msgDescribe{ProtoVersion: protoVersion, ClientID: "x", Token: []byte("secret")}
	b, err := m.AppendBinary(nil)
	require.NoError(t, err)
	var got msgDescribe
	require.NoError(t, got.UnmarshalBinary(b))
	require.Equal(t, m, got)
	require.ErrorIs(t, got.UnmarshalBinary(append(b, 0)), ErrInvalidMsg)
}

// TestStatsWire: the counters travel by name; unknown names are skipped, a
// name twice or a count beyond the bytes fails.
func TestStatsWire(t *testing.T) {
	st := Stats{Conns: 2, Sessions: 3, Forbidden: 4, Traffic: Traffic{
		Handshakes: 5, MutationsQueued: 6, BytesOut: 1 << 40,
		Errors: map[rpc2.Code]uint64{CodeForbidden: 7, rpc2.CodeBadRequest: 8},
	}}
	b, err := (&respStats{st: st}).AppendBinary(nil)
	require.NoError(t, err)
	var got respStats
	require.NoError(t, got.UnmarshalBinary(b))
	require.Equal(t, st, got.st)

	uv := func(v uint64) []byte { return binary.AppendUvarint(nil, v) }
	pair := func(name string, v uint64) []byte { return append(appendString(nil, name), uv(v)...) }
	body := append(uv(3), pair("fromTheFuture", 1)...)
	body = append(body, pair("handshakes", 9)...)
	body = append(body, pair("errors.notANumber", 1)...)
	require.NoError(t, got.UnmarshalBinary(body))
	require.Equal(t, Stats{Traffic: Traffic{Handshakes: 9}}, got.st)

	twice := append(append(uv(2), pair("handshakes", 1)...), pair("handshakes", 2)...)
	require.ErrorIs(t, got.UnmarshalBinary(twice), ErrInvalidMsg)
	require.ErrorIs(t, got.UnmarshalBinary(uv(1<<40)), ErrInvalidMsg)
	require.ErrorIs(t, got.UnmarshalBinary(append(b, 0)), ErrInvalidMsg)
}

// TestActiveArgsWire: the reply decodes what was encoded, and a count
// beyond the bytes fails before allocating.
func TestActiveArgsWire(t *testing.T) {
	m := respActiveArgs{states: []stateArgs{{idx: 2, args: []argText{{"a", "1"}, {"b", `"x"`}}}, {idx: 0}}}
	b, err := m.AppendBinary(nil)
	require.NoError(t, err)
	var got respActiveArgs
	require.NoError(t, got.UnmarshalBinary(b))
	require.Equal(t, m.states[0], got.states[0])
	require.Equal(t, 0, got.states[1].idx)
	require.Empty(t, got.states[1].args)
	require.ErrorIs(t, got.UnmarshalBinary(binary.AppendUvarint(nil, 1<<40)), ErrInvalidMsg)
	require.ErrorIs(t, got.UnmarshalBinary(append(b, 1)), ErrInvalidMsg)
}
