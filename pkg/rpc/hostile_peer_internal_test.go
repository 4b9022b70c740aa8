package rpc

// A hand-driven peer for the hostile-input tests: it writes crafted Layer 1
// frames over TCP (or a pipe) and reads what the server sends.

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/gob"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	am "github.com/arpc-go/arpc/pkg/machine"
	"github.com/arpc-go/arpc/pkg/rpc2"
)

// rawFrame is a frame read by a rawPeer.
type rawFrame struct {
	kind byte // 1 request ... 10 pong
	seq  uint64
	code uint64 // error frames
	body []byte
}

type rawPeer struct {
	t   testing.TB
	nc  net.Conn
	seq uint64
	r   rpc2TestReader
}

func newRawPeer(t testing.TB, nc net.Conn) *rawPeer {
	t.Cleanup(func() { _ = nc.Close() })
	return &rawPeer{t: t, nc: nc, r: rpc2TestReader{r: nc}}
}

func dialRawPeer(t testing.TB, addr string) *rawPeer {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, itDeadline)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	return newRawPeer(t, nc)
}

// write writes b; an error means the server closed the connection.
func (p *rawPeer) write(b []byte) error {
	_ = p.nc.SetWriteDeadline(time.Now().Add(itDeadline))
	_, err := p.nc.Write(b)
	return err
}

// settingsFrame opens a stream: window 256.
var settingsFrame = []byte{3, 6, 0x80, 0x02}

// request writes a request and returns its seq.
func (p *rawPeer) request(m rpc2.Method, raw bool, body []byte) (uint64, error) {
	p.seq++
	return p.seq, p.write(frameOf(1, p.seq, m, raw, body))
}

// answer reads frames until the reply or error for seq, or the end of the
// stream (io.EOF).
func (p *rawPeer) answer(seq uint64) (rawFrame, error) {
	_ = p.nc.SetReadDeadline(time.Now().Add(itDeadline))
	for {
		f, err := p.r.frame()
		if err != nil {
			return f, err
		}
		if (f.kind == 3 || f.kind == 4) && f.seq == seq {
			return f, nil
		}
	}
}

// answers reads frames until the replies or errors for every seq have
// arrived, or the end of the stream.
func (p *rawPeer) answers(seqs ...uint64) (map[uint64]rawFrame, error) {
	_ = p.nc.SetReadDeadline(time.Now().Add(itDeadline))
	got := map[uint64]rawFrame{}
	for len(got) < len(seqs) {
		f, err := p.r.frame()
		if err != nil {
			return got, err
		}
		if (f.kind == 3 || f.kind == 4) && slices.Contains(seqs, f.seq) {
			got[f.seq] = f
		}
	}
	return got, nil
}

// call makes a request and returns its answer: the reply body, or the error
// code (0 for a reply).
func (p *rawPeer) call(m rpc2.Method, raw bool, body []byte) (rawFrame, error) {
	seq, err := p.request(m, raw, body)
	if err != nil {
		return rawFrame{}, err
	}
	return p.answer(seq)
}

// handshake opens the stream and hands shakes with token; it returns the
// error code (0: accepted).
func (p *rawPeer) handshake(clientID, token string) (uint64, error) {
	if err := p.write(settingsFrame); err != nil {
		return 0, err
	}
	f, err := p.call(mHandshake, true, handshakeBody(clientID, token, itNames))
	return f.code, err
}

func handshakeBody(clientID, token string, names am.S) []byte {
	return appendRaw(&msgHandshake{ProtoVersion: protoVersion, ClientID: clientID, Names: names,
		SchemaHash: SchemaHash(itStruct(), itNames), StateHashes: stateHashes(itStruct(), itNames),
		Token: []byte(token)})
}

// closedWithin reads (and drops) what the server sends until it closes the
// connection, and reports whether it did within d.
func (p *rawPeer) closedWithin(d time.Duration) bool {
	_ = p.nc.SetReadDeadline(time.Now().Add(d))
	_, err := io.Copy(io.Discard, p.nc)
	var ne net.Error
	return err == nil || !(errors.As(err, &ne) && ne.Timeout())
}

// frame reads one whole frame.
func (fr *rpc2TestReader) frame() (rawFrame, error) {
	var f rawFrame
	var n uint64
	for i := 0; ; i++ {
		var b [1]byte
		if _, err := io.ReadFull(fr.r, b[:]); err != nil {
			return f, err
		}
		n |= uint64(b[0]&0x7f) << (7 * i)
		if b[0] < 0x80 {
			break
		}
		if i == 4 {
			return f, errors.New("long prefix")
		}
	}
	if n == 0 || n > 64<<20 {
		return f, errors.New("bad length")
	}
	p := make([]byte, n)
	if _, err := io.ReadFull(fr.r, p); err != nil {
		return f, err
	}
	f.kind = p[0] & 0x0f
	rest := p[1:]
	if f.kind != 2 && f.kind != 5 {
		v, k := binary.Uvarint(rest)
		f.seq, rest = v, rest[max(k, 0):]
	}
	if f.kind == 4 {
		v, k := binary.Uvarint(rest)
		f.code, rest = v, rest[max(k, 0):]
	}
	f.body = rest
	return f, nil
}

// gobBomb returns the gob encoding of v, whose only map holds the one entry
// {"a": 1}, with that map's count patched to entries: a body of a hundred
// or so bytes that makes plain gob allocate the declared map.
func gobBomb(t testing.TB, v any, entries uint32) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(v); err != nil {
		t.Fatal(err)
	}
	b := buf.Bytes()
	var msgs [][]byte
	for p := b; len(p) > 0; {
		n := int(p[0]) // small messages: one-byte counts
		msgs = append(msgs, p[1:1+n])
		p = p[1+n:]
	}
	last := msgs[len(msgs)-1]
	i := bytes.Index(last, []byte{0x01, 0x01, 'a'}) // count 1, key "a"
	if i < 0 {
		t.Fatal("gobBomb: no map {a: 1}")
	}
	bomb := append(append(append([]byte{}, last[:i]...), 0xfc,
		byte(entries>>24), byte(entries>>16), byte(entries>>8), byte(entries)), last[i+1:]...)
	var out []byte
	for _, m := range msgs[:len(msgs)-1] {
		out = append(append(out, byte(len(m))), m...)
	}
	return append(append(out, byte(len(bomb))), bomb...)
}

// errLog is a slog handler that keeps the "err" attributes it sees, so a
// test can tell why the server ended connections.
type errLog struct {
	mu   sync.Mutex
	errs []error
}

func (l *errLog) Enabled(context.Context, slog.Level) bool { return true }
func (l *errLog) Handle(_ context.Context, r slog.Record) error {
	r.Attrs(func(a slog.Attr) bool {
		if e, ok := a.Value.Any().(error); ok && a.Key == "err" {
			l.mu.Lock()
			l.errs = append(l.errs, e)
			l.mu.Unlock()
		}
		return true
	})
	return nil
}
func (l *errLog) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *errLog) WithGroup(string) slog.Handler      { return l }

// count returns how many logged errors match target.
func (l *errLog) count(target error) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, e := range l.errs {
		if errors.Is(e, target) {
			n++
		}
	}
	return n
}

// openFDs counts the process's open file descriptors (-1 where /proc is
// missing).
func openFDs() int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return -1
	}
	return len(ents)
}
