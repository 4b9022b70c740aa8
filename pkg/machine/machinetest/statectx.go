package machinetest

import (
	"testing"

	am "github.com/arpc-go/arpc/pkg/machine"
)

// stateCtxCases cover scenario 54 without handlers: NewStateCtx.
var stateCtxCases = []scenario{
	{"Scenario54_CanceledByRemove", func(t *testing.T, f Factory) {
		m := newN(t, f, sA)
		ctx := m.NewStateCtx(sA)
		if err := ctx.Err(); err != nil {
			t.Fatalf("NewStateCtx(A) with A active: Err() = %v, want nil", err)
		}
		other := m.NewStateCtx(sA)
		// Another state's change leaves it alone.
		res(t, m.Add1(sB, nil), am.Executed, "Add1(B)")
		if err := ctx.Err(); err != nil {
			t.Fatalf("state ctx of A canceled by Add1(B): %v", err)
		}
		res(t, m.Remove1(sA, nil), am.Executed, "Remove1(A)")
		closedWithin(t, ctx.Done(), "state ctx of A after Remove1(A)")
		closedWithin(t, other.Done(), "second state ctx of A after Remove1(A)")
		active(t, m, sB)
		// A new ctx of an inactive state is canceled from the start.
		closedNow(t, m.NewStateCtx(sA).Done(), "NewStateCtx(A) with A inactive")
		// A re-activated state gets a fresh, live ctx.
		res(t, m.Add1(sA, nil), am.Executed, "Add1(A)")
		if err := m.NewStateCtx(sA).Err(); err != nil {
			t.Fatalf("NewStateCtx(A) after re-adding A: Err() = %v, want nil", err)
		}
		finish(t, m)
	}},
	{"DisposeCancelsStateCtx", func(t *testing.T, f Factory) {
		m := newN(t, f, sA)
		ctx := m.NewStateCtx(sA)
		finish(t, m)
		closedWithin(t, ctx.Done(), "state ctx of A after Dispose")
	}},
}
