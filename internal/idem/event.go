package idem

import "context"

// EventKind says what happened to one request; see the constants.
type EventKind int

// The kinds of Event. One Do call emits one of Hit, Miss, Conflict or
// Mismatch when it learns the record's state, and then, for a Miss, any of
// the others that apply; a Request.Retry whose read could not answer
// emits RetryReadMissed before them.
const (
	Hit           EventKind = iota + 1 // an earlier attempt's outcome was replayed (Event.Cached: from the in-process cache)
	Miss                               // no live record: this attempt runs fn
	Conflict                           // another attempt holds a live lease (ErrInProgress)
	Mismatch                           // same scope and key, other fingerprint (ErrMismatch)
	LeaseTakeover                      // this attempt acquired over a lapsed lease of another attempt
	CommitLost                         // this attempt's lease was taken over before it committed
	Released                           // this attempt's lease was released; nothing of it is stored
	TooLarge                           // the outcome or unit of work did not fit; nothing stored
	StoreError                         // DynamoDB failed (Event.Err says how)
	Committed                          // this attempt's outcome was stored as COMPLETED
	// RetryReadMissed: the read of a Request.Retry found no live COMPLETED
	// record to answer from, or failed (Event.Err); the mode's protocol
	// decides the request. Many of these mean callers hint first attempts.
	RetryReadMissed
)

var kindNames = [...]string{"", "hit", "miss", "conflict", "mismatch", "lease_takeover", "commit_lost", "released", "too_large", "store_error", "committed", "retry_read_missed"}

// String returns a lower-case name fit for a log attribute or metric label.
func (k EventKind) String() string {
	if k > 0 && int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "unknown"
}

// Event is what the guard reports to Config.Observer. It never carries the
// raw idempotency key, only the record id derived from it.
type Event struct {
	Kind   EventKind
	ID     string // RecordID(scope, key)
	Scope  string
	Mode   Mode
	Cached bool // for Hit: served from the in-process Cache without a round trip
	// ReadFirst, for Hit and Mismatch: answered by the read a Request.Retry
	// asks for, before fn ran or anything was written.
	ReadFirst bool
	Err       error // for StoreError, CommitLost, TooLarge: the error Do returns or the failure it saw; for RetryReadMissed: the read's failure, if it failed
}

func (g *Guard) emit(ctx context.Context, e Event) {
	if g.cfg.Observer != nil {
		e.Mode = g.cfg.Mode
		g.cfg.Observer(ctx, e)
	}
}
