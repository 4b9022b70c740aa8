package rpc

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/gob"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	am "github.com/arpc-go/arpc/pkg/machine"
	"github.com/arpc-go/arpc/pkg/rpc2"
)

// Fuzzing Layer 2. FuzzServerSession drives a server session through
// ServeConn over net.Pipe: after a valid handshake, the input is a sequence
// of messages to the server (see fuzzFrames). FuzzClientUpdate feeds the
// client's decoders and its mirror. Seeds are below; testdata/fuzz holds
// more, found by fuzzing. Both run their corpora as normal tests.

// fuzzMsg is one message of a FuzzServerSession input: method, flags (bit 0:
// notification; bit 1: codec body, else raw) and body.
type fuzzMsg struct {
	method rpc2.Method
	flags  byte
	body   []byte
}

// encodeFuzz encodes messages as a FuzzServerSession input: per message a
// method byte, a flags byte, a uvarint length and the body.
func encodeFuzz(msgs ...fuzzMsg) []byte {
	var b []byte
	for _, m := range msgs {
		b = append(b, byte(m.method), m.flags)
		b = binary.AppendUvarint(b, uint64(len(m.body)))
		b = append(b, m.body...)
	}
	return b
}

// decodeFuzz splits an input into messages (a short tail is dropped).
func decodeFuzz(data []byte) []fuzzMsg {
	var msgs []fuzzMsg
	for len(data) >= 3 {
		m := fuzzMsg{method: rpc2.Method(data[0]), flags: data[1]}
		n, k := binary.Uvarint(data[2:])
		if k <= 0 || n > uint64(len(data)-2-k) {
			break
		}
		m.body = data[2+k : 2+k+int(n)]
		data = data[2+k+int(n):]
		msgs = append(msgs, m)
	}
	return msgs
}

func appendRaw(v interface{ AppendBinary([]byte) ([]byte, error) }) []byte {
	b, _ := v.AppendBinary(nil)
	return b
}

func gobBody(v any) []byte {
	var buf bytes.Buffer
	_ = gob.NewEncoder(&buf).Encode(v)
	return buf.Bytes()
}

func fuzzSessionSeeds() [][]byte {
	mut := func(typ byte, id uint64, states ...int) []byte {
		return appendRaw(&msgMutate{Type: typ, ReqID: id, Ack: id, States: states, Args: am.A{"k": 1, "s": "v"}})
	}
	valid := encodeFuzz(
		fuzzMsg{mMutate, 0, mut(mutAdd, 1, 0)},
		fuzzMsg{mMutate, 0, mut(mutAdd, 1, 0)}, // a retry
		fuzzMsg{mMutateNS, 1, mut(mutRemove, 0, 0, 1)},
		fuzzMsg{mMutate, 0, mut(mutAddErr, 2, 1)},
		fuzzMsg{mMutate, 0, mut(mutSet, 3, 2)},
		fuzzMsg{mSync, 0, nil},
		fuzzMsg{mGet, 0, []byte("name")},
		fuzzMsg{mLog, 1, []byte("hello")},
		fuzzMsg{mWatchArgs, 2, gobBody(&MsgWatchArgs{ID: 1, State: 2, Args: am.A{"x": 1}})},
		fuzzMsg{mUnwatchArgs, 1, appendRaw(&wireUint{v: 1})},
		fuzzMsg{mMutateGob, 2, gobBody(&MsgMutateGob{Type: mutAdd, ReqID: 4, States: []int{1}, Args: am.A{"t": time.Unix(1, 0)}})},
		fuzzMsg{mMutateNSGob, 3, gobBody(&MsgMutateGob{Type: mutRemove, States: []int{1}})},
		fuzzMsg{mRequest, 0, appendRaw(&msgRequest{ReqID: 5, Ack: 5, ID: "corr-1", State: 0, Until: 1, Args: am.A{"n": 1}})},
		fuzzMsg{mUnrequest, 1, appendRaw(&msgUnrequest{ids: []string{"corr-1"}})},
		fuzzMsg{mHandshake, 0, appendRaw(&msgHandshake{ProtoVersion: protoVersion})},
		fuzzMsg{99, 0, []byte{1, 2, 3}},
		fuzzMsg{mUpdate, 1, nil},
		fuzzMsg{mBye, 1, nil},
	)
	hostile := encodeFuzz(
		fuzzMsg{mMutate, 0, []byte{0, 1, 1, 0xff, 0xff, 0xff, 0x7f}},
		fuzzMsg{mMutate, 0, mut(mutAdd, 9, 999)},
		fuzzMsg{mMutate, 0, mut(77, 10, 0)},
		fuzzMsg{mWatchArgs, 2, []byte{5, 0xff, 0xff, 0xff}},
		fuzzMsg{mMutateGob, 2, []byte("garbage gob")},
		fuzzMsg{mWatchArgs, 2, gobBody(&MsgWatchArgs{ID: 1 << 40, State: 999})},
		fuzzMsg{mSync, 0, []byte{1}},
		fuzzMsg{mBye, 0, nil},
	)
	return [][]byte{valid, hostile, valid[:len(valid)/2], {}, {byte(mSync), 0, 0}}
}

// fuzzServer is one server shared by the executions of FuzzServerSession.
type fuzzServer struct {
	src *am.Machine
	srv *Server
	hs  []byte // settings and handshake frames
}

func newFuzzServer(f *testing.F) *fuzzServer {
	src := am.New(context.Background(), itStruct(), &am.Opts{ID: "fuzzsrc"})
	if err := src.VerifyStates(itNames); err != nil {
		f.Fatal(err)
	}
	srv, err := NewServer(context.Background(), "127.0.0.1:0", "fuzz", src, func(string) any { return 1 },
		WithSessionTTL(0), WithPushInterval(0), WithServerMaxMessageSize(1<<16))
	if err != nil {
		f.Fatal(err)
	}
	if err := srv.start(); err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() {
		_ = srv.Close()
		src.Dispose()
		<-src.WhenDisposed()
	})
	hs := appendRaw(&msgHandshake{ProtoVersion: protoVersion, ClientID: "fuzz", Names: itNames,
		SchemaHash: SchemaHash(itStruct(), itNames), StateHashes: stateHashes(itStruct(), itNames)})
	b := []byte{3, 6, 0x80, 0x02} // settings: window 256
	b = append(b, frameOf(1, 1, mHandshake, true, hs)...)
	return &fuzzServer{src: src, srv: srv, hs: b}
}

// frameOf encodes an rpc2 request (seq > 0) or notification frame.
func frameOf(kind byte, seq uint64, m rpc2.Method, raw bool, body []byte) []byte {
	p := []byte{kind}
	if raw {
		p[0] |= 0x10
	}
	if seq > 0 {
		p = binary.AppendUvarint(p, seq)
	}
	p = binary.AppendUvarint(p, uint64(m))
	p = append(p, body...)
	return append(binary.AppendUvarint(nil, uint64(len(p))), p...)
}

// run serves one connection: the handshake, then the input's messages.
// Every request must be answered, or the connection closed, within 10 s;
// ServeConn must return once the client side closes; the session must end.
func (fs *fuzzServer) run(t *testing.T, data []byte) {
	a, b := net.Pipe()
	served := make(chan error, 1)
	go func() { served <- fs.srv.ServeConn(context.Background(), b) }()

	var stream []byte
	stream = append(stream, fs.hs...)
	want := map[uint64]bool{1: true}
	for i, m := range decodeFuzz(data) {
		seq := uint64(i + 2)
		kind := byte(1)
		if m.flags&1 != 0 {
			kind, seq = 2, 0
		} else {
			want[seq] = true
		}
		stream = append(stream, frameOf(kind, seq, m.method, m.flags&2 == 0, m.body)...)
	}

	var mu sync.Mutex
	answered := map[uint64]bool{}
	allDone := make(chan struct{})
	readDone := make(chan struct{})
	go func() { // read everything; note the answers
		defer close(readDone)
		fr := rpc2TestReader{r: a}
		for {
			kind, seq, err := fr.next()
			if err != nil {
				return
			}
			if kind == 3 || kind == 4 {
				mu.Lock()
				answered[seq] = true
				if len(answered) >= len(want) {
					select {
					case <-allDone:
					default:
						close(allDone)
					}
				}
				mu.Unlock()
			}
		}
	}()
	_ = a.SetWriteDeadline(time.Now().Add(10 * time.Second))
	_, werr := a.Write(stream)
	select {
	case <-allDone:
	case <-readDone: // the server closed the connection
	case <-time.After(10 * time.Second):
		if werr == nil {
			mu.Lock()
			t.Errorf("requests not answered and the connection still open: want %d answers, got %d", len(want), len(answered))
			mu.Unlock()
		}
	}
	_ = a.Close()
	select {
	case <-served:
	case <-time.After(10 * time.Second):
		t.Fatal("ServeConn did not return after the client closed")
	}
	<-readDone
	// without a session TTL, the session ends before ServeConn returns
	if n := fs.srv.Stats().Sessions; n != 0 {
		t.Fatalf("%d sessions outlived their connection", n)
	}
}

// rpc2TestReader reads frames' kind and seq from a stream.
type rpc2TestReader struct {
	r   io.Reader
	buf []byte
}

func (fr *rpc2TestReader) next() (kind byte, seq uint64, err error) {
	var n uint64
	for i := 0; ; i++ {
		var b [1]byte
		if _, err := io.ReadFull(fr.r, b[:]); err != nil {
			return 0, 0, err
		}
		n |= uint64(b[0]&0x7f) << (7 * i)
		if b[0] < 0x80 {
			break
		}
		if i == 4 {
			return 0, 0, errors.New("long prefix")
		}
	}
	if n == 0 || n > 64<<20 {
		return 0, 0, errors.New("bad length")
	}
	if uint64(cap(fr.buf)) < n {
		fr.buf = make([]byte, n)
	}
	p := fr.buf[:n]
	if _, err := io.ReadFull(fr.r, p); err != nil {
		return 0, 0, err
	}
	kind = p[0] & 0x0f
	if kind == 3 || kind == 4 {
		seq, _ = binary.Uvarint(p[1:])
	}
	return kind, seq, nil
}

// FuzzServerSession: whatever a client sends after a valid handshake, the
// server answers each request or closes the connection, never panics, and
// ends the session with the connection.
func FuzzServerSession(f *testing.F) {
	for _, s := range fuzzSessionSeeds() {
		f.Add(s)
	}
	fs := newFuzzServer(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		fs.run(t, data)
	})
}

// fuzzUpdates encodes server → client messages as a FuzzClientUpdate input:
// per message a kind byte (0 update, 1 mutation result, 2 handshake reply),
// a uvarint length and the body.
func fuzzUpdates(msgs ...[]byte) []byte {
	var b []byte
	for _, m := range msgs {
		b = binary.AppendUvarint(b, uint64(len(m)-1))
		b = append(b, m...)
	}
	return b
}

func fuzzUpdateSeeds() [][]byte {
	up := func(u *msgUpdate) []byte { return append([]byte{0}, appendRaw(u)...) }
	valid := fuzzUpdates(
		up(&msgUpdate{version: 1, full: true, time: am.Time{1, 0, 3, 2, 0}, err: &wireErr{Msg: "e"}}),
		up(&msgUpdate{version: 2, entries: []tickEntry{{idx: 0, delta: 1}, {idx: 2, delta: 2, exited: true}}, matched: []uint64{7}}),
		up(&msgUpdate{version: 3, entries: []tickEntry{{idx: 9, delta: 1}, {idx: 1, delta: 0}}}),
		up(&msgUpdate{version: 7, entries: []tickEntry{{idx: 1, delta: 1}}}),
		up(&msgUpdate{version: 1, full: true, time: am.Time{0, 0, 0, 0, 0}}),
		up(&msgUpdate{version: 2, full: true, time: am.Time{1, 2}}),
		append([]byte{1}, appendRaw(&respResult{result: am.Executed, errMsg: "x", version: 3})...),
		append([]byte{2}, appendRaw(&respHandshake{MachineID: "m", Session: "s", Epoch: 1, Version: 2})...),
	)
	return [][]byte{valid, {0, 0}, {0, 1, 0xff, 0xff, 0xff, 0xff, 0x0f}, {3, 0, 1, 1, 1, 5}}
}

// FuzzClientUpdate: the client's decoders of server messages never panic
// nor allocate beyond the message (they check counts first), and its mirror
// applies only updates that keep its stream intact: an update is the whole
// clock or the next version; ticks never decrease; after a full update each
// state's activity (tick parity) is the source's.
func FuzzClientUpdate(f *testing.F) {
	for _, s := range fuzzUpdateSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := NewClient(context.Background(), "fuzz", "fuzz", itStruct(), itNames)
		if err != nil {
			t.Fatal(err)
		}
		defer c.dispose()
		w := c.Worker
		for len(data) > 0 {
			n, k := binary.Uvarint(data)
			if k <= 0 || n >= uint64(len(data)-k) {
				return
			}
			kind, body := data[k], data[k+1:k+1+int(n)]
			data = data[k+1+int(n):]
			switch kind {
			case 1:
				var r respResult
				_ = r.UnmarshalBinary(body)
				continue
			case 2:
				var r respHandshake
				_ = r.UnmarshalBinary(body)
				continue
			}
			var u msgUpdate
			if u.UnmarshalBinary(body) != nil {
				continue
			}
			if len(u.entries) > len(body) || len(u.time) > len(body) || len(u.matched) > len(body) {
				t.Fatalf("decoded more elements than the body has bytes: %d", len(body))
			}
			before, v := w.Time(nil), w.appliedVersion()
			err := w.applyUpdate(&u)
			after := w.Time(nil)
			if err != nil {
				if !slicesEqual(before, after) || w.appliedVersion() != v {
					t.Fatalf("a refused update changed the mirror: %v → %v", before, after)
				}
				continue
			}
			if !u.full && u.version != v+1 {
				t.Fatalf("applied diff version %d after %d", u.version, v)
			}
			for i := range after {
				if after[i] < before[i] {
					t.Fatalf("tick %d decreased: %v → %v", i, before, after)
				}
				if u.full && after[i]%2 != u.time[i]%2 {
					t.Fatalf("state %d: activity %d, source's %d", i, after[i]%2, u.time[i]%2)
				}
			}
			if w.appliedVersion() != u.version {
				t.Fatalf("version %d after applying %d", w.appliedVersion(), u.version)
			}
		}
	})
}

func slicesEqual(a, b am.Time) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
