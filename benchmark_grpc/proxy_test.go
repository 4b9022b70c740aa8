package benchgrpc

import (
	"bytes"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// echoServer accepts connections on loopback and echoes them until closed.
func echoServer(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				_, _ = io.Copy(c, c)
			})
		}
	})
	t.Cleanup(func() {
		_ = ln.Close()
		wg.Wait()
	})
	return ln
}

func TestProxyCountsBothWays(t *testing.T) {
	ln := echoServer(t)
	p, err := NewProxy(ln.Addr().String())
	require.NoError(t, err)
	defer p.Close()

	c, err := net.Dial("tcp", p.Addr())
	require.NoError(t, err)
	require.NoError(t, c.SetDeadline(time.Now().Add(10*time.Second)))

	msg := bytes.Repeat([]byte("0123456789"), 10_000) // 100 kB: several reads per direction
	go func() { _, _ = c.Write(msg) }()
	got := make([]byte, len(msg))
	_, err = io.ReadFull(c, got)
	require.NoError(t, err)
	assert.Equal(t, msg, got)

	assert.Equal(t, uint64(len(msg)), p.BytesUp())
	assert.Equal(t, uint64(len(msg)), p.BytesDown())
	assert.Equal(t, uint64(2*len(msg)), p.Bytes())

	// Closing the client ends the relay; the server's echo goroutine sees EOF through the half-close.
	require.NoError(t, c.Close())
}

func TestProxyCloseEndsOpenRelays(t *testing.T) {
	ln := echoServer(t)
	p, err := NewProxy(ln.Addr().String())
	require.NoError(t, err)

	c, err := net.Dial("tcp", p.Addr())
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.SetDeadline(time.Now().Add(10*time.Second)))
	_, err = c.Write([]byte("ping"))
	require.NoError(t, err)
	buf := make([]byte, 4)
	_, err = io.ReadFull(c, buf)
	require.NoError(t, err)

	done := make(chan struct{})
	go func() {
		_ = p.Close()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return with a relay open")
	}
	_, err = c.Read(buf)
	assert.Error(t, err, "the client's connection is closed by the proxy")
	_, err = net.DialTimeout("tcp", p.Addr(), time.Second)
	assert.Error(t, err, "the listener is closed")
	assert.NoError(t, p.Close(), "Close is idempotent")
}

func TestProxyUnreachableTarget(t *testing.T) {
	// A port that was just free: nothing listens there.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())

	p, err := NewProxy(addr)
	require.NoError(t, err)
	defer p.Close()
	c, err := net.Dial("tcp", p.Addr())
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.SetDeadline(time.Now().Add(10*time.Second)))
	_, err = c.Read(make([]byte, 1))
	assert.Error(t, err, "the proxy drops a connection it cannot relay")
	assert.Zero(t, p.Bytes())
}
