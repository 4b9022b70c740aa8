package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	am "github.com/arpc-go/arpc/pkg/machine"
	"github.com/arpc-go/arpc/pkg/rpc"
)

const (
	jobCount  = 1000
	consumers = 10
	// slots is how many jobs the board offers at once: Job0..Job3.
	slots = 4
)

// The job board: slot s holds jobs s, s+4, s+8...; a consumer takes the job
// of a slot by removing the slot's state, and the board puts the slot's next
// job up. So the k-th activation of slot s (its tick is 2k+1) is job s+4k,
// which both sides can tell from the tick. Drained ends the run.
var jobNames = am.S{"Job0", "Job1", "Job2", "Job3", "Drained", am.Exception}

func jobsStruct() am.Struct {
	s := am.Struct{"Drained": {}}
	for i := range slots {
		s[slotName(i)] = am.State{}
	}
	return s
}

func slotName(i int) string { return fmt.Sprintf("Job%d", i) }

// jobOf is the job a slot holds at tick.
func jobOf(slot int, tick uint64) int { return slot + slots*int((tick-1)/2) }

// board runs on the server: it logs who took each job, as the source saw
// it, and refills the slot.
type board struct {
	mu      sync.Mutex
	cur     [slots]int
	takenBy map[int]string
	twice   int
}

// taken is the final handler of a slot's removal: a consumer took its job.
func (b *board) taken(e *am.Event, slot int) {
	by, _ := e.Args["by"].(string)
	b.mu.Lock()
	job := b.cur[slot]
	if _, dup := b.takenBy[job]; dup {
		b.twice++
	}
	b.takenBy[job] = by
	b.cur[slot] += slots
	next := b.cur[slot]
	drained := len(b.takenBy) == jobCount
	b.mu.Unlock()
	if next < jobCount {
		// queued: it runs before the take's reply, which carries it
		e.Machine.Add1(slotName(slot), nil)
	}
	if drained {
		e.Machine.Add1("Drained", nil)
	}
}

// Job0End is called when slot 0's job is taken.
func (b *board) Job0End(e *am.Event) { b.taken(e, 0) }

// Job1End is called when slot 1's job is taken.
func (b *board) Job1End(e *am.Event) { b.taken(e, 1) }

// Job2End is called when slot 2's job is taken.
func (b *board) Job2End(e *am.Event) { b.taken(e, 2) }

// Job3End is called when slot 3's job is taken.
func (b *board) Job3End(e *am.Event) { b.taken(e, 3) }

// consumerLog is what one consumer took.
type consumerLog struct {
	name      string
	jobs      []int
	conflicts int
}

// jobStats is the outcome of takeJobs.
type jobStats struct {
	consumers []*consumerLog
	// the source's log: job to consumer, and how many jobs it saw taken
	// twice
	takenBy map[int]string
	twice   int
}

// takeJobs serves a job board with n jobs and lets k consumers, each with
// its own client, take them all.
func takeJobs(ctx context.Context, n, k int) (*jobStats, error) {
	if n != jobCount {
		return nil, fmt.Errorf("the board holds %d jobs", jobCount)
	}
	b := &board{takenBy: map[int]string{}}
	for i := range slots {
		b.cur[i] = i
	}
	// push changes at once: the consumers that lost a job see the next one
	// without waiting for a push interval
	src, srv, stop, err := serve(ctx, "jobs", jobsStruct(), jobNames, b, rpc.WithPushInterval(0))
	if err != nil {
		return nil, err
	}
	defer stop()
	var first am.S
	for i := range min(slots, n) {
		first = append(first, slotName(i))
	}
	if res := src.Add(first, nil); res != am.Executed {
		return nil, fmt.Errorf("putting the first jobs up: %s", res)
	}

	st := &jobStats{}
	clients := make([]*rpc.Client, k)
	defer func() {
		for _, c := range clients {
			if c != nil {
				_ = c.Close()
			}
		}
	}()
	for i := range clients {
		if clients[i], err = rpc.Dial(ctx, srv.Addr, jobsStruct(), jobNames); err != nil {
			return nil, err
		}
		st.consumers = append(st.consumers, &consumerLog{name: fmt.Sprintf("c%02d", i)})
	}
	errs := make([]error, k)
	var wg sync.WaitGroup
	for i, c := range clients {
		wg.Go(func() { errs[i] = consume(ctx, c.Worker, st.consumers[i]) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	st.takenBy, st.twice = b.takenBy, b.twice
	return st, nil
}

// consume takes jobs from any slot until the board is drained.
func consume(ctx context.Context, w *rpc.Worker, rec *consumerLog) error {
	cases := make([]am.SelectCase, 0, slots+1)
	for i := range slots {
		cases = append(cases, am.Take(w, slotName(i), am.A{"by": rec.name}))
	}
	cases = append(cases, am.OnActive(w, "Drained"))
	for {
		sel, err := am.Select(ctx, cases...)
		if err != nil {
			return fmt.Errorf("%s: %w", rec.name, err)
		}
		rec.conflicts += sel.Conflicts
		if sel.Index == slots {
			return nil
		}
		rec.jobs = append(rec.jobs, jobOf(sel.Index, sel.Clock[slotName(sel.Index)]))
	}
}

// check verifies that every job was taken by exactly one consumer, and that
// the consumers and the source agree on who took which.
func (st *jobStats) check() error {
	claims := map[int]string{}
	for _, c := range st.consumers {
		for _, job := range c.jobs {
			if other, dup := claims[job]; dup {
				return fmt.Errorf("job %d taken by %s and %s", job, other, c.name)
			}
			claims[job] = c.name
		}
	}
	if len(claims) != jobCount || st.twice != 0 || len(st.takenBy) != jobCount {
		return fmt.Errorf("%d jobs taken by the consumers, %d by the source's log (%d twice), of %d",
			len(claims), len(st.takenBy), st.twice, jobCount)
	}
	for job := range jobCount {
		if claims[job] == "" || claims[job] != st.takenBy[job] {
			return fmt.Errorf("job %d: taken by %q, the source says %q", job, claims[job], st.takenBy[job])
		}
	}
	return nil
}

// conflicts is the number of takes that lost their job to another consumer.
func (st *jobStats) conflicts() int {
	n := 0
	for _, c := range st.consumers {
		n += c.conflicts
	}
	return n
}

func (st *jobStats) print(out io.Writer, took time.Duration) {
	distinct := map[int]bool{}
	var per []string
	for _, c := range st.consumers {
		for _, job := range c.jobs {
			distinct[job] = true
		}
		per = append(per, fmt.Sprintf("%s=%d", c.name, len(c.jobs)))
	}
	sort.Strings(per)
	taken := 0
	for _, c := range st.consumers {
		taken += len(c.jobs)
	}
	fmt.Fprintf(out, "jobs: %d consumers took %d jobs in %s\n", len(st.consumers), taken,
		took.Round(time.Millisecond))
	fmt.Fprintf(out, "jobs: per consumer: %s\n", strings.Join(per, " "))
	fmt.Fprintf(out, "jobs: %d distinct, %d taken twice; the source logged %d takes\n",
		len(distinct), taken-len(distinct), len(st.takenBy))
	fmt.Fprintf(out, "jobs: %d conflicts (a take that lost its job to another consumer and waited again)\n",
		st.conflicts())
}
