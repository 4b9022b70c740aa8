package rpc

import (
	"context"
	"encoding/binary"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	am "github.com/arpc-go/arpc/pkg/machine"
)

// rawUpdate reads frames until the next update notification and decodes it.
func (p *rawPeer) rawUpdate(t *testing.T) *msgUpdate {
	t.Helper()
	for {
		f, err := p.r.frame()
		require.NoError(t, err, "reading the next update")
		if f.kind != 2 {
			continue
		}
		m, n := binary.Uvarint(f.body)
		require.Positive(t, n)
		if m != uint64(mUpdate) {
			continue
		}
		u := new(msgUpdate)
		require.NoError(t, u.UnmarshalBinary(f.body[n:]))
		return u
	}
}

// stalledPair serves a source (pushes at once) to a raw client that
// handshakes and then reads nothing, and to a client that reads, and makes
// changes of M, checking that the reading client keeps up with each.
func stalledPair(t *testing.T, changes int, opts ...ServerOption) (*am.Machine, *Server, *rawPeer) {
	t.Helper()
	src := itSource(t, nil)
	srv := itServer(t, src, append([]ServerOption{WithPushInterval(0)}, opts...)...)
	stalled := dialRawPeer(t, srv.Addr)
	code, err := stalled.handshake("stalled", "")
	require.NoError(t, err)
	require.Zero(t, code)
	w := itClient(t, srv, "ok").Worker

	ctx, cancel := context.WithTimeout(context.Background(), itDeadline)
	defer cancel()
	for range changes {
		src.Add1("M", nil)
		select {
		case <-w.WhenTime(am.S{"M"}, am.Time{src.Tick("M")}, ctx):
		case <-ctx.Done():
			t.Fatalf("the reading client fell behind: M at %d, source at %d", w.Tick("M"), src.Tick("M"))
		}
	}
	return src, srv, stalled
}

// TestFanoutStalledClient: a client that stops reading is sent no more
// updates than its flow-control window holds, however often the source
// changes, while another client keeps up with every change; when the stalled
// client reads again, one more update brings it to the source's clock.
func TestFanoutStalledClient(t *testing.T) {
	const changes = 400
	src, srv, stalled := stalledPair(t, changes)
	iM := srv.stateIndex("M")

	// the stalled client reads now: first what the window let through,
	// then, once it returns the credit, one merged update
	_ = stalled.nc.SetReadDeadline(time.Now().Add(itDeadline))
	var tick uint64
	apply := func(u *msgUpdate) {
		if u.full {
			tick = u.time[iM]
			return
		}
		for _, e := range u.entries {
			if e.idx == iM {
				tick += e.delta
			}
		}
	}
	var sent uint64
	for _, se := range srv.sessionList() {
		if se.clientID == "stalled" {
			se.mu.Lock()
			sent = se.version
			se.mu.Unlock()
		}
	}
	assert.LessOrEqual(t, sent, uint64(256), "%d changes, %d updates sent to the stalled client", changes, sent)
	t.Logf("%d changes, %d updates sent to the stalled client before it read", changes, sent)
	assert.Positive(t, srv.Stats().PushesDeferred, "the stalled client's pushes were put off")
	updates := 0
	for v := uint64(0); v < sent; updates++ {
		u := stalled.rawUpdate(t)
		apply(u)
		v = u.version
	}
	require.Less(t, tick, src.Tick("M"), "the window should have held back the last changes")
	require.NoError(t, stalled.write([]byte{3, 7, 0x80, 0x02})) // 256 credits back
	for tick < src.Tick("M") {
		apply(stalled.rawUpdate(t))
		updates++
	}
	assert.Equal(t, src.Tick("M"), tick)
	assert.LessOrEqual(t, updates, int(sent)+2, "once it read again, the changes held back came merged")
}

// TestFanoutSelectiveSync: a mirror that follows some states gets only
// their changes, and a change of states it does not follow costs its
// session no update.
func TestFanoutSelectiveSync(t *testing.T) {
	src := itSource(t, nil)
	srv := itServer(t, src, WithPushInterval(0))
	all := itClient(t, srv, "all").Worker
	onlyA := itClient(t, srv, "only-a", WithSyncStates("A")).Worker
	notA := itClient(t, srv, "not-a", WithSkipStates("A")).Worker

	updates := srv.Stats().Pushes
	src.Add1("B", nil)
	itSynced(t, all, src)
	itSynced(t, notA, src)
	assert.False(t, onlyA.Is1("B"), "B is not followed")
	assert.Equal(t, updates+2, srv.Stats().Pushes, "only the two sessions that follow B were sent an update")

	src.Add1("A", nil)
	itSynced(t, all, src)
	ctx, cancel := context.WithTimeout(context.Background(), itDeadline)
	defer cancel()
	itWait(t, onlyA.When1("A", ctx), "A on the mirror that follows it")
	assert.False(t, notA.Is1("A"), "A is skipped")
	assert.Equal(t, updates+4, srv.Stats().Pushes)
	assert.Zero(t, onlyA.Tick("B"))
}

// TestSyncStatesUnknown: naming a state the schema lacks fails at once.
func TestSyncStatesUnknown(t *testing.T) {
	for _, opt := range []ClientOption{WithSyncStates("A", "Nope"), WithSkipStates("Nope")} {
		_, err := NewClient(context.Background(), "127.0.0.1:1", "c", itStruct(), itNames, opt)
		require.ErrorIs(t, err, ErrInvalidParams)
		assert.Contains(t, err.Error(), `"Nope"`)
	}
}

// TestFanoutStalledClientDropped: a client whose window of updates stays
// full is a slow peer (WithWriteTimeout): the server drops its connection,
// though the fan-out never waited for it.
func TestFanoutStalledClientDropped(t *testing.T) {
	_, srv, stalled := stalledPair(t, 300, WithWriteTimeout(300*time.Millisecond))
	require.Positive(t, srv.Stats().PushesDeferred)
	// reads (and drops) what the server sent, then sees the close
	require.True(t, stalled.closedWithin(itDeadline), "the stalled client was not dropped")
	// counted when the server's end of the connection is done, which may
	// come after the peer saw it closed
	deadline := time.Now().Add(itDeadline)
	for srv.Stats().SlowPeers == 0 {
		require.True(t, time.Now().Before(deadline), "the drop was not counted as a slow peer")
		runtime.Gosched()
	}
}
