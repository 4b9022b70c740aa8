package exchange

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// The kinds of exchange in the load test, by index modulo 10.
const (
	loadAnswered = iota // every request answered
	loadFailing         // one request fails
	loadLate            // one request silent, answered after the exchange ended
	loadSilent          // one request never answered
)

func loadKind(i int) int {
	switch i % 10 {
	case 6, 7:
		return loadFailing
	case 8:
		return loadLate
	case 9:
		return loadSilent
	}
	return loadAnswered
}

// loadJob is one message on the simulated queue to the responders.
type loadJob struct {
	x, r int
	id   string
	fail bool
	late bool
}

// loadRecord is what the responders got back for one request.
type loadRecord struct {
	sent    bool
	err     error // from Respond or Fail
	lateErr error // from the response sent after the exchange ended
}

// TestLoad runs 10,000 exchanges of 3 to 5 requests each, answered by
// responder goroutines through a queue, some failing and some never answered,
// and checks every outcome against what the responders were told, then that
// the counts, the index and the tags all return to zero. The fake clock of
// synctest makes the 1 s deadline of the silent exchanges cost nothing, and
// it only fires once every queued response has been handled.
func TestLoad(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const (
			exchanges  = 10_000
			workers    = 256 // exchanges in flight; the race detector caps goroutines
			responders = 8
			deadline   = time.Second
			lifespan   = time.Hour
		)
		c := newCtrl(t, Options{TagLifespan: lifespan})
		start := time.Now()
		baseline := runtime.NumGoroutine()
		queue := make(chan loadJob, 1024)
		recs := make([][]loadRecord, exchanges)
		type waited struct {
			calls []Call
			err   error
		}
		results := make([]waited, exchanges)
		failErr := func(x int) error { return fmt.Errorf("backend %d failed", x) }

		var resp sync.WaitGroup
		for range responders {
			resp.Go(func() {
				for j := range queue {
					var err error
					if j.fail {
						err = c.Fail(j.id, failErr(j.x))
					} else {
						err = c.Respond(j.id, j.x*8+j.r)
					}
					if j.late {
						recs[j.x][j.r].lateErr = err
					} else {
						recs[j.x][j.r].err = err
					}
				}
			})
		}

		next := make(chan int)
		var work sync.WaitGroup
		for range workers {
			work.Go(func() {
				for i := range next {
					kind, n := loadKind(i), 3+i%3
					odd := i % n // the failing or silent request
					recs[i] = make([]loadRecord, n)
					ctx, cancel := context.WithTimeout(context.Background(), deadline)
					x := c.Begin(ctx)
					jobs := make([]loadJob, n)
					for r := range n {
						id, err := x.Request(r)
						if err != nil {
							t.Errorf("exchange %d: Request: %v", i, err)
						}
						jobs[r] = loadJob{x: i, r: r, id: id, fail: kind == loadFailing && r == odd}
					}
					for r, j := range jobs {
						if (kind == loadLate || kind == loadSilent) && r == odd {
							continue
						}
						recs[i][r].sent = true
						queue <- j
					}
					calls, err := x.Wait(ctx)
					results[i] = waited{calls, err}
					if kind == loadLate {
						j := jobs[odd]
						j.late = true
						queue <- j
					}
					cancel()
					if s := c.Stats(); s.Open < 0 || s.Pending < 0 {
						t.Errorf("negative counts: %+v", s)
					}
				}
			})
		}
		for i := range exchanges {
			next <- i
		}
		close(next)
		work.Wait()
		close(queue)
		resp.Wait()

		var answered, failed, unanswered, late uint64
		for i := range exchanges {
			kind, n, odd := loadKind(i), 3+i%3, i%(3+i%3)
			calls, err := results[i].calls, results[i].err
			if len(calls) != n {
				t.Fatalf("exchange %d: %d calls, want %d", i, len(calls), n)
			}
			switch kind {
			case loadAnswered:
				if err != nil {
					t.Fatalf("exchange %d: Wait: %v", i, err)
				}
			case loadFailing:
				if !errors.Is(err, ErrFailed) || !errors.Is(err, calls[odd].Err) || calls[odd].Err.Error() != failErr(i).Error() {
					t.Fatalf("exchange %d: Wait: %v", i, err)
				}
			case loadLate, loadSilent:
				if !errors.Is(err, ErrUnanswered) || !errors.Is(err, context.DeadlineExceeded) {
					t.Fatalf("exchange %d: Wait: %v", i, err)
				}
			}
			for r, call := range calls {
				rec := recs[i][r]
				want := Answered
				switch {
				case !rec.sent:
					want = Unanswered
				case errors.Is(rec.err, ErrRolledBack) && !errors.Is(rec.err, ErrDuplicateResponse):
					want = Unanswered // lost the race with the failure
					late++
				case rec.err != nil:
					t.Fatalf("exchange %d request %d: responder got %v", i, r, rec.err)
				case kind == loadFailing && r == odd:
					want = Failed
				}
				if kind != loadFailing && rec.sent && want != Answered {
					t.Fatalf("exchange %d request %d: %s in an exchange without failure", i, r, want)
				}
				if call.Outcome != want || call.ID == "" || call.Request != r {
					t.Fatalf("exchange %d request %d: %+v, want %s (responder got %v)", i, r, call, want, rec.err)
				}
				if want == Answered && call.Response != i*8+r {
					t.Fatalf("exchange %d request %d: response %v, want %d", i, r, call.Response, i*8+r)
				}
				switch want {
				case Answered:
					answered++
				case Failed:
					failed++
				case Unanswered:
					unanswered++
				}
			}
			if kind == loadLate {
				if e := recs[i][odd].lateErr; !errors.Is(e, ErrRolledBack) || errors.Is(e, ErrDuplicateResponse) {
					t.Fatalf("exchange %d: late response got %v", i, e)
				}
				late++
			}
		}
		if failed != exchanges/5 || unanswered < exchanges/5 {
			t.Fatalf("failed %d, unanswered %d: the mix is not what the test meant", failed, unanswered)
		}
		s := c.Stats()
		want := Stats{
			Begun: exchanges, Answered: answered, Failed: failed, Unanswered: unanswered,
			Late: late, Tags: int(unanswered),
		}
		if s != want {
			t.Fatalf("Stats = %+v, want %+v", s, want)
		}
		checkIdle(t, c)
		synctest.Wait() // the AfterFuncs of ended contexts have returned
		if n := runtime.NumGoroutine(); n > baseline {
			t.Fatalf("%d goroutines after the load, %d before", n, baseline)
		}
		t.Logf("%d exchanges: %d answered, %d failed, %d unanswered, %d late, in %v of fake time",
			exchanges, answered, failed, unanswered, late, time.Since(start))

		// Every tag expires after its lifespan, and the store lets go of its
		// memory. The fake clock jumps; nothing is waited for.
		time.Sleep(lifespan)
		if s := c.Stats(); s.Tags != 0 {
			t.Fatalf("%d tags outlived their lifespan", s.Tags)
		}
		if entries, queued := c.tags.footprint(); entries != 0 || queued != 0 {
			t.Fatalf("tag store keeps %d entries, %d queued", entries, queued)
		}
	})
}
