package rpc2

import (
	"context"
	"errors"
	"net"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestKeepaliveSilentPeerPipe: a peer that neither reads nor writes (and
// never closes) is detected within about 2×interval. Fake time.
func TestKeepaliveSilentPeerPipe(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := net.Pipe()
		defer b.Close()
		const interval = time.Second
		start := time.Now()
		c := NewConn(a, nil, WithKeepalive(interval))
		<-c.Done()
		elapsed := time.Since(start)
		assert.GreaterOrEqual(t, elapsed, 2*interval)
		assert.LessOrEqual(t, elapsed, 2*interval+interval/4, "detected within 2×interval plus one check period")
		assert.ErrorIs(t, c.Err(), ErrConnLost)
		assert.ErrorIs(t, c.Err(), ErrKeepalive)
		assert.Contains(t, c.Err().Error(), "rpc2: peer silent for 2s")
	})
}

// TestKeepaliveSilentPeerTCP: the same over TCP loopback, with a peer that
// accepted the connection and then does nothing (no FIN).
func TestKeepaliveSilentPeerTCP(t *testing.T) {
	a, b := tcpPair(t)
	defer b.Close()
	const interval = 40 * time.Millisecond
	start := time.Now()
	c := NewConn(a, nil, WithKeepalive(interval))
	defer closeWithin(t, c)
	waitDone(t, c, 10*time.Second)
	elapsed := time.Since(start)
	assert.GreaterOrEqual(t, elapsed, 2*interval)
	assert.Less(t, elapsed, 2*interval+time.Second, "detected in about 2×interval")
	assert.ErrorIs(t, c.Err(), ErrConnLost)
	assert.ErrorIs(t, c.Err(), ErrKeepalive)
}

// TestKeepaliveIdleHealthy: an idle connection stays up across many
// intervals; only one end has keepalive on, so it lives on the other end's
// pongs. Fake time.
func TestKeepaliveIdleHealthy(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := net.Pipe()
		c := NewConn(a, nil, WithKeepalive(time.Second))
		s := NewConn(b, testRegistry(t), WithKeepalive(0))
		time.Sleep(100 * time.Second) // fake time: 100 intervals of silence
		require.NoError(t, c.Err())
		require.NoError(t, s.Err())
		// Go, not Call: Call pools its Done channels, which must not
		// leave the bubble.
		call := c.Go(context.Background(), mAdd, &Args{A: 1, B: 2}, new(Reply), nil)
		<-call.Done
		require.NoError(t, call.Error)
		assert.Equal(t, 3, call.Reply.(*Reply).C)
		require.NoError(t, c.Close())
		require.NoError(t, s.Close())
	})
}

// TestKeepaliveIdleHealthyTCP: both ends with keepalive over TCP stay up
// across 25 intervals of idleness.
func TestKeepaliveIdleHealthyTCP(t *testing.T) {
	// long enough that a loaded machine's scheduling stalls (tens of ms)
	// can't pass for a silent peer (two missed intervals)
	const interval = time.Second
	c, s := connPair(t, tcpPair, nil, testRegistry(t), WithKeepalive(interval))
	select {
	case <-c.Done():
		t.Fatalf("client ended: %v", c.Err())
	case <-s.Done():
		t.Fatalf("server ended: %v", s.Err())
	case <-time.After(3 * interval): // absence of an event: a fixed wait is the test
	}
	var rep Reply
	require.NoError(t, c.Call(context.Background(), mAdd, &Args{A: 2, B: 2}, &rep))
	assert.Equal(t, 4, rep.C)
}

// TestKeepalivePingWire: a ping is answered by a pong with the same value,
// and the Conn pings a silent raw peer after one interval. Fake time.
func TestKeepalivePingWire(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := net.Pipe()
		c := NewConn(a, nil, WithKeepalive(time.Second))
		p := &rawPeer{t: t, nc: b, fr: newFrameReader(b, DefaultMaxMessageSize), cd: NewGobCodec()}
		defer b.Close()
		require.Equal(t, kindSettings, p.read(nil).kind)
		start := time.Now()
		f := p.read(nil)
		require.Equal(t, kindPing, f.kind)
		assert.GreaterOrEqual(t, time.Since(start), time.Second)
		p.write(buildFrames(t, testFrame{kind: kindPing, seq: 42}))
		f = p.read(nil)
		require.Equal(t, kindPong, f.kind)
		assert.Equal(t, uint64(42), f.seq)
		require.NoError(t, c.Err())
		require.NoError(t, c.Close())
	})
}

func TestKeepaliveOption(t *testing.T) {
	for _, d := range []time.Duration{-time.Second, time.Microsecond} {
		a, b := net.Pipe()
		c := NewConn(a, nil, WithKeepalive(d))
		assert.True(t, errors.Is(c.Err(), ErrInvalid), "WithKeepalive(%s): %v", d, c.Err())
		_ = c.Close()
		_ = b.Close()
	}
}
