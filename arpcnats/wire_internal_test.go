package arpcnats

import (
	"bytes"
	"testing"
)

// FuzzDecodeUpdate: no input panics or allocates past its length, and what
// decodes encodes back to the same bytes.
func FuzzDecodeUpdate(f *testing.F) {
	f.Add(appendUpdate(nil, &update{Epoch: 1, Version: 2, Time: []uint64{1, 0, 3, 0}, Exits: []uint64{0, 0, 1, 0}, Err: "x"}), 4)
	f.Add([]byte{updateMagic, 1, 1, 0xff, 0xff, 0xff, 0xff, 0x0f}, 4)
	f.Add([]byte{}, 0)
	f.Fuzz(func(t *testing.T, b []byte, n int) {
		if n < 0 || n > 64 {
			return
		}
		u, err := decodeUpdate(b, n)
		if err != nil {
			return
		}
		if len(u.Time) != n || len(u.Exits) != n {
			t.Fatalf("decoded %d/%d states, want %d", len(u.Time), len(u.Exits), n)
		}
		if again := appendUpdate(nil, u); !bytes.Equal(again, b) && len(again) > len(b) {
			t.Fatalf("re-encoded %d bytes from %d", len(again), len(b))
		}
	})
}

// FuzzDecodeReply: no input panics; what decodes encodes back.
func FuzzDecodeReply(f *testing.F) {
	f.Add(encodeReply(&mutResp{Result: 1, Code: codeCanceled, Msg: "veto", Update: []byte{updateMagic, 1}}))
	f.Add([]byte{replyMagic, 1, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := decodeReply(b)
		if err != nil {
			return
		}
		if len(r.Code)+len(r.Msg)+len(r.Update) > len(b) {
			t.Fatalf("decoded more than the input")
		}
	})
}

// The dedup table forgets what its client won't retry and what is past
// its size, oldest first.
func TestDedupTable(t *testing.T) {
	d := newDedup(3)
	for _, id := range []string{"a.1", "a.2", "b.1", "a.3"} {
		d.put(dedupEntry{ID: id})
	}
	if _, ok := d.get("a.1"); ok {
		t.Fatal("a.1 kept past the size")
	}
	d.prune("a.9", 3)
	if _, ok := d.get("a.2"); ok {
		t.Fatal("a.2 kept below its client's lowest in flight")
	}
	if _, ok := d.get("a.3"); !ok {
		t.Fatal("a.3 dropped")
	}
	if l := d.list(); len(l) != 2 || l[0].ID != "b.1" || l[1].ID != "a.3" {
		t.Fatalf("list %v", l)
	}
	d.load(d.list())
	if _, ok := d.get("b.1"); !ok || d.n != 2 {
		t.Fatal("load lost entries")
	}

	// an id without a seq is not pruned by the lo its own retry carries
	d.put(dedupEntry{ID: "plain"})
	d.prune("plain", 7)
	if _, ok := d.get("plain"); !ok {
		t.Fatal("an id without a seq was pruned by its own retry")
	}
}
