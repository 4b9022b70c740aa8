package machinetest

import (
	"testing"

	am "github.com/arpc-go/arpc/pkg/machine"
)

// disposeCases cover Dispose and WhenDisposed.
var disposeCases = []scenario{
	{"DisposeAndWhenDisposed", func(t *testing.T, f Factory) {
		m := newN(t, f, sA)
		pending := m.When1(sB, nil)
		pendingNot := m.WhenNot1(sA, nil)
		m.Dispose()
		closedWithin(t, m.WhenDisposed(), "WhenDisposed")
		// The same shared channel, closed.
		closedNow(t, m.WhenDisposed(), "WhenDisposed after disposal")
		// Pending When/WhenNot waiters are released by disposal.
		closedWithin(t, pending, "pending When1(B) after disposal")
		closedWithin(t, pendingNot, "pending WhenNot1(A) after disposal")
		// Mutations of a disposed machine are canceled.
		res(t, m.Add1(sB, nil), am.Canceled, "Add1(B) after disposal")
		res(t, m.Remove1(sA, nil), am.Canceled, "Remove1(A) after disposal")
		res(t, m.Set(am.S{sC}, nil), am.Canceled, "Set(C) after disposal")
		// New waiters return closed channels.
		closedNow(t, m.When1(sD, nil), "When1(D) after disposal")
		closedNow(t, m.WhenNot1(sD, nil), "WhenNot1(D) after disposal")
		// A repeated Dispose is harmless.
		m.Dispose()
		closedNow(t, m.WhenDisposed(), "WhenDisposed after a second Dispose")
	}},
}
