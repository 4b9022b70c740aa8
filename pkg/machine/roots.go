package machine

// rootState tracks one Mutate call: its own item plus the items caused by
// it (queued from handlers while it or its descendants ran, auto and
// Exception mutations). Mutate returns once all of them have completed, so a
// caller sees the effects of the follow-ups its handlers queued, even when
// another goroutine drains the queue. Fields are guarded by Machine.qmu.
type rootState struct {
	// id is the id of the Mutate call's own item.
	id uint64
	// pending counts the root's items not yet completed.
	pending int32
	// res and fail are the own item's outcome: a Result, and its error (nil
	// when there is none). Kept small so that a root is one 32-byte
	// allocation.
	res int16
	// released tells that a handler timeout already released the waiting
	// caller: res and fail are no longer written
	released bool
	fail     *errBox
	// done receives the result (or resultHandoff) for a waiting caller; nil
	// for a caller draining the queue itself. res and err are written before
	// the send, so the receiver reads them without the lock.
	done chan Result
}

// resultHandoff tells a waiting Mutate caller to take over draining.
const resultHandoff Result = -1

// attributeLocked makes it part of the root being processed. Only the
// drainer calls it (from a handler or Eval function of that root's
// transition), so the attribution is exact. Needs m.qmu.
func (m *Machine) attributeLocked(it *queueItem) {
	r := m.curRoot.Load()
	if r == nil || it.root != nil {
		return
	}
	it.root = r
	r.pending++
}

// itemDone records the completion of an item of root r (nil: none) and
// reports the root's result once nothing of it is pending.
func (m *Machine) itemDone(r *rootState, id uint64, res Result, err error) {
	if r == nil {
		return
	}
	m.qmu.Lock()
	if id == r.id && !r.released {
		r.res = int16(res)
		if err != nil {
			r.fail = &errBox{err}
		}
	}
	r.pending--
	fin := r.pending == 0
	m.qmu.Unlock()
	if fin && r.done != nil {
		select {
		case r.done <- Result(r.res):
		default:
		}
	}
}

// outcome returns the own item's result and error of a root whose caller
// drained the queue itself: only that goroutine completed the root's items
// (nobody else drains meanwhile, and disposal flushes only an idle queue),
// so it reads them without the lock.
func (m *Machine) outcome(r *rootState) (Result, error) {
	if r.pending > 0 {
		// some of its items were dropped without completing (can't happen
		// while the queue runs to its end; kept as a safe answer)
		return Canceled, ErrCanceled
	}
	return Result(r.res), r.err()
}

// err returns the own item's error, or nil.
func (r *rootState) err() error {
	if r.fail == nil {
		return nil
	}
	return r.fail.err
}

// handoffLocked passes the draining role to the first queued item of a
// waiting Mutate call, if any. Needs m.qmu.
func (m *Machine) handoffLocked() bool {
	for i := m.qhead; i < len(m.queue); i++ {
		it := &m.queue[i]
		if r := it.root; r != nil && r.id == it.id && r.done != nil {
			select {
			case r.done <- resultHandoff:
				return true
			default:
			}
		}
	}
	return false
}
