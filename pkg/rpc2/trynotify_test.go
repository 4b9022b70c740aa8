package rpc2

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestTryNotify: TryNotify sends what args returns, sends nothing (and
// keeps no credit) for nil, and once the peer's window is used up returns
// ErrWouldBlock at once without calling args; credit coming back lets it
// send again. After the end of the connection it returns the end error.
func TestTryNotify(t *testing.T) {
	a := newApplied()
	// the client's window of 4: the server may have 4 notifications unhandled
	c, s := connPair(t, tcpPair, a.registry(t), nil, WithRequestWindow(4))
	// before the peer's settings frame there is no credit: a call's answer
	// (an unknown method here) comes after it
	var r Reply
	require.Error(t, c.Call(context.Background(), mAdd, &Args{}, &r))
	require.NoError(t, s.TryNotify(mApply, func() any { return binMsg{1} }))
	require.Equal(t, uint64(1), recvUint(t, a.ch))
	require.NoError(t, s.TryNotify(mApply, func() any { return nil }), "nothing to send")

	// take the remaining credit away, as notifications the peer has not
	// handled yet would
	for s.tryAcquireCredit() {
	}
	called := false
	err := s.TryNotify(mApply, func() any { called = true; return binMsg{2} })
	require.ErrorIs(t, err, ErrWouldBlock)
	assert.False(t, called, "args is not called without credit")

	s.addCredit(1) // as a credit frame from the peer would
	require.NoError(t, s.TryNotify(mApply, func() any { return binMsg{3} }))
	require.Equal(t, uint64(3), recvUint(t, a.ch))

	require.NoError(t, c.Close())
	select {
	case <-s.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the server end did not see the close")
	}
	err = s.TryNotify(mApply, func() any { return binMsg{4} })
	require.Error(t, err)
	assert.ErrorIs(t, err, ErrConnLost)
	assert.ErrorIs(t, s.TryNotify(0, func() any { return nil }), ErrInvalid)
}
