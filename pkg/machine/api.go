package machine

import (
	"context"
)

// Api is the machine API shared by a local *Machine and remote mirrors (an
// aRPC Worker), so code and tests can target either. Each method has the
// semantics documented on *Machine; implementations must be safe for
// concurrent use.
type Api interface {
	Add1(state string, args A) Result
	Add(states S, args A) Result
	Remove1(state string, args A) Result
	Remove(states S, args A) Result
	Set(states S, args A) Result
	AddErr(err error, args A) Result
	AddErrState(state string, err error, args A) Result

	WhenArgs(state string, args A, ctx context.Context) <-chan struct{}

	Err() error
	Log(msg string, args ...any)

	IsErr() bool
	Is(states S) bool
	Is1(state string) bool
	Not(states S) bool
	Not1(state string) bool
	Any(states ...S) bool
	Any1(state ...string) bool
	Has(states S) bool
	Has1(state string) bool
	IsTime(time Time, states S) bool
	IsClock(clock Clock) bool
	Switch(states ...string) string

	When(states S, ctx context.Context) <-chan struct{}
	When1(state string, ctx context.Context) <-chan struct{}
	WhenNot(states S, ctx context.Context) <-chan struct{}
	WhenNot1(state string, ctx context.Context) <-chan struct{}
	WhenTime(states S, times Time, ctx context.Context) <-chan struct{}
	WhenTicks(state string, ticks int, ctx context.Context) <-chan struct{}
	WhenTicksEq(state string, tick uint64, ctx context.Context) <-chan struct{}
	WhenErr(ctx context.Context) <-chan struct{}

	StateNames() S
	ActiveStates() S
	Tick(state string) uint64
	Clock(states S) Clock
	Time(states S) Time
	TimeSum(states S) uint64
	NewStateCtx(state string) context.Context
	Export() *Serialized
	GetStruct() Struct

	String() string
	StringAll() string
	Inspect(states S) string
	Index(state string) int

	Dispose()
	WhenDisposed() <-chan struct{}
}

var _ Api = (*Machine)(nil)
