package exchange

// Outcome is what became of one request of an exchange.
type Outcome uint8

// The outcomes of a request. Every request starts Pending; a response makes
// it Answered or Failed; a request still Pending when its exchange ends becomes
// Unanswered and its correlation id is tagged for rollback.
const (
	Pending Outcome = iota
	Answered
	Failed
	Unanswered
)

// String returns the outcome's name in lower case.
func (o Outcome) String() string {
	switch o {
	case Pending:
		return "pending"
	case Answered:
		return "answered"
	case Failed:
		return "failed"
	case Unanswered:
		return "unanswered"
	}
	return "invalid"
}

// Call is one request of an exchange and what became of it.
type Call struct {
	// ID is the request's correlation id.
	ID string
	// Request is the value given when the request was registered.
	Request any
	// Outcome is Answered, Failed or Unanswered once the exchange ended.
	Outcome Outcome
	// Response is the value given to Respond, when Answered.
	Response any
	// Err is the error given to Fail, when Failed.
	Err error
}
