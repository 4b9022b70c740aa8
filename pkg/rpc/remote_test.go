package rpc_test

import (
	"context"
	"encoding/gob"
	"errors"
	"fmt"
	"maps"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	am "github.com/arpc-go/arpc/pkg/machine"
	"github.com/arpc-go/arpc/pkg/rpc"
	"github.com/arpc-go/arpc/pkg/rpc/rpctest"
	ssS "github.com/arpc-go/arpc/states/server"
)

// point is an argument and getter value that only gob can carry.
type point struct{ X, Y int }

func init() {
	gob.RegisterName("rpc_test.point", point{})
}

// startServer starts srv, waits for RpcReady, and stops it at cleanup.
func startServer(t *testing.T, srv *rpc.Server) {
	t.Helper()
	srv.Start()
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	select {
	case <-srv.Mach.When1(ssS.RpcReady, ctx):
	case <-srv.Mach.WhenErr(ctx):
	}
	require.True(t, srv.Mach.Is1(ssS.RpcReady), "server: %s, err: %v", srv.Mach.String(), srv.Mach.Err())
	t.Cleanup(func() { srv.Stop(true) })
}

// TestGet: Client.Get returns what the server's getter returns, of any type
// registered with gob; a server without a getter answers ErrNoGetter.
func TestGet(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()

	t.Run("getter", func(t *testing.T) {
		src := newTestSource(t, nil)
		var (
			mu    sync.Mutex
			asked []string
		)
		getter := func(name string) any {
			mu.Lock()
			defer mu.Unlock()
			asked = append(asked, name)
			if name == "point" {
				return point{X: 1, Y: 2}
			}
			return "value of " + name
		}
		srv, err := rpc.NewServer(ctx, "127.0.0.1:0", "getter", src, getter)
		require.NoError(t, err)
		startServer(t, srv)
		c := newTestClient(t, srv, "c")

		resp, err := c.Get(ctx, "foo")
		require.NoError(t, err)
		assert.Equal(t, "value of foo", resp.Value)
		resp, err = c.Get(ctx, "point")
		require.NoError(t, err)
		assert.Equal(t, point{X: 1, Y: 2}, resp.Value)
		mu.Lock()
		defer mu.Unlock()
		assert.Equal(t, []string{"foo", "point"}, asked)
	})

	t.Run("no-getter", func(t *testing.T) {
		src := newTestSource(t, nil)
		_, c := rpctest.NewPair(t, src, nil, nil)
		resp, err := c.Get(ctx, "foo")
		assert.ErrorIs(t, err, rpc.ErrNoGetter)
		assert.Nil(t, resp)
		// the connection survives the error
		assert.Equal(t, am.Executed, c.Worker.Add1(sA, nil))
	})

	t.Run("not-ready", func(t *testing.T) {
		c, err := rpc.NewClient(ctx, "127.0.0.1:1", "idle", testStruct(), testNames)
		require.NoError(t, err)
		defer c.Stop(ctx, true)
		_, err = c.Get(ctx, "foo")
		assert.ErrorIs(t, err, rpc.ErrNotReady)
	})
}

// TestWhenArgs: a remote WhenArgs closes only once the state is activated
// with matching args (by this client, or on the source), and when its ctx
// ends.
func TestWhenArgs(t *testing.T) {
	src := newTestSource(t, nil)
	_, c := rpctest.NewPair(t, src, nil, nil)
	w := c.Worker
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()

	want := w.WhenArgs(sM, am.A{"k": "v"}, ctx)
	other := w.WhenArgs(sM, am.A{"k": "x"}, ctx)
	onA := w.WhenArgs(sA, am.A{"n": 2}, ctx)
	require.NoError(t, w.Err())

	// wrong args resolve only the watch they match
	require.Equal(t, am.Executed, w.Add1(sM, am.A{"k": "x"}))
	waitCh(t, other, "WhenArgs(M, k=x)")
	require.Equal(t, am.Executed, w.Add1(sA, am.A{"n": 1}))
	// a later push: a wrong match would have been reported by now
	src.Add1(sB, nil)
	waitSynced(t, w, src)
	assert.False(t, isClosed(want), "WhenArgs(M, k=v) closed for k=x")
	assert.False(t, isClosed(onA), "WhenArgs(A, n=2) closed for n=1")

	// a matching activation on the source itself, with more args
	src.Add1(sM, am.A{"k": "v", "extra": true})
	waitCh(t, want, "WhenArgs(M, k=v)")
	// the mirror reflects the transition once the watch resolves
	assert.Equal(t, src.Tick(sM), w.Tick(sM))

	// a non-Multi state matches when it activates again
	require.Equal(t, am.Executed, w.Remove1(sA, nil))
	require.Equal(t, am.Executed, w.Add1(sA, am.A{"n": 2}))
	waitCh(t, onA, "WhenArgs(A, n=2)")

	// ctx ends: the channel closes without a match
	wctx, wcancel := context.WithCancel(ctx)
	never := w.WhenArgs(sM, am.A{"k": "never"}, wctx)
	wcancel()
	waitCh(t, never, "WhenArgs with a canceled ctx")

	// an unknown state: Err tells, ctx still ends it
	uctx, ucancel := context.WithCancel(ctx)
	unknown := w.WhenArgs("Nope", nil, uctx)
	assert.ErrorIs(t, w.Err(), am.ErrStateUnknown)
	ucancel()
	waitCh(t, unknown, "WhenArgs of an unknown state with a canceled ctx")
}

// TestErr: the source's last error reaches Worker.Err, and Worker.AddErr and
// AddErrState set the source's error, each side seeing Exception.
func TestErr(t *testing.T) {
	src := newTestSource(t, nil)
	srv, c := rpctest.NewPair(t, src, nil, nil)
	w := c.Worker
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	require.NoError(t, w.Err())
	require.False(t, w.IsErr())

	// source → mirror
	src.AddErr(errors.New("boom"), nil)
	waitCh(t, w.WhenErr(ctx), "Exception on the mirror")
	require.Error(t, w.Err())
	assert.Equal(t, "boom", w.Err().Error())
	var re *rpc.RemoteError
	assert.ErrorAs(t, w.Err(), &re)
	assert.True(t, w.IsErr())

	// mirror → source
	require.Equal(t, am.Executed, w.Remove1(am.Exception, nil))
	require.False(t, src.IsErr())
	require.False(t, w.IsErr())
	assert.Equal(t, am.Executed, w.AddErr(errors.New("x"), nil))
	require.Error(t, src.Err())
	assert.Equal(t, "x", src.Err().Error())
	assert.ErrorAs(t, src.Err(), &re)
	assert.True(t, src.IsErr())
	assert.True(t, w.IsErr(), "the reply carries Exception")
	assert.Equal(t, "x", w.Err().Error())

	// with an error state
	assert.Equal(t, am.Executed, w.AddErrState(sA, errors.New("y"), nil))
	assert.Equal(t, "y", src.Err().Error())
	assert.True(t, src.Is(am.S{sA, am.Exception}))
	assert.True(t, w.Is(am.S{sA, am.Exception}))
	assert.Equal(t, src.Time(nil), w.Time(nil))

	// a client that connects later gets the error with the handshake
	late := newTestClient(t, srv, "late")
	require.Error(t, late.Worker.Err())
	assert.Equal(t, "y", late.Worker.Err().Error())
	assert.True(t, late.Worker.IsErr())
}

// TestLog: Worker.Log reaches the source's logger, with the client's ID and
// without newlines.
func TestLog(t *testing.T) {
	src := newTestSource(t, nil)
	lines := make(chan string, 64)
	src.SetLoggerSimple(func(format string, args ...any) {
		select {
		case lines <- fmt.Sprintf(format, args...):
		default:
		}
	}, am.LogChanges)
	_, c := rpctest.NewPair(t, src, nil, nil)

	c.Worker.Log("hello %s\nthere", "world")
	timeout := time.After(deadline)
	for {
		select {
		case l := <-lines:
			if !strings.Contains(l, "hello world") {
				continue
			}
			assert.Contains(t, l, "hello world there")
			assert.Contains(t, l, "client", "the client's ID")
			assert.NoError(t, c.Worker.Err())
			return
		case <-timeout:
			t.Fatal("the log line didn't reach the source's logger")
		}
	}
}

// argsRecorder sends the args of every M activation on got.
type argsRecorder struct{ got chan am.A }

func (r *argsRecorder) MState(e *am.Event) { r.got <- maps.Clone(e.Args) }

// TestArgsCrossTheWire: mutation args of every binary-codec type arrive with
// their types, errors as *RemoteError, and other gob-registered types too.
func TestArgsCrossTheWire(t *testing.T) {
	rec := &argsRecorder{got: make(chan am.A, 4)}
	src := newTestSource(t, rec)
	_, c := rpctest.NewPair(t, src, nil, nil)
	w := c.Worker
	now := time.Now()

	binary := am.A{
		"nil": nil, "t": true, "f": false, "int": -7, "int64": int64(-1 << 40),
		"int32": int32(-5), "uint64": uint64(1 << 63), "uint32": uint32(9), "uint8": uint8(200),
		"float": 3.5, "string": "ünï", "bytes": []byte{0, 1, 2}, "dur": 3 * time.Second,
		"time": now, "err": errors.New("bad"),
	}
	require.Equal(t, am.Executed, w.Add1(sM, binary))
	got := <-rec.got
	require.Len(t, got, len(binary))
	for k, v := range binary {
		switch v := v.(type) {
		case time.Time:
			gt, ok := got[k].(time.Time)
			require.True(t, ok, "%s: %T", k, got[k])
			assert.True(t, v.Equal(gt), "%s: %v != %v", k, v, gt)
		case error:
			var re *rpc.RemoteError
			require.ErrorAs(t, got[k].(error), &re, k)
			assert.Equal(t, "bad", re.Msg)
		default:
			assert.Equal(t, v, got[k], k)
		}
	}

	gobArgs := am.A{"p": point{X: 3, Y: 4}, "s": "x", "n": 1}
	require.Equal(t, am.Executed, w.Add1(sM, gobArgs))
	assert.Equal(t, gobArgs, <-rec.got)

	require.Equal(t, am.Executed, w.Add1(sM, nil))
	assert.Empty(t, <-rec.got)
}
