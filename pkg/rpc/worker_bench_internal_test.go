package rpc

import (
	"context"
	"testing"

	am "github.com/arpc-go/arpc/pkg/machine"
)

// benchWorker returns the Worker of a client that never connects: the
// benchmarks feed its updates directly, as the client's read loop does.
func benchWorker(b *testing.B) *Worker {
	b.Helper()
	c, err := NewClient(context.Background(), "127.0.0.1:0", "bench", itStruct(), itNames)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = c.Close() })
	return c.Worker
}

// benchApply applies the next diff of w's stream: each state of idxs ticks
// by delta.
func benchApply(b *testing.B, w *Worker, delta uint64, idxs ...int) {
	u := &msgUpdate{version: w.appliedVersion() + 1}
	for _, i := range idxs {
		u.entries = append(u.entries, tickEntry{idx: i, delta: delta})
	}
	if err := w.applyUpdate(u); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkWorkerRead is the mirror's local reads: Is1, Is and Time.
func BenchmarkWorkerRead(b *testing.B) {
	w := benchWorker(b)
	benchApply(b, w, 1, 0, 2)
	b.Run("Is1", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if !w.Is1("A") {
				b.Fatal("A inactive")
			}
		}
	})
	b.Run("Is", func(b *testing.B) {
		s := am.S{"A", "M"}
		b.ReportAllocs()
		for b.Loop() {
			if !w.Is(s) {
				b.Fatal("A, M inactive")
			}
		}
	})
	b.Run("Time", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = w.Time(nil)
		}
	})
	b.Run("StringAll", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = w.StringAll()
		}
	})
}

// BenchmarkWorkerWhen is a wait on the mirror: When1 on an inactive state,
// released by the diff that activates it (then one that deactivates it).
func BenchmarkWorkerWhen(b *testing.B) {
	w := benchWorker(b)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		ch := w.When1("A", ctx)
		benchApply(b, w, 1, 0)
		<-ch
		benchApply(b, w, 1, 0)
	}
}

// BenchmarkWorkerWhenCanceled is a wait abandoned by its context: register,
// cancel, released.
func BenchmarkWorkerWhenCanceled(b *testing.B) {
	w := benchWorker(b)
	b.ReportAllocs()
	for b.Loop() {
		ctx, cancel := context.WithCancel(context.Background())
		ch := w.When1("A", ctx)
		cancel()
		<-ch
	}
}

// BenchmarkWorkerApplyDiff is one diff applied to a mirror with 16 pending
// waits on other states, none of which it satisfies.
func BenchmarkWorkerApplyDiff(b *testing.B) {
	w := benchWorker(b)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for range 8 {
		w.When1("B", ctx)
		w.WhenTicksEq("A", 1<<62, ctx)
	}
	b.ReportAllocs()
	for b.Loop() {
		benchApply(b, w, 2, 2)
	}
}
