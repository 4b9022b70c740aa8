package rpc

import (
	"context"
	"io"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	am "github.com/arpc-go/arpc/pkg/machine"
	"github.com/arpc-go/arpc/pkg/rpc2"
	ssS "github.com/arpc-go/arpc/states/server"
)

// rawMsg is a message of arbitrary bytes: what no client would send.
type rawMsg []byte

// AppendBinary implements encoding.BinaryAppender.
func (m rawMsg) AppendBinary(b []byte) ([]byte, error) { return append(b, m...), nil }

// TestBadInput (W4): requests no client would send, sent raw over a real
// client's connection, each get an error for that call only; the server
// keeps running and the same client keeps working.
func TestBadInput(t *testing.T) {
	src := itSource(t, nil)
	srv := itServer(t, src)
	c := itClient(t, srv, "bad")
	w := c.Worker
	conn := c.testConn()
	require.NotNil(t, conn)
	ctx, cancel := context.WithTimeout(context.Background(), itDeadline)
	defer cancel()

	stillWorks := func(t *testing.T) {
		t.Helper()
		require.Equal(t, am.Executed, w.Add1("M", nil), "the client stopped working: %v", w.Err())
		assert.Equal(t, src.Time(nil), w.Time(nil))
		assert.Same(t, conn, c.testConn(), "the connection was replaced")
		assert.True(t, srv.Mach.Is1(ssS.RpcReady))
		assert.False(t, srv.Mach.IsErr(), "server: %v", srv.Mach.Err())
		assert.Equal(t, 1, srv.ClientCount())
	}
	codeOf := func(t *testing.T, err error) rpc2.Code {
		t.Helper()
		var re *rpc2.Error
		require.ErrorAs(t, err, &re)
		return re.Code
	}

	t.Run("unknown-state-name", func(t *testing.T) {
		// a client's bad input fails that client's call: nothing is sent
		// and the source (shared by every client) gets no Exception
		muts := map[string]func() am.Result{
			"Add1":        func() am.Result { return w.Add1("Nope", nil) },
			"Add":         func() am.Result { return w.Add(am.S{"A", "Nope"}, nil) },
			"Remove1":     func() am.Result { return w.Remove1("Nope", nil) },
			"Set":         func() am.Result { return w.Set(am.S{"Nope"}, nil) },
			"AddErrState": func() am.Result { return w.AddErrState("Nope", assert.AnError, nil) },
			"Add1NS":      func() am.Result { return w.Add1NS("Nope", nil) },
		}
		for name, mut := range muts {
			calls := c.CallCount()
			assert.Equal(t, am.Canceled, mut(), name)
			assert.ErrorIs(t, w.Err(), am.ErrStateUnknown, name)
			assert.Equal(t, calls, c.CallCount(), "%s: nothing is sent", name)
			assert.NoError(t, src.Err(), name)
			assert.False(t, src.IsErr(), name)
		}
		res, err := w.Mutate(ctx, am.MutationAdd, am.S{"Nope"}, nil)
		assert.Equal(t, am.Canceled, res)
		assert.ErrorIs(t, err, am.ErrStateUnknown)
		assert.True(t, src.Not1("A"), "a mutation naming an unknown state ran")
		stillWorks(t)
	})

	t.Run("unknown-state-index", func(t *testing.T) {
		for _, states := range [][]int{{999}, {-1}, {0, len(itNames)}} {
			var resp respResult
			err := conn.Call(ctx, mMutate, &msgMutate{Type: mutAdd, States: states}, &resp)
			require.NoError(t, err, "%v", states)
			assert.Equal(t, am.Canceled, resp.result, "%v", states)
			assert.Contains(t, resp.errMsg, "out of range", "%v", states)

			resp = respResult{}
			err = conn.Call(ctx, mMutateGob, &MsgMutateGob{Type: mutAdd, States: states}, &resp)
			require.NoError(t, err, "gob %v", states)
			assert.Equal(t, am.Canceled, resp.result, "gob %v", states)

			require.NoError(t, conn.Notify(ctx, mMutateNS, &msgMutate{Type: mutAdd, States: states}))
		}
		var resp respResult
		require.NoError(t, conn.Call(ctx, mMutate, &msgMutate{Type: 77, States: []int{0}}, &resp))
		assert.Equal(t, am.Canceled, resp.result)
		assert.Contains(t, resp.errMsg, "unknown mutation type")

		err := conn.Call(ctx, mWatchArgs, &MsgWatchArgs{ID: 1 << 40, State: 999}, &Empty{})
		assert.Equal(t, CodeInvalidParams, codeOf(t, err))
		assert.True(t, src.Not1("A"), "a bad index reached the source")
		stillWorks(t)
	})

	t.Run("malformed-binary", func(t *testing.T) {
		for name, body := range map[string][]byte{
			"empty":     {},
			"garbage":   {0xde, 0xad, 0xbe, 0xef, 0xff, 0xff, 0xff},
			"truncated": {byte(mutAdd), 0, 5},
			"overflow":  {byte(mutAdd), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
			"bad-tag":   {byte(mutAdd), 0, 1, 0, 1, 1, 'k', 0x7f},
			"trailing":  {byte(mutAdd), 0, 1, 0, 0, 0xaa},
			"huge-args": {byte(mutAdd), 0, 1, 0, 0xff, 0xff, 0xff, 0x7f},
		} {
			var resp respResult
			err := conn.Call(ctx, mMutate, rawMsg(body), &resp)
			assert.Equal(t, rpc2.CodeBadRequest, codeOf(t, err), name)
			require.NoError(t, conn.Notify(ctx, mMutateNS, rawMsg(body)), name)
		}
		// raw bytes where gob is expected, garbage where nothing is
		var resp respResult
		err := conn.Call(ctx, mMutateGob, rawMsg{1, 2, 3}, &resp)
		assert.Equal(t, rpc2.CodeBadRequest, codeOf(t, err))
		err = conn.Call(ctx, mSync, rawMsg{1, 2, 3}, &wireUint{})
		assert.Equal(t, rpc2.CodeBadRequest, codeOf(t, err))
		err = conn.Call(ctx, mHandshake, rawMsg{0xff}, &respHandshake{})
		assert.Equal(t, rpc2.CodeBadRequest, codeOf(t, err))
		assert.True(t, src.Not1("A"))
		stillWorks(t)
	})

	t.Run("unknown-method", func(t *testing.T) {
		err := conn.Call(ctx, rpc2.Method(99), &Empty{}, nil)
		assert.Equal(t, rpc2.CodeUnknownMethod, codeOf(t, err))
		err = conn.Call(ctx, mUpdate, &msgUpdate{}, nil)
		assert.Equal(t, rpc2.CodeUnknownMethod, codeOf(t, err), "a server→client method")
		require.NoError(t, conn.Notify(ctx, rpc2.Method(1000), rawMsg{1, 2, 3}))
		stillWorks(t)
	})

	t.Run("second-handshake", func(t *testing.T) {
		var resp respHandshake
		err := conn.Call(ctx, mHandshake, &msgHandshake{
			ProtoVersion: protoVersion, ClientID: "again", SchemaHash: c.hash, Names: c.names,
		}, &resp)
		assert.Equal(t, CodeInvalidParams, codeOf(t, err))
		stillWorks(t)
	})
}

// TestBadHandshake: a raw connection is refused before its handshake, and
// for an unsupported protocol version; the server keeps serving.
func TestBadHandshake(t *testing.T) {
	src := itSource(t, nil)
	srv := itServer(t, src)
	ctx, cancel := context.WithTimeout(context.Background(), itDeadline)
	defer cancel()
	nc, err := (&net.Dialer{}).DialContext(ctx, "tcp", srv.Addr)
	require.NoError(t, err)
	conn := rpc2.NewConn(nc, nil)
	defer conn.Close()

	codeOf := func(err error) rpc2.Code {
		var re *rpc2.Error
		require.ErrorAs(t, err, &re)
		return re.Code
	}
	var resp respResult
	err = conn.Call(ctx, mMutate, &msgMutate{Type: mutAdd, States: []int{0}}, &resp)
	assert.Equal(t, CodeNoSession, codeOf(err), "a mutation before the handshake")
	err = conn.Call(ctx, mSync, &Empty{}, &wireUint{})
	assert.Equal(t, CodeNoSession, codeOf(err))
	err = conn.Call(ctx, mGet, &wireString{s: "x"}, &RespGet{})
	assert.Equal(t, CodeNoSession, codeOf(err))

	hs := &msgHandshake{
		ProtoVersion: protoVersion + 1, ClientID: "raw", Names: itNames,
		SchemaHash: SchemaHash(itStruct(), itNames),
	}
	err = conn.Call(ctx, mHandshake, hs, &respHandshake{})
	assert.Equal(t, CodeProtoVersion, codeOf(err))
	assert.True(t, src.Not1("A"))
	assert.Zero(t, srv.ClientCount())

	// the same connection can still handshake properly
	hs.ProtoVersion = protoVersion
	var ok respHandshake
	require.NoError(t, conn.Call(ctx, mHandshake, hs, &ok))
	assert.Equal(t, src.ID, ok.MachineID)
	assert.Equal(t, 1, srv.ClientCount())

	c := itClient(t, srv, "good")
	assert.Equal(t, am.Executed, c.Worker.Add1("A", nil))
}

// TestClientGoneMidMutation: a client whose connection closes while the
// source still runs its mutation gets an ErrNetwork error (outcome unknown);
// the server finishes the mutation and keeps the session, and the client
// reconnects by itself, resumes it and sees the mutation's effect.
func TestClientGoneMidMutation(t *testing.T) {
	blk := NewTestBlocker()
	src := itSource(t, blk)
	srv := itServer(t, src)
	c := itClient(t, srv, "gone")
	defer blk.Release()
	ctx, cancel := context.WithTimeout(context.Background(), itDeadline)
	defer cancel()
	se := itSession(t, srv)

	type out struct {
		res am.Result
		err error
	}
	res := make(chan out, 1)
	go func() {
		r, err := c.Worker.Mutate(ctx, am.MutationAdd, am.S{"Block"}, nil)
		res <- out{r, err}
	}()
	itWait(t, blk.Entered, "the mutation to reach the source")
	old := c.testConn()
	require.NoError(t, old.Close())
	select {
	case r := <-res:
		assert.Equal(t, am.Canceled, r.res)
		assert.ErrorIs(t, r.err, ErrNetwork)
	case <-time.After(itDeadline):
		t.Fatal("Mutate didn't return after its connection closed")
	}

	blk.Release()
	itRelinked(t, c, old)
	itSynced(t, c.Worker, src)
	assert.Equal(t, uint64(1), src.Tick("Block"))
	assert.Equal(t, uint64(1), c.Worker.Tick("Block"))
	assert.Same(t, se, itSession(t, srv), "the session was not resumed")
	assert.True(t, srv.Mach.Is1(ssS.RpcReady))
	r, err := c.Worker.Mutate(ctx, am.MutationAdd, am.S{"A"}, nil)
	assert.NoError(t, err)
	assert.Equal(t, am.Executed, r)
}

// TestHandshakeConnDiesMidway: a connection that ends during its handshake
// (here: the authenticator takes until the connection has ended, so the new
// session can't be sent its updates) leaves no session behind, attached to
// the dead connection or waiting for a client that never learnt its ID.
func TestHandshakeConnDiesMidway(t *testing.T) {
	src := itSource(t, nil)
	entered := make(chan struct{}, 1)
	slow := func(ctx context.Context, _ *Peer) (string, error) {
		entered <- struct{}{}
		<-ctx.Done() // the connection ended
		return "late", nil
	}
	srv := itServer(t, src, WithAuthenticator(slow))
	ctx, cancel := context.WithTimeout(context.Background(), itDeadline)
	defer cancel()
	for range 20 {
		nc, err := (&net.Dialer{}).DialContext(ctx, "tcp", srv.Addr)
		require.NoError(t, err)
		hs, _ := (&msgHandshake{ProtoVersion: protoVersion, ClientID: "x", Names: itNames,
			SchemaHash: SchemaHash(itStruct(), itNames)}).AppendBinary(nil)
		stream := []byte{3, 6, 0x80, 0x02}
		p := append([]byte{0x11, 1, byte(mHandshake)}, hs...)
		stream = append(append(stream, byte(len(p))), p...)
		_, err = nc.Write(stream)
		require.NoError(t, err)
		itWait(t, entered, "the handshake to reach the authenticator")
		_, err = nc.Write([]byte{1, 0x0b}) // a frame of an unknown kind
		require.NoError(t, err)
		_, _ = io.Copy(io.Discard, nc) // until the server closes
		_ = nc.Close()
	}
	// the handshakes finish after their connections closed: wait for them
	require.Eventually(t, func() bool {
		st := srv.Stats()
		return st.Conns == 0 && st.Sessions == 0 && srv.ClientCount() == 0
	}, itDeadline, itPoll, "sessions of dead handshakes: %+v", srv.Stats())
}

// TestResumeRacesExpiry: a client that resumes a session which ends between
// the server's lookup and its attach (here: closed, still listed) gets a new
// session instead of a failed handshake.
func TestResumeRacesExpiry(t *testing.T) {
	src := itSource(t, nil)
	srv := itServer(t, src)
	_ = itClient(t, srv, "racer", WithReconnect(false, 0, 0))
	se := itSession(t, srv)
	session, epoch := se.id, srv.epoch
	se.close() // ended, still listed: the race's window

	ctx, cancel := context.WithTimeout(context.Background(), itDeadline)
	defer cancel()
	nc, err := (&net.Dialer{}).DialContext(ctx, "tcp", srv.Addr)
	require.NoError(t, err)
	conn := rpc2.NewConn(nc, nil)
	defer conn.Close()
	var resp respHandshake
	require.NoError(t, conn.Call(ctx, mHandshake, &msgHandshake{
		ProtoVersion: protoVersion, ClientID: "racer", Names: itNames,
		SchemaHash: SchemaHash(itStruct(), itNames), Session: session, Epoch: epoch, Version: 3,
	}, &resp))
	assert.NotEqual(t, session, resp.Session)
	assert.False(t, resp.Resumed)
	srv.mu.Lock()
	delete(srv.sessions, se.id)
	srv.mu.Unlock()
}
