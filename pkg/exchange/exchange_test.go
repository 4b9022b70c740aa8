package exchange

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

var errBackend = errors.New("backend down")

func outcomes(calls []Call) string {
	s := ""
	for i, c := range calls {
		if i > 0 {
			s += " "
		}
		s += c.Outcome.String()
	}
	return s
}

func mustRequest(t *testing.T, x *Exchange, req any) string {
	t.Helper()
	id, err := x.Request(req)
	if err != nil {
		t.Fatalf("Request: %v", err)
	}
	return id
}

func TestAllAnsweredFromOtherGoroutines(t *testing.T) {
	c := newCtrl(t, Options{})
	x := c.Begin(context.Background())
	ids := make([]string, 5)
	for i := range ids {
		ids[i] = mustRequest(t, x, i)
	}
	var wg sync.WaitGroup
	for i, id := range ids {
		wg.Go(func() {
			if err := c.Respond(id, i*10); err != nil {
				t.Errorf("Respond(%s): %v", id, err)
			}
		})
	}
	calls, err := x.Wait(context.Background())
	wg.Wait()
	if err != nil {
		t.Fatalf("Wait: %v", err)
	}
	if len(calls) != len(ids) {
		t.Fatalf("%d calls, want %d", len(calls), len(ids))
	}
	for i, call := range calls {
		if call.ID != ids[i] || call.Request != i || call.Outcome != Answered || call.Response != i*10 || call.Err != nil {
			t.Errorf("call %d = %+v", i, call)
		}
	}
	select {
	case <-x.Done():
	default:
		t.Error("Done not closed after Wait returned")
	}
	s := c.Stats()
	want := Stats{Begun: 1, Answered: 5}
	if s != want {
		t.Errorf("Stats = %+v, want %+v", s, want)
	}
	checkIdle(t, c)
}

func TestResponsesBeforeWait(t *testing.T) {
	c := newCtrl(t, Options{})
	x := c.Begin(context.Background())
	a, b := mustRequest(t, x, "a"), mustRequest(t, x, "b")
	if err := c.Respond(b, "B"); err != nil {
		t.Fatal(err)
	}
	if err := c.Respond(a, "A"); err != nil {
		t.Fatal(err)
	}
	// All answered but Wait not called: the exchange stays open, so more
	// requests can still be registered.
	select {
	case <-x.Done():
		t.Fatal("exchange ended before Wait")
	default:
	}
	if c.Stats().Open != 1 {
		t.Fatal("exchange not open")
	}
	cc := mustRequest(t, x, "c")
	if err := c.Respond(cc, "C"); err != nil {
		t.Fatal(err)
	}
	calls, err := x.Wait(context.Background())
	if err != nil || outcomes(calls) != "answered answered answered" {
		t.Fatalf("Wait = %s, %v", outcomes(calls), err)
	}
	checkIdle(t, c)
}

func TestWaitWithoutRequests(t *testing.T) {
	c := newCtrl(t, Options{})
	calls, err := c.Begin(context.Background()).Wait(context.Background())
	if err != nil || len(calls) != 0 {
		t.Fatalf("Wait = %v, %v", calls, err)
	}
	checkIdle(t, c)
}

func TestFailFailsExchange(t *testing.T) {
	c := newCtrl(t, Options{})
	x := c.Begin(context.Background())
	a, b, d := mustRequest(t, x, "a"), mustRequest(t, x, "b"), mustRequest(t, x, "d")
	if err := c.Respond(a, "A"); err != nil {
		t.Fatal(err)
	}
	if err := c.Fail(b, errBackend); err != nil {
		t.Fatal(err)
	}
	// The failure ended the exchange at once, before anyone waited.
	select {
	case <-x.Done():
	default:
		t.Fatal("a failure did not end the exchange")
	}
	calls, err := x.Wait(context.Background())
	if !errors.Is(err, ErrFailed) || !errors.Is(err, errBackend) || errors.Is(err, ErrUnanswered) {
		t.Fatalf("Wait error = %v, want ErrFailed and the cause", err)
	}
	if got := outcomes(calls); got != "answered failed unanswered" {
		t.Fatalf("outcomes = %s", got)
	}
	if calls[1].Err != errBackend {
		t.Errorf("failed call's Err = %v", calls[1].Err)
	}
	if _, ok := c.Tag(a); ok {
		t.Error("answered id tagged")
	}
	if _, ok := c.Tag(b); ok {
		t.Error("failed id tagged")
	}
	tag, ok := c.Tag(d)
	if !ok || tag.Request != "d" || tag.Late {
		t.Fatalf("Tag(d) = %+v, %v", tag, ok)
	}
	if err := x.Register("more", nil); !errors.Is(err, ErrClosed) {
		t.Errorf("Register after failure: %v, want ErrClosed", err)
	}
	s := c.Stats()
	want := Stats{Begun: 1, Answered: 1, Failed: 1, Unanswered: 1, Tags: 1}
	if s != want {
		t.Errorf("Stats = %+v, want %+v", s, want)
	}
	checkIdle(t, c)
}

func TestFailNilError(t *testing.T) {
	c := newCtrl(t, Options{})
	x := c.Begin(context.Background())
	id := mustRequest(t, x, nil)
	if err := c.Fail(id, nil); err != nil {
		t.Fatal(err)
	}
	calls, err := x.Wait(context.Background())
	if !errors.Is(err, ErrFailed) || calls[0].Err != ErrFailed {
		t.Fatalf("Wait = %+v, %v", calls, err)
	}
}

func TestWaitDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCtrl(t, Options{})
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		x := c.Begin(context.Background())
		a, b := mustRequest(t, x, "a"), mustRequest(t, x, "b")
		if err := c.Respond(a, "A"); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		calls, err := x.Wait(ctx)
		if d := time.Since(start); d != time.Second {
			t.Errorf("Wait returned after %v, want the 1s deadline", d)
		}
		if !errors.Is(err, ErrUnanswered) || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Wait error = %v", err)
		}
		if got := outcomes(calls); got != "answered unanswered" {
			t.Fatalf("outcomes = %s", got)
		}
		if _, ok := c.Tag(b); !ok {
			t.Error("unanswered id not tagged")
		}
		checkIdle(t, c)
	})
}

func TestExchangeEndsWithItsContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCtrl(t, Options{})
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		start := time.Now()
		x := c.Begin(ctx)
		id := mustRequest(t, x, "a")
		// Nobody waits: the context alone ends the exchange.
		<-x.Done()
		if d := time.Since(start); d != time.Second {
			t.Errorf("ended after %v, want 1s", d)
		}
		checkIdle(t, c)
		if _, ok := c.Tag(id); !ok {
			t.Error("unanswered id not tagged")
		}
		calls, err := x.Wait(context.Background())
		if !errors.Is(err, context.DeadlineExceeded) || outcomes(calls) != "unanswered" {
			t.Fatalf("Wait = %s, %v", outcomes(calls), err)
		}
		if err := c.Respond(id, "late"); !errors.Is(err, ErrRolledBack) {
			t.Fatalf("late Respond: %v", err)
		}
	})
}

func TestExchangeContextOutlivedIsReleased(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCtrl(t, Options{})
		ctx, cancel := context.WithCancel(context.Background())
		x := c.Begin(ctx)
		id := mustRequest(t, x, nil)
		if err := c.Respond(id, nil); err != nil {
			t.Fatal(err)
		}
		if _, err := x.Wait(ctx); err != nil {
			t.Fatal(err)
		}
		// The exchange ended first: its AfterFunc was stopped, so cancelling
		// the context later changes nothing and starts nothing.
		cancel()
		synctest.Wait()
		if _, err := x.Wait(ctx); err != nil {
			t.Fatalf("second Wait: %v", err)
		}
		if s := c.Stats(); s.Unanswered != 0 || s.Tags != 0 {
			t.Errorf("Stats = %+v", s)
		}
	})
}

func TestBeginWithEndedContext(t *testing.T) {
	c := newCtrl(t, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	x := c.Begin(ctx)
	select {
	case <-x.Done():
	default:
		t.Fatal("exchange with an ended context is open")
	}
	if _, err := x.Request(nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("Request: %v, want ErrClosed", err)
	}
	checkIdle(t, c)
}

func TestRegisterAfterContextEndedIsClosed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCtrl(t, Options{})
		ctx, cancel := context.WithCancel(context.Background())
		x := c.Begin(ctx)
		cancel()
		// Whether or not the AfterFunc has run yet, registering fails.
		if _, err := x.Request(nil); !errors.Is(err, ErrClosed) {
			t.Fatalf("Request: %v", err)
		}
		<-x.Done()
		checkIdle(t, c)
	})
}

func TestCancel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCtrl(t, Options{})
		x := c.Begin(context.Background())
		a, b := mustRequest(t, x, "a"), mustRequest(t, x, "b")
		if err := c.Respond(a, nil); err != nil {
			t.Fatal(err)
		}
		type result struct {
			calls []Call
			err   error
		}
		res := make(chan result, 1)
		go func() {
			calls, err := x.Wait(context.Background())
			res <- result{calls, err}
		}()
		synctest.Wait() // Wait is blocked
		x.Cancel()
		x.Cancel() // idempotent
		r := <-res
		if !errors.Is(r.err, ErrUnanswered) || !errors.Is(r.err, ErrCanceled) {
			t.Fatalf("Wait error = %v", r.err)
		}
		if got := outcomes(r.calls); got != "answered unanswered" {
			t.Fatalf("outcomes = %s", got)
		}
		if _, ok := c.Tag(b); !ok {
			t.Error("canceled request not tagged")
		}
		checkIdle(t, c)
	})
}

func TestCancelAfterCompletionKeepsResult(t *testing.T) {
	c := newCtrl(t, Options{})
	x := c.Begin(context.Background())
	defer x.Cancel()
	id := mustRequest(t, x, nil)
	if err := c.Respond(id, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := x.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	x.Cancel()
	if calls, err := x.Wait(context.Background()); err != nil || calls[0].Outcome != Answered {
		t.Fatalf("after Cancel: %+v, %v", calls, err)
	}
}

func TestRegisterDuringWaitIsClosed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCtrl(t, Options{})
		x := c.Begin(context.Background())
		id := mustRequest(t, x, nil)
		done := make(chan error, 1)
		go func() {
			_, err := x.Wait(context.Background())
			done <- err
		}()
		synctest.Wait()
		if _, err := x.Request(nil); !errors.Is(err, ErrClosed) {
			t.Errorf("Request during Wait: %v, want ErrClosed", err)
		}
		if err := c.Respond(id, nil); err != nil {
			t.Fatal(err)
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		checkIdle(t, c)
	})
}

func TestConcurrentWaiters(t *testing.T) {
	c := newCtrl(t, Options{})
	x := c.Begin(context.Background())
	id := mustRequest(t, x, nil)
	var wg sync.WaitGroup
	errs := make([]error, 4)
	lens := make([]int, 4)
	for i := range errs {
		wg.Go(func() {
			calls, err := x.Wait(context.Background())
			errs[i], lens[i] = err, len(calls)
		})
	}
	if err := c.Respond(id, nil); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	for i := range errs {
		if errs[i] != nil || lens[i] != 1 {
			t.Errorf("waiter %d: %d calls, %v", i, lens[i], errs[i])
		}
	}
}

func TestUnknownID(t *testing.T) {
	c := newCtrl(t, Options{})
	if err := c.Respond("nope", nil); !errors.Is(err, ErrUnknownID) {
		t.Errorf("Respond: %v", err)
	}
	if err := c.Fail("nope", errBackend); !errors.Is(err, ErrUnknownID) {
		t.Errorf("Fail: %v", err)
	}
	if err := c.Respond("", nil); !errors.Is(err, ErrUnknownID) {
		t.Errorf("Respond(\"\"): %v", err)
	}
	if s := c.Stats(); s.Late != 0 {
		t.Errorf("unknown ids counted as late: %+v", s)
	}
}

func TestDuplicateResponse(t *testing.T) {
	c := newCtrl(t, Options{})
	x := c.Begin(context.Background())
	a, b := mustRequest(t, x, nil), mustRequest(t, x, nil)
	if err := c.Respond(a, 1); err != nil {
		t.Fatal(err)
	}
	if err := c.Respond(a, 2); !errors.Is(err, ErrDuplicateResponse) {
		t.Fatalf("second Respond: %v", err)
	}
	if err := c.Fail(a, errBackend); !errors.Is(err, ErrDuplicateResponse) {
		t.Fatalf("Fail after Respond: %v", err)
	}
	if err := c.Respond(b, 3); err != nil {
		t.Fatal(err)
	}
	calls, err := x.Wait(context.Background())
	if err != nil || calls[0].Response != 1 {
		t.Fatalf("first response must stand: %+v, %v", calls, err)
	}
	// Once the exchange completed, its ids are forgotten.
	if err := c.Respond(a, 4); !errors.Is(err, ErrUnknownID) {
		t.Fatalf("Respond after completion: %v", err)
	}
	if s := c.Stats(); s.Answered != 2 {
		t.Errorf("Answered = %d, want 2", s.Answered)
	}
}

func TestLateResponseRecognisedOnce(t *testing.T) {
	c := newCtrl(t, Options{})
	x := c.Begin(context.Background())
	id := mustRequest(t, x, "order 7")
	x.Cancel()
	err := c.Respond(id, "late")
	if !errors.Is(err, ErrRolledBack) || errors.Is(err, ErrDuplicateResponse) {
		t.Fatalf("first late response: %v", err)
	}
	tag, ok := c.Tag(id)
	if !ok || !tag.Late || tag.Request != "order 7" || tag.ID != id {
		t.Fatalf("Tag = %+v, %v", tag, ok)
	}
	// A redelivery: still recognised, and marked a duplicate so it is not
	// compensated twice.
	err = c.Fail(id, errBackend)
	if !errors.Is(err, ErrRolledBack) || !errors.Is(err, ErrDuplicateResponse) {
		t.Fatalf("second late response: %v", err)
	}
	if s := c.Stats(); s.Late != 2 || s.Tags != 1 || s.Unanswered != 1 {
		t.Errorf("Stats = %+v", s)
	}
	if calls, _ := x.Wait(context.Background()); calls[0].Response != nil {
		t.Error("a late response was recorded in the ended exchange")
	}
}

func TestRegisterIDs(t *testing.T) {
	c := newCtrl(t, Options{})
	x := c.Begin(context.Background())
	y := c.Begin(context.Background())
	if err := x.Register("", nil); !errors.Is(err, ErrEmptyID) {
		t.Errorf("empty id: %v", err)
	}
	if err := x.Register("k1", "x"); err != nil {
		t.Fatal(err)
	}
	if err := x.Register("k1", "x"); !errors.Is(err, ErrDuplicateID) {
		t.Errorf("same id, same exchange: %v", err)
	}
	if err := y.Register("k1", "y"); !errors.Is(err, ErrDuplicateID) {
		t.Errorf("same id, other exchange: %v", err)
	}
	x.Cancel() // k1 is now tagged
	if err := y.Register("k1", "y"); !errors.Is(err, ErrDuplicateID) {
		t.Errorf("tagged id: %v", err)
	}
	if err := y.Register("k2", "y"); err != nil {
		t.Fatal(err)
	}
	if err := c.Respond("k2", "ok"); err != nil {
		t.Fatal(err)
	}
	if calls, err := y.Wait(context.Background()); err != nil || len(calls) != 1 {
		t.Fatalf("Wait = %+v, %v", calls, err)
	}
	// An answered id is free again once its exchange ended.
	z := c.Begin(context.Background())
	defer z.Cancel()
	if err := z.Register("k2", nil); err != nil {
		t.Errorf("reusing a completed id: %v", err)
	}
}

func TestTagLifespan(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCtrl(t, Options{TagLifespan: time.Minute})
		x := c.Begin(context.Background())
		id := mustRequest(t, x, nil)
		if err := x.Register("mine", nil); err != nil {
			t.Fatal(err)
		}
		x.Cancel()
		tag, ok := c.Tag(id)
		if !ok || !tag.Expires.Equal(time.Now().Add(time.Minute)) {
			t.Fatalf("Tag = %+v, %v", tag, ok)
		}
		// Advancing the fake clock is the behaviour under test here.
		time.Sleep(time.Minute - time.Nanosecond)
		if _, ok := c.Tag(id); !ok {
			t.Fatal("tag expired early")
		}
		if err := c.Respond(id, nil); !errors.Is(err, ErrRolledBack) {
			t.Fatalf("Respond before expiry: %v", err)
		}
		time.Sleep(time.Nanosecond)
		if _, ok := c.Tag(id); ok {
			t.Fatal("tag outlived its lifespan")
		}
		if err := c.Respond(id, nil); !errors.Is(err, ErrUnknownID) {
			t.Fatalf("Respond after expiry: %v", err)
		}
		if s := c.Stats(); s.Tags != 0 {
			t.Errorf("Tags = %d", s.Tags)
		}
		if entries, queued := c.tags.footprint(); entries != 0 || queued != 0 {
			t.Errorf("tag store keeps %d entries, %d queued", entries, queued)
		}
		// A caller-chosen id is free again once its tag expired.
		y := c.Begin(context.Background())
		defer y.Cancel()
		if err := y.Register("mine", nil); err != nil {
			t.Errorf("reusing an expired tag's id: %v", err)
		}
	})
}

func TestTagsExpireInOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCtrl(t, Options{TagLifespan: 10 * time.Second})
		var ids []string
		for range 5 {
			x := c.Begin(context.Background())
			ids = append(ids, mustRequest(t, x, nil))
			x.Cancel()
			time.Sleep(time.Second)
		}
		// Tags made at 0s..4s; now is 5s. At 12.5s the first three are gone.
		time.Sleep(7500 * time.Millisecond)
		for i, id := range ids {
			_, ok := c.Tag(id)
			if want := i >= 3; ok != want {
				t.Errorf("tag %d live = %v, want %v", i, ok, want)
			}
		}
		if s := c.Stats(); s.Tags != 2 {
			t.Errorf("Tags = %d, want 2", s.Tags)
		}
	})
}

func TestMaxTagsEvictsOldest(t *testing.T) {
	c := newCtrl(t, Options{MaxTags: 3})
	x := c.Begin(context.Background())
	var ids []string
	for i := range 5 {
		ids = append(ids, mustRequest(t, x, i))
	}
	x.Cancel()
	s := c.Stats()
	if s.Tags != 3 || s.Evicted != 2 || s.Unanswered != 5 {
		t.Fatalf("Stats = %+v", s)
	}
	for i, id := range ids {
		_, ok := c.Tag(id)
		if want := i >= 2; ok != want {
			t.Errorf("tag %d live = %v, want %v", i, ok, want)
		}
	}
	if err := c.Respond(ids[0], nil); !errors.Is(err, ErrUnknownID) {
		t.Errorf("evicted id: %v", err)
	}
}

func TestNewIDUnique(t *testing.T) {
	c, d := newCtrl(t, Options{}), newCtrl(t, Options{})
	const goroutines, each = 8, 5000
	ids := make([][]string, goroutines)
	var wg sync.WaitGroup
	for g := range ids {
		wg.Go(func() {
			for range each {
				ids[g] = append(ids[g], c.NewID())
			}
		})
	}
	wg.Wait()
	seen := make(map[string]bool, goroutines*each)
	for _, s := range ids {
		for _, id := range s {
			if seen[id] {
				t.Fatalf("duplicate id %q", id)
			}
			seen[id] = true
		}
	}
	if id := d.NewID(); seen[id] {
		t.Fatalf("two controllers made the same id %q", id)
	}
}

func TestOptions(t *testing.T) {
	for _, o := range []Options{{TagLifespan: -1}, {MaxTags: -1}, {MaxPending: -1}} {
		if c, err := NewController(o); err == nil || c != nil {
			t.Errorf("NewController(%+v) = %v, %v; want an error", o, c, err)
		}
	}
	c := newCtrl(t, Options{})
	if c.tags.lifespan != DefaultTagLifespan || c.tags.max != DefaultMaxTags {
		t.Errorf("defaults not applied: %v, %d", c.tags.lifespan, c.tags.max)
	}
}

func TestOutcomeString(t *testing.T) {
	for o, want := range map[Outcome]string{Pending: "pending", Answered: "answered", Failed: "failed", Unanswered: "unanswered", 9: "invalid"} {
		if o.String() != want {
			t.Errorf("%d.String() = %q", o, o.String())
		}
	}
}

// A response racing with the end of its exchange is either recorded or
// recognised as late, never unknown, and agrees with the outcome.
func TestResponseRacingWithEnd(t *testing.T) {
	c := newCtrl(t, Options{})
	for i := range 2000 {
		x := c.Begin(context.Background())
		id := mustRequest(t, x, i)
		errc := make(chan error, 1)
		go func() { errc <- c.Respond(id, i) }()
		x.Cancel()
		err := <-errc
		calls, _ := x.Wait(context.Background())
		switch o := calls[0].Outcome; {
		case err == nil && o == Answered:
		case errors.Is(err, ErrRolledBack) && o == Unanswered:
		default:
			t.Fatalf("round %d: Respond = %v with outcome %s", i, err, o)
		}
	}
	checkIdle(t, c)
}

func TestShardMapsShrinkAfterBurst(t *testing.T) {
	c := newCtrl(t, Options{})
	x := c.Begin(context.Background())
	for range shrinkAbove * shardCount * 2 {
		mustRequest(t, x, nil)
	}
	x.Cancel()
	for i := range c.shards {
		if c.shards[i].peak != 0 {
			t.Fatalf("shard %d keeps its peak %d after emptying", i, c.shards[i].peak)
		}
	}
	checkIdle(t, c)
}

func TestMaxPending(t *testing.T) {
	c := newCtrl(t, Options{MaxPending: 3})
	x, y := c.Begin(context.Background()), c.Begin(context.Background())
	a := mustRequest(t, x, nil)
	mustRequest(t, x, nil)
	mustRequest(t, y, nil)
	if _, err := y.Request(nil); !errors.Is(err, ErrTooManyPending) {
		t.Fatalf("fourth request: %v, want ErrTooManyPending", err)
	}
	if err := y.Register("mine", nil); !errors.Is(err, ErrTooManyPending) {
		t.Fatalf("fourth Register: %v, want ErrTooManyPending", err)
	}
	if s := c.Stats(); s.Pending != 3 {
		t.Fatalf("Pending = %d after refusals, want 3", s.Pending)
	}
	// A response frees a place.
	if err := c.Respond(a, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := y.Request(nil); err != nil {
		t.Fatalf("after a response: %v", err)
	}
	x.Cancel()
	y.Cancel()
	checkIdle(t, c)
}

func TestMaxPendingUnderConcurrency(t *testing.T) {
	const limit = 50
	c := newCtrl(t, Options{MaxPending: limit})
	var wg sync.WaitGroup
	var mu sync.Mutex
	accepted := 0
	xs := make([]*Exchange, 8)
	for g := range xs {
		xs[g] = c.Begin(context.Background())
		wg.Go(func() {
			for range 20 {
				if _, err := xs[g].Request(nil); err == nil {
					mu.Lock()
					accepted++
					mu.Unlock()
				} else if !errors.Is(err, ErrTooManyPending) {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	if accepted != limit {
		t.Errorf("%d requests accepted, want exactly %d", accepted, limit)
	}
	for _, x := range xs {
		x.Cancel()
	}
	checkIdle(t, c)
}
