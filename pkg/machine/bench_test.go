package machine_test

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"

	am "github.com/arpc-go/arpc/pkg/machine"
)

// benchStruct is a 4-state schema with real relations: A adds B, B removes
// C, C runs after D, D requires A.
func benchStruct() am.Struct {
	return am.Struct{
		"A": {Add: am.S{"B"}},
		"B": {Remove: am.S{"C"}},
		"C": {After: am.S{"D"}},
		"D": {Require: am.S{"A"}},
	}
}

var benchNames = am.S{"A", "B", "C", "D", am.Exception}

// benchHandlers has Enter, State and End handlers for A.
type benchHandlers struct {
	enters, states, ends int
}

func (h *benchHandlers) AEnter(e *am.Event) bool {
	h.enters++
	return true
}

func (h *benchHandlers) AState(e *am.Event) { h.states++ }

func (h *benchHandlers) AEnd(e *am.Event) { h.ends++ }

func newBenchMachine(b *testing.B, s am.Struct, names am.S, handlers any) *am.Machine {
	b.Helper()
	m := am.New(context.Background(), s, nil)
	if err := m.VerifyStates(names); err != nil {
		b.Fatal(err)
	}
	if handlers != nil {
		if err := m.BindHandlers(handlers); err != nil {
			b.Fatal(err)
		}
	}
	b.Cleanup(func() {
		m.Dispose()
		<-m.WhenDisposed()
	})
	return m
}

func BenchmarkAddRemoveHandlers(b *testing.B) {
	h := &benchHandlers{}
	m := newBenchMachine(b, benchStruct(), benchNames, h)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if m.Add1("A", nil) != am.Executed {
			b.Fatal("add")
		}
		if m.Remove1("A", nil) != am.Executed {
			b.Fatal("remove")
		}
	}
	b.StopTimer()
	if h.enters == 0 || h.enters != h.states || h.states != h.ends {
		b.Fatalf("handlers: %d enters, %d states, %d ends", h.enters, h.states, h.ends)
	}
}

func BenchmarkAddRemoveNoHandlers(b *testing.B) {
	m := newBenchMachine(b, benchStruct(), benchNames, nil)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if m.Add1("A", nil) != am.Executed {
			b.Fatal("add")
		}
		if m.Remove1("A", nil) != am.Executed {
			b.Fatal("remove")
		}
	}
}

func BenchmarkWhenAddRemove(b *testing.B) {
	m := newBenchMachine(b, benchStruct(), benchNames, nil)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		ch := m.When1("A", nil)
		m.Add1("A", nil)
		select {
		case <-ch:
		default:
			b.Fatal("When1 not closed")
		}
		m.Remove1("A", nil)
	}
}

func BenchmarkIs(b *testing.B) {
	s := am.Struct{}
	names := am.S{}
	for i := range 20 {
		n := "S" + strconv.Itoa(i)
		s[n] = am.State{}
		names = append(names, n)
	}
	names = append(names, am.Exception)
	m := newBenchMachine(b, s, names, nil)
	m.Add(am.S{"S3", "S17"}, nil)
	states := am.S{"S3", "S17"}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if !m.Is(states) {
			b.Fatal("not active")
		}
	}
}

// BenchmarkMutateParallel runs Mutate from parallel goroutines, each on its
// own Multi state, so the queue is often drained by another goroutine.
func BenchmarkMutateParallel(b *testing.B) {
	s := am.Struct{}
	var names am.S
	for i := range 16 {
		n := "M" + strconv.Itoa(i)
		s[n] = am.State{Multi: true}
		names = append(names, n)
	}
	names = append(names, am.Exception)
	m := newBenchMachine(b, s, names, nil)
	var next atomic.Int32
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		state := am.S{names[int(next.Add(1)-1)%16]}
		for pb.Next() {
			res, err := m.Mutate(ctx, am.MutationAdd, state, nil)
			if err != nil || res != am.Executed {
				b.Errorf("mutate: %v %v", res, err)
				return
			}
		}
	})
}
