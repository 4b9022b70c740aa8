package rpc2

import (
	"context"
	"net"
	"net/rpc"
	"sync"
	"testing"
	"time"
)

// Benchmarks against the standard library's net/rpc: the same argument and
// reply types, gob on both, TCP loopback, client and server in one process
// (so allocs/op count both ends).
//
//	go test -run '^$' -bench . -benchmem ./pkg/rpc2/

// Blob is the 64 KiB payload of BenchmarkLarge64K.
type Blob struct{ Data []byte }

// Arith is the net/rpc service.
type Arith struct{}

// Add adds.
func (*Arith) Add(args *Args, reply *Reply) error {
	reply.C = args.A + args.B
	return nil
}

// Echo echoes.
func (*Arith) Echo(args *Blob, reply *Blob) error {
	reply.Data = args.Data
	return nil
}

const (
	benchAdd  Method = 1
	benchEcho Method = 2
)

// benchTarget is one transport under benchmark.
type benchTarget struct {
	add  func(args *Args, reply *Reply) error
	echo func(args *Blob, reply *Blob) error
}

func benchLoopback(b *testing.B) net.Listener {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	return lis
}

func newNetRPC(b *testing.B) benchTarget {
	srv := rpc.NewServer()
	if err := srv.Register(new(Arith)); err != nil {
		b.Fatal(err)
	}
	lis := benchLoopback(b)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			nc, err := lis.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				srv.ServeConn(nc)
			}()
		}
	}()
	client, err := rpc.Dial("tcp", lis.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		_ = client.Close()
		_ = lis.Close()
		wg.Wait()
	})
	return benchTarget{
		add:  func(a *Args, r *Reply) error { return client.Call("Arith.Add", a, r) },
		echo: func(a *Blob, r *Blob) error { return client.Call("Arith.Echo", a, r) },
	}
}

func newRPC2(b *testing.B) benchTarget { return newRPC2Ctx(b, context.Background()) }

// newRPC2Deadline calls with a context that has a deadline, as aRPC does:
// such calls never write on the caller's goroutine (see Conn.send), so this
// measures the hand-off to the writer goroutine.
func newRPC2Deadline(b *testing.B) benchTarget {
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	b.Cleanup(cancel)
	return newRPC2Ctx(b, ctx)
}

func newRPC2Ctx(b *testing.B, ctx context.Context) benchTarget {
	reg := NewRegistry()
	if err := HandleFunc(reg, benchAdd, "add", func(_ context.Context, _ *Conn, a *Args, r *Reply) error {
		r.C = a.A + a.B
		return nil
	}); err != nil {
		b.Fatal(err)
	}
	if err := HandleFunc(reg, benchEcho, "echo", func(_ context.Context, _ *Conn, a *Blob, r *Blob) error {
		r.Data = a.Data
		return nil
	}); err != nil {
		b.Fatal(err)
	}
	srv := NewServer(reg)
	lis := benchLoopback(b)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(context.Background(), lis) }()
	nc, err := net.Dial("tcp", lis.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	c := NewConn(nc, nil)
	b.Cleanup(func() {
		_ = c.Close()
		_ = srv.Close()
		<-served
	})
	return benchTarget{
		add:  func(a *Args, r *Reply) error { return c.Call(ctx, benchAdd, a, r) },
		echo: func(a *Blob, r *Blob) error { return c.Call(ctx, benchEcho, a, r) },
	}
}

var benchTargets = []struct {
	name string
	new  func(*testing.B) benchTarget
}{
	{"netrpc", newNetRPC},
	{"rpc2", newRPC2},
	{"rpc2-deadline", newRPC2Deadline},
}

func BenchmarkRoundTrip(b *testing.B) {
	for _, bt := range benchTargets {
		b.Run(bt.name, func(b *testing.B) {
			t := bt.new(b)
			args := &Args{A: 1, B: 2}
			var reply Reply
			if err := t.add(args, &reply); err != nil { // warm up: gob types
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if err := t.add(args, &reply); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkParallel(b *testing.B) {
	for _, bt := range benchTargets {
		b.Run(bt.name, func(b *testing.B) {
			t := bt.new(b)
			if err := t.add(&Args{A: 1}, new(Reply)); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.SetParallelism(8)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				args := &Args{A: 1, B: 2}
				var reply Reply
				for pb.Next() {
					if err := t.add(args, &reply); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

func BenchmarkLarge64K(b *testing.B) {
	for _, bt := range benchTargets {
		b.Run(bt.name, func(b *testing.B) {
			t := bt.new(b)
			args := &Blob{Data: make([]byte, 64<<10)}
			for i := range args.Data {
				args.Data[i] = byte(i)
			}
			var reply Blob
			if err := t.echo(args, &reply); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.SetBytes(2 * 64 << 10)
			b.ResetTimer()
			for b.Loop() {
				if err := t.echo(args, &reply); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
