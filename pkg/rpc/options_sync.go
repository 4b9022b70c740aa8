package rpc

import (
	"fmt"
	"slices"

	am "github.com/arpc-go/arpc/pkg/machine"
)

// WithSyncStates makes the client's mirror follow only the named states
// (selective sync): the server sends the changes of these states only, and
// a session none of whose states changed costs the server nothing. The
// other states read as inactive on the Worker (tick 0), their When
// channels never close, and mutations of them still run on the server. It
// is combined with WithSkipStates (skipped states are dropped from the
// list). A name not in the schema fails NewClient (and Dial) with
// ErrInvalidParams.
func WithSyncStates(states ...string) ClientOption {
	return func(o *clientOpts) { o.follow.only = append(am.S{}, states...) }
}

// WithSkipStates makes the client's mirror follow every state but the named
// ones (see WithSyncStates for what a state not followed reads as), for
// example a busy state of the server the client has no use for.
func WithSkipStates(states ...string) ClientOption {
	return func(o *clientOpts) { o.follow.skip = append(o.follow.skip, states...) }
}

// followOpts are the selective-sync options.
type followOpts struct {
	only am.S // nil: every state
	skip am.S
}

// indexes returns the indexes of the states to follow in names, or nil to
// follow every state.
func (f followOpts) indexes(names am.S) ([]int, error) {
	if f.only == nil && f.skip == nil {
		return nil, nil
	}
	for _, n := range slices.Concat(f.only, f.skip) {
		if !slices.Contains(names, n) {
			return nil, fmt.Errorf("%w: sync: state %q is not in the schema", ErrInvalidParams, n)
		}
	}
	idxs := []int{}
	for i, n := range names {
		if (f.only == nil || slices.Contains(f.only, n)) && !slices.Contains(f.skip, n) {
			idxs = append(idxs, i)
		}
	}
	return idxs, nil
}
