package exchange

import "errors"

// Sentinel errors. Errors returned by this package wrap one of them (and, where
// there is one, the cause: a request's failure or the context's error), so
// callers test them with errors.Is.
var (
	// ErrEmptyID is returned when a request is registered with an empty
	// correlation id.
	ErrEmptyID = errors.New("exchange: empty correlation id")

	// ErrDuplicateID is returned by Register when the correlation id is
	// already pending in this controller, or is tagged for rollback.
	ErrDuplicateID = errors.New("exchange: correlation id already registered")

	// ErrTooManyPending is returned by Request and Register when the
	// controller already has Options.MaxPending requests pending.
	ErrTooManyPending = errors.New("exchange: too many pending requests")

	// ErrClosed is returned when a request is registered in an exchange that
	// has ended, whose context has ended, or whose Wait has begun.
	ErrClosed = errors.New("exchange: exchange closed")

	// ErrUnknownID is returned by Respond and Fail when the correlation id
	// is neither pending nor tagged for rollback: it was never registered,
	// its exchange completed and forgot it, or its rollback tag expired.
	ErrUnknownID = errors.New("exchange: unknown correlation id")

	// ErrDuplicateResponse is returned by Respond and Fail when the request
	// already has a response. For a rolled-back id that already received a
	// late response, the error wraps both ErrDuplicateResponse and
	// ErrRolledBack.
	ErrDuplicateResponse = errors.New("exchange: duplicate response")

	// ErrRolledBack is returned by Respond and Fail for a late response: one
	// whose request was left unanswered when its exchange ended, and is
	// tagged for rollback. The response is not recorded anywhere; the caller
	// acknowledges the message and compensates what it did.
	ErrRolledBack = errors.New("exchange: late response for a rolled-back id")

	// ErrFailed is wrapped by the error of an exchange in which a request
	// failed; the same error also wraps the failure given to Fail.
	ErrFailed = errors.New("exchange: request failed")

	// ErrUnanswered is wrapped by the error of an exchange that ended with
	// requests unanswered; the same error also wraps the reason the exchange
	// ended (a context's error, or ErrCanceled).
	ErrUnanswered = errors.New("exchange: requests unanswered")

	// ErrCanceled is the reason an exchange ended when Cancel ended it.
	ErrCanceled = errors.New("exchange: canceled")
)
