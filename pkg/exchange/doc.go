// Package exchange correlates requests sent to asynchronous backends (a
// message queue, webhooks, anything that answers later and elsewhere) with
// their responses, so that a synchronous caller, such as an HTTP handler, can
// wait for all of them under a deadline: sync over async.
//
// # Exchanges
//
// A Controller is shared by the whole program. Each operation begins an
// Exchange bound to its context, registers one request per backend, sends the
// requests with their correlation ids, and waits:
//
//	x := ctrl.Begin(ctx) // ends, at the latest, when ctx ends
//	defer x.Cancel()
//	id, _ := x.Request(order) // register first, then send
//	queue <- Message{CorrelID: id, Body: order}
//	calls, err := x.Wait(ctx)
//
// Responses come back on other goroutines, a queue consumer or a webhook
// handler, which know only the correlation id; the controller finds the
// exchange:
//
//	err := ctrl.Respond(msg.CorrelID, msg.Body) // or ctrl.Fail(id, cause)
//
// Wait returns when every request was answered (nil error), as soon as one
// failed (an error wrapping ErrFailed and the failure), or when a context
// ended (an error wrapping ErrUnanswered and the context's error). Each Call
// it returns says what became of its request: Answered, Failed or Unanswered.
// A gateway answers 200, 502 or 504 from that, and compensates the answered
// requests of a failed exchange.
//
// # Rollback tags
//
// When an exchange ends with requests unanswered, their correlation ids are
// tagged for rollback, for Options.TagLifespan. A response arriving later is
// recognised: Respond returns an error wrapping ErrRolledBack, so the consumer
// can acknowledge the message and compensate what the backend did, instead of
// leaving it to be redelivered forever. A second late response for the same
// id also wraps ErrDuplicateResponse, so it is not compensated twice. Tags
// expire without a timer or a goroutine each: all have the same lifespan, and
// expired ones are dropped in order by the next call that touches them. At
// most Options.MaxTags are kept; past that the oldest are dropped early and
// counted in Stats.Evicted.
//
// # Resources and concurrency
//
// Nothing outlives an exchange but its tags: when it ends, the controller
// forgets its ids, and the only goroutine it may have caused, the one
// context.AfterFunc starts to end it when its context ends, has already
// returned or is returning. A Controller starts no goroutine and needs no
// Close. Options.MaxPending bounds the requests pending at once; past it a
// registration fails at once with ErrTooManyPending. Every method of Controller and Exchange is safe for concurrent use;
// responses for different exchanges contend only on one of several sharded
// locks. Stats returns the counts (open exchanges, pending requests,
// outcomes, late responses, live tags) as a snapshot.
package exchange
