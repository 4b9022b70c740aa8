package exchange

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"hash/maphash"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults of Options.
const (
	// DefaultTagLifespan is how long a rollback tag lives when
	// Options.TagLifespan is zero.
	DefaultTagLifespan = 3 * time.Hour
	// DefaultMaxTags is the most rollback tags kept when Options.MaxTags is
	// zero.
	DefaultMaxTags = 100_000
)

// Options configure a Controller. The zero value is valid and uses the
// defaults.
type Options struct {
	// TagLifespan is how long the correlation id of an unanswered request
	// stays tagged for rollback after its exchange ended, so that a late
	// response for it is recognised. Zero means DefaultTagLifespan.
	TagLifespan time.Duration
	// MaxTags bounds the number of live rollback tags; when a new tag would
	// exceed it, the oldest tag is dropped before its time (Stats.Evicted
	// counts them). Zero means DefaultMaxTags.
	MaxTags int
	// MaxPending bounds the number of requests pending at once across all
	// exchanges of the controller; past it, Request and Register fail at
	// once with ErrTooManyPending. Zero means no bound other than the
	// callers' own.
	MaxPending int
}

// shardCount spreads the pending requests over this many maps, so that
// responses for different exchanges rarely contend on one lock.
const shardCount = 16

// shard is one part of the index from correlation id to pending request.
type shard struct {
	mu   sync.Mutex
	m    map[string]slot
	peak int
	_    [40]byte // keeps two shards' locks off one cache line
}

// slot locates a request: its exchange and its index in the exchange's calls.
type slot struct {
	x *Exchange
	i int
}

// shrinkAbove is the peak size past which an emptied shard map is replaced,
// so a burst of requests does not pin its memory.
const shrinkAbove = 4096

// Controller correlates responses with the requests of its exchanges. It finds
// the exchange of a response by correlation id alone, so responses can be
// registered from any goroutine: a message-queue consumer, a webhook handler.
//
// A Controller starts no goroutine and needs no Close. All its methods are
// safe to call concurrently. Create one with NewController.
type Controller struct {
	prefix     string // random per controller, so ids differ across restarts
	maxPending int64  // 0: unbounded
	seq        atomic.Uint64
	seed       maphash.Seed
	shards     [shardCount]shard
	tags       tagStore

	open, pending                       atomic.Int64
	begun, answered, failed, unanswered atomic.Uint64
	late                                atomic.Uint64
}

// NewController returns a Controller configured by opts, or an error when an
// option is out of range.
func NewController(opts Options) (*Controller, error) {
	if opts.TagLifespan < 0 {
		return nil, fmt.Errorf("exchange: negative TagLifespan %v", opts.TagLifespan)
	}
	if opts.MaxTags < 0 {
		return nil, fmt.Errorf("exchange: negative MaxTags %d", opts.MaxTags)
	}
	if opts.MaxPending < 0 {
		return nil, fmt.Errorf("exchange: negative MaxPending %d", opts.MaxPending)
	}
	if opts.TagLifespan == 0 {
		opts.TagLifespan = DefaultTagLifespan
	}
	if opts.MaxTags == 0 {
		opts.MaxTags = DefaultMaxTags
	}
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never returns an error
	c := &Controller{
		prefix:     hex.EncodeToString(b[:]),
		maxPending: int64(opts.MaxPending),
		seed:       maphash.MakeSeed(),
		tags:       tagStore{lifespan: opts.TagLifespan, max: opts.MaxTags},
	}
	for i := range c.shards {
		c.shards[i].m = make(map[string]slot)
	}
	return c, nil
}

// NewID returns a correlation id unique to this controller: a random prefix
// chosen when the controller was created, then a sequence number. Ids from
// two controllers, or from two runs of a program, do not collide in practice.
func (c *Controller) NewID() string {
	var buf [40]byte
	b := append(buf[:0], c.prefix...)
	b = append(b, '-')
	b = strconv.AppendUint(b, c.seq.Add(1), 36)
	return string(b)
}

// Begin starts an exchange bound to ctx: when ctx ends, so does the exchange,
// whether or not anyone waits on it, and its unanswered requests are tagged
// for rollback. The exchange lives until then, until Wait returns, or until
// Cancel. Begin never blocks.
func (c *Controller) Begin(ctx context.Context) *Exchange {
	x := &Exchange{c: c, ctx: ctx, done: make(chan struct{})}
	x.calls = x.inline[:0]
	c.open.Add(1)
	c.begun.Add(1)
	if err := ctx.Err(); err != nil {
		x.end(err)
		return x
	}
	if ctx.Done() != nil {
		// The callback may run before AfterFunc returns; the lock makes it
		// see x.stop.
		x.mu.Lock()
		x.stop = context.AfterFunc(ctx, func() { x.end(ctx.Err()) })
		x.mu.Unlock()
	}
	return x
}

// Respond registers resp as the response to the request with correlation id
// id, in whichever exchange holds it. It returns nil when the response was
// recorded; an error wrapping ErrRolledBack for a late response to a request
// whose exchange ended without it (wrapping ErrDuplicateResponse too if an
// earlier late response for the id arrived); ErrDuplicateResponse if the
// request already has a response; ErrUnknownID otherwise. It never blocks on
// the waiting side.
func (c *Controller) Respond(id string, resp any) error {
	return c.settle(id, Answered, resp, nil)
}

// Fail registers err as the failure of the request with correlation id id.
// A failed request fails its exchange at once: its Wait returns an error
// wrapping ErrFailed and err, and the exchange's other pending requests become
// unanswered and are tagged for rollback. Fail returns the same errors as
// Respond. A nil err is recorded as ErrFailed.
func (c *Controller) Fail(id string, err error) error {
	if err == nil {
		err = ErrFailed
	}
	return c.settle(id, Failed, nil, err)
}

// Tag returns the live rollback tag of id, if there is one.
func (c *Controller) Tag(id string) (Tag, bool) {
	return c.tags.get(id)
}

// shard returns the shard that indexes id.
func (c *Controller) shard(id string) *shard {
	return &c.shards[maphash.String(c.seed, id)%shardCount]
}

// settle records the outcome of the request id.
func (c *Controller) settle(id string, o Outcome, resp any, ferr error) error {
	sh := c.shard(id)
	sh.mu.Lock()
	s, ok := sh.m[id]
	sh.mu.Unlock()
	if !ok {
		// An exchange tags its unanswered ids before it removes them from
		// the shards, so a rolled-back id is always found in one or the
		// other.
		return c.lateResponse(id)
	}
	x := s.x
	x.mu.Lock()
	call := &x.calls[s.i]
	if call.Outcome != Pending {
		out := call.Outcome
		x.mu.Unlock()
		if out == Unanswered {
			return c.lateResponse(id)
		}
		return fmt.Errorf("%w: %q", ErrDuplicateResponse, id)
	}
	call.Outcome, call.Response, call.Err = o, resp, ferr
	x.pending--
	c.pending.Add(-1)
	finish := x.waiting && x.pending == 0
	if o == Failed {
		c.failed.Add(1)
		if x.err == nil {
			x.err = fmt.Errorf("%w: %q: %w", ErrFailed, id, ferr)
		}
		finish = true
	} else {
		c.answered.Add(1)
	}
	x.mu.Unlock()
	if finish {
		x.end(nil)
	}
	return nil
}

// lateResponse classifies a response for an id that is no longer pending.
func (c *Controller) lateResponse(id string) error {
	tagged, first := c.tags.markLate(id)
	switch {
	case !tagged:
		return fmt.Errorf("%w: %q", ErrUnknownID, id)
	case first:
		c.late.Add(1)
		return fmt.Errorf("%w: %q", ErrRolledBack, id)
	default:
		c.late.Add(1)
		return fmt.Errorf("%w: %w: %q", ErrDuplicateResponse, ErrRolledBack, id)
	}
}
