package rpc2

import (
	"context"
	"encoding/binary"
	"net"
	"runtime"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestReadBufferGrowsWithArrivals: a frame that declares 4 MiB and stalls
// costs what arrived, not what it declared: 25 such connections stay under
// 2 MiB of heap in total (the declared sizes add up to 100 MiB).
func TestReadBufferGrowsWithArrivals(t *testing.T) {
	const (
		conns    = 25
		declared = DefaultMaxMessageSize
	)
	prefix := binary.AppendUvarint(nil, declared)
	cases := map[string][]byte{
		// 10 bytes: the prefix and the start of a request header.
		"10 bytes": append(append([]byte{}, prefix...), byte(kindRequest), 1, 1, 0, 0, 0)[:10],
		// A raw body: the payload is read into the frame buffer.
		"raw body": append(append(append([]byte{}, prefix...), byte(kindRequest)|flagRaw, 1, byte(mBin)), make([]byte, 96)...),
		// A gob body whose first message declares nearly the whole frame.
		"gob count": append(append(append([]byte{}, prefix...), byte(kindRequest), 1, byte(mAdd), 0xfc, 0x00, 0x3f, 0xff, 0xf0), make([]byte, 91)...),
	}
	for name, head := range cases {
		t.Run(name, func(t *testing.T) {
			reg := testRegistry(t)
			var ms runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&ms)
			before := ms.HeapAlloc
			var cs []*Conn
			var peers []net.Conn
			for range conns {
				a, b := net.Pipe()
				c := NewConn(a, reg)
				cs = append(cs, c)
				peers = append(peers, b)
				go func() { // drain what the Conn writes (its settings)
					buf := make([]byte, 64)
					for {
						if _, err := b.Read(buf); err != nil {
							return
						}
					}
				}()
				_, err := b.Write(head)
				require.NoError(t, err)
				if len(head) > 32 {
					// A pipe write returns once read: this one is read
					// inside the payload read, after any allocation for it.
					_, err = b.Write([]byte{0})
					require.NoError(t, err)
				}
			}
			runtime.GC()
			runtime.ReadMemStats(&ms)
			grew := int64(ms.HeapAlloc) - int64(before)
			t.Logf("%d stalled connections declaring %d bytes each: heap +%d KiB", conns, declared, grew>>10)
			assert.Less(t, grew, int64(2<<20))
			for _, c := range cs {
				require.NoError(t, c.Err(), "still waiting for the rest of the frame")
			}
			closeWithin(t, cs...)
			for _, p := range peers {
				_ = p.Close()
			}
		})
	}
}

// TestLargeMessageLeavesNoBuffers: after a 1 MiB gob call and its 1 MiB
// reply, neither end keeps buffers that large for reuse (the codecs are
// reset after a large body, read and write buffers over 256 KiB dropped).
func TestLargeMessageLeavesNoBuffers(t *testing.T) {
	transports(t, func(t *testing.T, dial func(t *testing.T) (net.Conn, net.Conn)) {
		c, _ := connPair(t, dial, nil, testRegistry(t))
		ctx := context.Background()
		small, out := []byte{1}, []byte(nil)
		require.NoError(t, c.Call(ctx, mBlob, &small, &out))
		var ms runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&ms)
		before := ms.HeapAlloc
		blob := make([]byte, 1<<20)
		require.NoError(t, c.Call(ctx, mBlob, &blob, &out))
		require.Len(t, out, 1<<20)
		blob, out = nil, nil
		require.NoError(t, c.Call(ctx, mBlob, &small, &out))
		runtime.GC()
		runtime.ReadMemStats(&ms)
		kept := int64(ms.HeapAlloc) - int64(before)
		t.Logf("kept after a 1 MiB round trip: %d KiB", kept>>10)
		assert.Less(t, kept, int64(512<<10))
	})
}
