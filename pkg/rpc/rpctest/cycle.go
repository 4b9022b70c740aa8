package rpctest

import am "github.com/arpc-go/arpc/pkg/machine"

// CycleStates is the schema of the remote cycle that pkg/rpc's
// BenchmarkCycle and benchmark_grpc's breakdown measure: three exclusive
// values and one op per value.
var CycleStates = am.Struct{
	"Value1": {Remove: am.S{"Value2", "Value3"}},
	"Value2": {Remove: am.S{"Value1", "Value3"}},
	"Value3": {Remove: am.S{"Value1", "Value2"}},
	"Op1":    {Multi: true},
	"Op2":    {Multi: true},
	"Op3":    {Multi: true},
}

// CycleNames are CycleStates' ordered names.
var CycleNames = am.S{"Value1", "Value2", "Value3", "Op1", "Op2", "Op3", am.Exception}

// CycleOps maps each value to the op that matches it.
var CycleOps = map[string]string{"Value1": "Op1", "Value2": "Op2", "Value3": "Op3"}

// CycleHandlers are the cycle's source handlers: the handler of OpN
// activates the next value.
type CycleHandlers struct{}

// Op1State activates Value2.
func (CycleHandlers) Op1State(e *am.Event) { e.Machine.Add1("Value2", nil) }

// Op2State activates Value3.
func (CycleHandlers) Op2State(e *am.Event) { e.Machine.Add1("Value3", nil) }

// Op3State activates Value1.
func (CycleHandlers) Op3State(e *am.Event) { e.Machine.Add1("Value1", nil) }
