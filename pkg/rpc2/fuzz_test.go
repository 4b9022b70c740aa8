package rpc2

import (
	"context"
	"errors"
	"testing"
	"time"
)

// FuzzDecode feeds arbitrary bytes to a Conn as the peer's stream, with
// calls pending and handlers of each dispatch kind (concurrent, Ordered,
// Inline) registered. The seeds cover every frame kind, cancel, ping and pong
// included; testdata/fuzz/FuzzDecode holds more. Whatever the
// input, the Conn must not panic, must end with an error once the stream
// ends, and must complete every pending call.
func FuzzDecode(f *testing.F) {
	for _, seed := range fuzzSeeds(f) {
		f.Add(seed)
	}
	reg := testRegistry(f)
	if err := HandleFunc(reg, 20, "ordered", func(_ context.Context, _ *Conn, a *binMsg, r *Reply) error {
		r.C = int(a.V)
		return nil
	}, Ordered()); err != nil {
		f.Fatal(err)
	}
	if err := HandleFunc(reg, 21, "inline", func(ctx context.Context, c *Conn, a *binMsg, _ *struct{}) error {
		if a.V%2 == 1 {
			return c.Queue(ctx, mAdd, &Args{1, 2}) // never waits on the read loop
		}
		return nil
	}, Inline()); err != nil {
		f.Fatal(err)
	}
	// Small read buffers make most frames take the large-frame paths
	// (streamed gob bodies, reused frame buffer).
	defer func(n int) { readBufSize = n }(readBufSize)
	readBufSize = 64
	f.Fuzz(func(t *testing.T, data []byte) {
		fc := newFakeConn(fuzzSettings, data)
		c := NewConn(fc, reg, WithMaxMessageSize(1<<16), WithMaxConcurrency(2), WithRequestWindow(2))
		ctx := context.Background()
		calls := []*Call{
			c.Go(ctx, mAdd, &Args{1, 2}, new(Reply), nil),
			c.Go(ctx, mBin, binMsg{3}, new(binMsg), nil),
			c.Go(ctx, mEcho, "x", nil, nil),
		}
		close(fc.start)
		select {
		case <-c.Done():
		case <-time.After(10 * time.Second):
			t.Fatal("connection did not end at the end of the stream")
		}
		if c.Err() == nil || !errors.Is(c.Err(), ErrConnLost) {
			t.Fatalf("Err = %v, want ErrConnLost", c.Err())
		}
		for i, call := range calls {
			select {
			case <-call.Done:
			default:
				t.Fatalf("call %d not completed", i)
			}
		}
		_ = c.Close()
	})
}

// fuzzSettings opens the fuzzed stream: it gives the Conn credit for the
// calls the target makes.
var fuzzSettings = buildFrames(nil, testFrame{kind: kindSettings, seq: 8})

// fuzzSeeds returns valid and near-valid streams.
func fuzzSeeds(t testing.TB) [][]byte {
	valid := buildFrames(t,
		testFrame{kind: kindRequest, seq: 1, method: mAdd, body: &Args{1, 2}},
		testFrame{kind: kindReply, seq: 1, body: &Reply{C: 3}},
		testFrame{kind: kindReply, seq: 2, body: rawBody{6}},
		testFrame{kind: kindError, seq: 3, body: errBody{CodeApplication, "nope"}},
		testFrame{kind: kindNotify, method: 20, body: rawBody{7}},
		testFrame{kind: kindRequest, seq: 2, method: mEcho, body: "hello"},
		testFrame{kind: kindRequest, seq: 3, method: mRefl, body: &Args{3, 4}},
		testFrame{kind: kindReset},
		testFrame{kind: kindRequest, seq: 4, method: mAdd, body: &Args{5, 6}},
		testFrame{kind: kindRequest, seq: 5, method: 99, body: &Args{5, 6}},
		testFrame{kind: kindRequest, seq: 6, method: mPanic, body: &Args{}},
		testFrame{kind: kindCredit, seq: 3},
		testFrame{kind: kindRequest, seq: 7, method: mSlow, body: &Args{}},
		testFrame{kind: kindCancel, seq: 7},
		testFrame{kind: kindCancel, seq: 1000},
		testFrame{kind: kindPing, seq: 42},
		testFrame{kind: kindPong, seq: 1},
		testFrame{kind: kindNotify, method: 21, body: rawBody{1}},
		testFrame{kind: kindRequest, seq: 8, method: 21, body: rawBody{2}},
	)
	mismatch := buildFrames(t,
		testFrame{kind: kindRequest, seq: 1, method: mAdd, body: "not args"},
		testFrame{kind: kindReply, seq: 1, body: "not a reply"},
		testFrame{kind: kindRequest, seq: 2, method: mAdd, body: &Args{1, 1}},
	)
	return [][]byte{
		valid,
		mismatch,
		valid[:len(valid)/2],
		{},
		{0},
		{0xff, 0xff, 0xff, 0xff, 0x0f},
		{2, byte(kindReset), 0},
		{2, byte(kindSettings), 4},
		{2, byte(kindCredit), 0},
		{3, byte(kindRequest), 1, 1},
		{5, byte(kindRequest) | flagRaw, 1, 1, 0x80, 0x80},
		{2, byte(kindCancel), 0},
		{3, byte(kindCancel), 1, 0},
		{1, byte(kindPing)},
		{3, byte(kindPong), 0x80, 0x80},
		{2, byte(kindPing) | flagRaw, 1},
		{1, 11},
	}
}
