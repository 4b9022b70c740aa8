package rpc_test

import (
	"context"
	"net"
	"testing"

	"github.com/arpc-go/arpc/pkg/rpc2"
)

type scratchMsg struct{ b []byte }

func (m *scratchMsg) AppendBinary(b []byte) ([]byte, error) { return append(b, m.b...), nil }
func (m *scratchMsg) UnmarshalBinary(d []byte) error       { m.b = append(m.b[:0], d...); return nil }

func BenchmarkScratchRpc2Echo(b *testing.B) {
	reg := rpc2.NewRegistry()
	_ = rpc2.HandleFunc(reg, 1, "echo", func(ctx context.Context, c *rpc2.Conn, a *scratchMsg, r *scratchMsg) error {
		r.b = a.b
		return nil
	})
	lis, _ := net.Listen("tcp", "127.0.0.1:0")
	srv := rpc2.NewServer(reg)
	go srv.Serve(context.Background(), lis)
	nc, _ := net.Dial("tcp", lis.Addr().String())
	c := rpc2.NewConn(nc, nil)
	ctx := context.Background()
	in := &scratchMsg{b: []byte("hello")}
	var out scratchMsg
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := c.Call(ctx, 1, in, &out); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	c.Close()
	srv.Close()
}
