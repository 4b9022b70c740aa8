package arpcnats_test

import (
	"testing"
	"time"

	am "github.com/arpc-go/arpc/pkg/machine"
)

// encodeUpdate builds an update as a leader publishes it: magic, epoch,
// version, n, ticks, exits, error text (all uvarints < 128 here).
func encodeUpdate(epoch, version byte, ticks, exits []byte) []byte {
	b := []byte{0xA1, epoch, version, byte(len(ticks))}
	b = append(b, ticks...)
	b = append(b, exits...)
	return append(b, 0)
}

// Updates carry whole vectors, so a mirror that missed some loses nothing:
// the passages in between still release When and WhenNot; an older update
// is ignored; a new epoch is taken as it is, even where ticks went back.
func TestMissedUpdates(t *testing.T) {
	e := startNATS(t)
	nc := connect(t, e.ClientURL())
	m := mirror(t, nc, "gaps", schema, names) // no server: updates published by hand
	ctx := ctxT(t, 10*time.Second)
	pub := func(b []byte) {
		t.Helper()
		if err := nc.Publish("arpc.gaps.upd", b); err != nil {
			t.Fatal(err)
		}
		if err := nc.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	pub(encodeUpdate(1, 1, []byte{1, 0, 1, 0}, []byte{0, 0, 0, 0}))
	waitFor(t, m.When1("A", ctx), "A")
	notA, b, countExit := m.WhenNot1("A", ctx), m.When1("B", ctx), m.WhenNot1("Count", ctx)
	// versions 2..4 are never seen: A left and came back, B came and left,
	// the Multi state Count left once and was re-entered
	pub(encodeUpdate(1, 5, []byte{3, 2, 3, 0}, []byte{0, 0, 1, 0}))
	waitFor(t, notA, "WhenNot(A) across a missed deactivation")
	waitFor(t, b, "When(B) across a missed activation")
	waitFor(t, countExit, "WhenNot(Count) across a missed exit of a Multi state")
	if !m.IsTime(am.Time{3, 2, 3, 0}, nil) {
		t.Fatalf("time %v", m.Time(nil))
	}
	// an older version changes nothing (B would become active)
	b, notA = m.When1("B", ctx), m.WhenNot1("A", ctx)
	pub(encodeUpdate(1, 4, []byte{9, 9, 9, 0}, []byte{0, 0, 0, 0}))
	pub(encodeUpdate(1, 6, []byte{5, 2, 3, 0}, []byte{0, 0, 1, 0}))
	waitFor(t, notA, "the update after the old one")
	select {
	case <-b:
		t.Fatal("an older version was applied")
	default:
	}
	// a new epoch whose ticks went back (a leader died before persisting)
	pub(encodeUpdate(2, 1, []byte{2, 0, 1, 0}, []byte{0, 0, 0, 0}))
	waitFor(t, m.WhenNot1("A", ctx), "the new epoch's vector")
	if !m.IsTime(am.Time{2, 0, 1, 0}, nil) {
		t.Fatalf("time %v after a new epoch", m.Time(nil))
	}
	if ep, v := m.Version(); ep != 2 || v != 1 {
		t.Fatalf("version %d/%d", ep, v)
	}
}
