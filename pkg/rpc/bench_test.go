package rpc_test

import (
	"context"
	"io"
	"net"
	"testing"

	am "github.com/arpc-go/arpc/pkg/machine"
	"github.com/arpc-go/arpc/pkg/rpc/rpctest"
)

func newCycleSource(tb testing.TB) *am.Machine {
	tb.Helper()
	m := am.New(context.Background(), rpctest.CycleStates, &am.Opts{ID: "cycle"})
	if err := m.VerifyStates(rpctest.CycleNames); err != nil {
		tb.Fatal(err)
	}
	if err := m.BindHandlers(&rpctest.CycleHandlers{}); err != nil {
		tb.Fatal(err)
	}
	m.Add1("Value1", nil)
	tb.Cleanup(func() {
		m.Dispose()
		<-m.WhenDisposed()
	})
	return m
}

// BenchmarkCycle is one remote cycle: read the value on the mirror (Switch),
// send the matching op with Add1, whose server handler activates the next
// value, which comes back in the reply. BenchmarkTCPRoundTrip, in the same run,
// is the floor: a 1-byte echo over loopback TCP.
func BenchmarkCycle(b *testing.B) {
	source := newCycleSource(b)
	_, c := rpctest.NewPair(b, source, nil, nil)
	w := c.Worker
	ops := rpctest.CycleOps
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		v := w.Switch("Value1", "Value2", "Value3")
		if res := w.Add1(ops[v], nil); res != am.Executed {
			b.Fatalf("Add1(%s) = %v: %v", ops[v], res, w.Err())
		}
	}
	b.StopTimer()
	if !w.IsClock(source.Clock(nil)) {
		b.Fatalf("mirror %s != source %s", w.StringAll(), source.StringAll())
	}
}

// BenchmarkTCPRoundTrip is a raw 1-byte round trip over loopback TCP.
func BenchmarkTCPRoundTrip(b *testing.B) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		conn, err := lis.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		buf := make([]byte, 1)
		for {
			if _, err := io.ReadFull(conn, buf); err != nil {
				return
			}
			if _, err := conn.Write(buf); err != nil {
				return
			}
		}
	}()
	conn, err := net.Dial("tcp", lis.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	buf := []byte{1}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := conn.Write(buf); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(conn, buf); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	conn.Close()
	lis.Close()
	<-done
}
