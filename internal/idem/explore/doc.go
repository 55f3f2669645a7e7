// Package explore is a test-only harness that enumerates the interleavings
// and faults of a few attempts of one idempotency key through the real
// idem.Guard against DynamoDB Local, and checks the guard's invariants on the
// tables after every schedule. Its code is in test files built only with the
// explore tag:
//
//	make explore                       # a few minutes, at least 20,000 schedules
//	go test -tags explore,crashtest ./internal/idem/explore -explore.replay='SEED'
//
// (make builds it with crashtest too, for Item mode's step points; a
// Lease- or Optimistic-mode seed replays with either.)
//
// # Model
//
// Each attempt is its own host: its own Guard, over a wrapper of the real
// DynamoDB client, with its own clock (Config.Now: the scheduler's virtual
// time plus an offset of 0 or ClockSkew). An attempt runs alone from one step
// point to the next, so a schedule is a sequence of decisions, each "resume
// attempt i", optionally with a fault for the call it is about to make and a
// move of the virtual clock first. The step points are: the request arrives;
// before each DynamoDB call (which is also "after the previous one": the
// guard does nothing visible in between); inside fn, before its side effect
// (the point after fn is the one before the commit). The faults at a call:
// it lands but its response is lost (the SDK sends it again: a new step
// point); it is refused by TransactionConflict (on the record, or on fn's
// write); it fails before landing; the process crashes before sending it, or
// right after it landed (the attempt stops, its lease stays). Inside fn: a
// crash before the side effect, or fn failing after it. The clock moves past
// every lease, past every record's retention, or to just inside the skew of
// either. A consistent read takes a fixed slice of virtual time, so a
// Config.Wait loop ends. In configurations with the retry hint, every
// odd-numbered attempt and every settle retry sends Request.Retry, so its
// first call is a GetItem that a live COMPLETED record answers (the read can
// fail or crash like any call) and the same invariants hold for what it
// answers.
//
// # Invariants
//
// Checked after every schedule on the tables and on the writes that landed
// (the wrapper records each, with the record it replaced): no live record is
// replaced (an IN_PROGRESS one only after its lease ended, a COMPLETED one
// only after it expired); commits and releases are fenced; fn's writes are
// stored if and only if their COMPLETED record is; in Lease mode fn runs at
// most once unless an earlier run's lease truly lapsed or it gave the key up;
// every success returned is a stored outcome, a replay one not expired
// (less ClockSkew, by the replaying host's clock) when Do was called; every
// error is explained by a fault or another attempt; and after the dust
// settles a retry replays or creates exactly one outcome.
//
// After the attempts, the dust settles: a fresh attempt retries the key (and
// again after every lease lapsed, if a crashed attempt's lease blocked it),
// then the first attempt's host retries it (its Cache answers).
//
// # Item mode
//
// The record lives on the order fn writes, or on a record-only item, in the
// item table (without TTL) at Guard.ItemKey(scope, key, g); fn draws the
// order's key from ddb.KeyRand and writes it through the unit of work. The
// same scheduler and faults apply, and: a put that lands and then fails
// (landfail); a crash at StepHandled and StepCommitted (crashtest builds);
// a TTL step that deletes every record-only item expired by the true clock.
// Configurations: fn writing or not; requests mixed (a writer and a
// refusal, with their fingerprints) or all with fingerprints of their own;
// earlier uses of the key, each then expired ('o' an order, 'r' a refusal),
// up to every generation (walks and regression seeds). Checked after every
// schedule, on every generation's item and on the puts that landed: at most
// one item with a live record; a put replaces nothing, or a record-only
// item expired by more than ClockSkew by the writer's clock, never an
// order; orders never carry idem_ttl, record-only items always do; every
// generation below the highest occupied one holds an order, and a put at a
// later generation lands only once the orders below expired by the writer's
// clock less the skew; a live record binds its fingerprint; a success is
// the response on the attempt's own item (fresh) or on another's with the
// same fingerprint (replay); an attempt whose put landed and is still there
// answered its own success, or ErrStore when a call failed; ErrMismatch only
// when another request's item was there, ErrKeyUsedUp only when every
// generation holds an expired order, ErrInProgress only after refusals of
// the put, ErrItemWrite and ErrWriteConditionFailed never; and the settle
// retry answers exactly what the items say (replay, ErrMismatch, a fresh
// outcome at the first free generation, or ErrKeyUsedUp).
//
// # Search
//
// Depth-first enumeration of every schedule within a bound (preemptions,
// faults, clock moves) for each configuration (mode, business write or not,
// retention shorter than lease plus skew or not, Wait on or off, the retry
// hint in one configuration of each mode and in a third of the walks; Item mode
// has a bound of its own, -explore.itemfaults and so on), spread over
// workers, then a seeded random walk over deeper schedules, with three
// attempts in some, and one over Item-mode schedules (-explore.itemwalks). A violation prints its schedule as a seed that
// -explore.replay runs again, with a trace.
package explore
