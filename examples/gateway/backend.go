package main

import (
	"sync"
	"sync/atomic"
	"time"

	am "github.com/arpc-go/arpc/pkg/machine"
	"github.com/arpc-go/arpc/pkg/rpc"
)

// The backend machine: each request is an activation of Requested, each
// answer one of Done (both Multi, so every request and every answer
// activates its state again).
var (
	states = am.Struct{
		"Requested": {Multi: true},
		"Done":      {Multi: true},
	}
	names = am.S{"Requested", "Done", am.Exception}
)

// maxDelay caps the simulated work time a request may ask for.
const maxDelay = 10 * time.Second

// job is one request waiting for a worker.
type job struct {
	id    string // correlation ID
	n     int
	delay time.Duration
}

// event is something the backend did, for the demo to wait on.
type event struct {
	kind string // "started", "late" or "skipped"
	n    int
}

// stats are the backend's counts.
type stats struct {
	Accepted uint64 // queued for a worker
	Answered uint64 // answered by a worker
	Lost     uint64 // never answered (silent=1)
	Skipped  uint64 // dropped by a worker: the caller had given up
	Busy     uint64 // refused: the queue was full
	Late     uint64 // answers that reached no one (WithLateAnswer)
}

// backend is the asynchronous service behind the machine: the handler of
// Requested queues a job and returns, a pool of workers answers. It owns its
// workers: stop returns once they have exited.
type backend struct {
	mach *am.Machine
	srv  *rpc.Server
	jobs chan job
	quit chan struct{}
	wg   sync.WaitGroup
	once sync.Once

	logf   func(format string, args ...any)
	events chan event // nil: none are sent

	accepted, answered, lost, skipped, busy, late atomic.Uint64
}

// RequestedState runs on the source machine for every request: it reads the
// correlation ID and the input, and hands the work to the pool without
// waiting for it. A request flagged silent is lost: it is never answered.
// When the queue is full it answers at once with an error, rather than
// block the machine.
func (b *backend) RequestedState(e *am.Event) {
	id := rpc.CorrelationID(e.Args)
	n, _ := e.Args["n"].(int)
	if silent, _ := e.Args["silent"].(bool); silent {
		b.lost.Add(1)
		b.logf("backend: n=%d lost, it will never be answered", n)
		return
	}
	delay, _ := e.Args["delay"].(time.Duration)
	select {
	case b.jobs <- job{id: id, n: n, delay: min(max(delay, 0), maxDelay)}:
		b.accepted.Add(1)
	default:
		b.busy.Add(1)
		e.Machine.Add1("Done", rpc.Correlated(id, am.A{"n": n, "err": "busy"}))
	}
}

// start starts workers that answer through srv's source.
func (b *backend) start(srv *rpc.Server, workers int) {
	b.srv = srv
	for range workers {
		b.wg.Go(b.work)
	}
}

// stop stops the workers, dropping the jobs still queued, and returns once
// they have exited. Safe to call more than once.
func (b *backend) stop() {
	b.once.Do(func() { close(b.quit) })
	b.wg.Wait()
}

// work is one worker's loop.
func (b *backend) work() {
	for {
		var j job
		select {
		case <-b.quit:
			return
		case j = <-b.jobs:
		}
		// A job that waited in the queue past its caller's deadline is
		// not worth doing: nobody will read its result.
		if b.srv.Abandoned(j.id) {
			b.skipped.Add(1)
			b.logf("backend: n=%d skipped, its caller gave up while it was queued", j.n)
			b.emit(event{"skipped", j.n})
			continue
		}
		b.logf("backend: n=%d working", j.n)
		b.emit(event{"started", j.n})
		if j.delay > 0 {
			// the simulated work time
			t := time.NewTimer(j.delay)
			select {
			case <-t.C:
			case <-b.quit:
				t.Stop()
				return
			}
		}
		// The answer carries the request's correlation ID: Request hands it
		// to that request's caller, and to no one else.
		b.mach.Add1("Done", rpc.Correlated(j.id, am.A{"n": j.n, "result": j.n * j.n}))
		b.answered.Add(1)
	}
}

// lateAnswer is the server's WithLateAnswer callback: an answer that reached
// no one, because its caller gave up first. A real backend would compensate
// the work here; this one counts it. It runs inside the answering transition,
// so it must not block.
func (b *backend) lateAnswer(_ string, args am.A) {
	b.late.Add(1)
	n, _ := args["n"].(int)
	b.logf("server: late answer for n=%d (result %v): its caller had given up, compensating", n, args["result"])
	b.emit(event{"late", n})
}

// emit reports e if someone listens and there is room; it never blocks.
func (b *backend) emit(e event) {
	if b.events == nil {
		return
	}
	select {
	case b.events <- e:
	default:
	}
}

// stats returns the backend's counts so far.
func (b *backend) stats() stats {
	return stats{
		Accepted: b.accepted.Load(), Answered: b.answered.Load(), Lost: b.lost.Load(),
		Skipped: b.skipped.Load(), Busy: b.busy.Load(), Late: b.late.Load(),
	}
}
