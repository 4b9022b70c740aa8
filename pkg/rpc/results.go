package rpc

import (
	"context"

	am "github.com/arpc-go/arpc/pkg/machine"
)

// reqResult is a mutation a session remembers so that a retry of it (same
// request ID) runs nothing and gets the first attempt's answer.
type reqResult struct {
	done chan struct{} // closed once resp is final
	resp respResult
	// ran tells whether the mutation reached the source machine.
	ran bool
	// err is the refusal of a mutation that did not run.
	err error
}

// results is a session's table of remembered mutations. The client
// acknowledges request IDs (every ID below msgMutate.Ack is settled) and
// the table forgets only acknowledged ones, so an ID that may still be
// retried is never evicted. It holds at most max entries: beyond that, new
// requests are refused (the client keeps too many unsettled), never old
// results forgotten. Guarded by the session's mutex.
type results struct {
	max   int
	byID  map[uint64]*reqResult
	order []uint64 // IDs in arrival order, for pruning
	acked uint64   // every ID below it was forgotten
}

func newResults(max int) results {
	return results{max: max, byID: map[uint64]*reqResult{}}
}

// ack forgets the results of the IDs below ack.
func (r *results) ack(ack uint64) {
	if ack <= r.acked {
		return
	}
	r.acked = ack
	kept := r.order[:0]
	i := 0
	for ; i < len(r.order); i++ {
		id := r.order[i]
		if id >= ack {
			break
		}
		delete(r.byID, id)
	}
	// IDs may arrive slightly out of order: keep the unacknowledged ones
	// behind the first kept ID, drop the acknowledged.
	for ; i < len(r.order); i++ {
		id := r.order[i]
		if id < ack {
			delete(r.byID, id)
			continue
		}
		kept = append(kept, id)
	}
	r.order = kept
}

// begin looks up id. A known id returns its entry and false: the caller
// waits for done and answers with its result. A new id is entered (running)
// and returns true. An acknowledged id, or a new one beyond the table's
// capacity, is refused with a coded error.
func (r *results) begin(id uint64) (e *reqResult, isNew bool, err error) {
	if id == 0 {
		// no ID: not deduplicated
		return &reqResult{done: make(chan struct{})}, true, nil
	}
	if e := r.byID[id]; e != nil {
		return e, false, nil
	}
	if id < r.acked {
		// The client settled it (it won't send it again), yet its first
		// and only copy arrives only now: requests of one connection are
		// served concurrently, so a later request's ack can overtake it.
		// Run it without remembering it.
		return &reqResult{done: make(chan struct{})}, true, nil
	}
	if len(r.byID) >= r.max {
		return nil, false, codeErr(CodeTooManyPending,
			"more than %d unacknowledged mutations in this session: not run", r.max)
	}
	e = &reqResult{done: make(chan struct{})}
	r.byID[id] = e
	r.order = append(r.order, id)
	return e, true, nil
}

// forget drops a running id that turned out not to run, so that a retry of
// it runs.
func (r *results) forget(id uint64) {
	delete(r.byID, id)
}

// wait waits for a running entry's result.
func (e *reqResult) wait(ctx context.Context) (respResult, error) {
	select {
	case <-e.done:
		return e.resp, e.err
	case <-ctx.Done():
		return respResult{result: am.Canceled}, ctx.Err()
	}
}
