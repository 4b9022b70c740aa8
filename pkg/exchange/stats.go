package exchange

// Stats is a snapshot of a Controller's progress. Each field is read
// atomically, but while exchanges run the fields may come from slightly
// different instants; once every exchange has ended they agree.
type Stats struct {
	// Open is the number of exchanges begun and not yet ended.
	Open int
	// Pending is the number of requests, in open exchanges, still without a
	// response.
	Pending int
	// Begun is the number of exchanges begun so far.
	Begun uint64
	// Answered is the number of requests answered so far.
	Answered uint64
	// Failed is the number of requests failed so far.
	Failed uint64
	// Unanswered is the number of requests left unanswered so far.
	Unanswered uint64
	// Late is the number of late responses: responses that arrived for an
	// id tagged for rollback.
	Late uint64
	// Tags is the number of live rollback tags.
	Tags int
	// Evicted is the number of rollback tags dropped before they expired,
	// to stay within Options.MaxTags.
	Evicted uint64
}

// Stats returns a snapshot of the controller's progress. It is safe to call
// concurrently with everything else.
func (c *Controller) Stats() Stats {
	tags, evicted := c.tags.stats()
	return Stats{
		Open:       int(c.open.Load()),
		Pending:    int(c.pending.Load()),
		Begun:      c.begun.Load(),
		Answered:   c.answered.Load(),
		Failed:     c.failed.Load(),
		Unanswered: c.unanswered.Load(),
		Late:       c.late.Load(),
		Tags:       tags,
		Evicted:    evicted,
	}
}
