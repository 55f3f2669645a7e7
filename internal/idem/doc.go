// Package idem makes a unit of work idempotent: Guard.Do runs a function at
// most once per (scope, idempotency key) within a retention period and
// replays its stored outcome, byte for byte, to every retry. It knows
// nothing about HTTP or orders; the record lives in one DynamoDB table (see
// TableDefinition).
//
// # Record
//
// One item per (scope, key), keyed by RecordID: the hex SHA-256 of the
// scope, a separator and the key, so neither the raw key nor another
// caller's record is reachable from a key alone. Its attributes: status
// (IN_PROGRESS or COMPLETED), fingerprint, owner (a random token per
// attempt), lease_until (epoch ms, IN_PROGRESS only), expires_at (epoch s,
// the table's TTL attribute), and for COMPLETED records data (the response)
// with encoding "gzip" when compression made it smaller.
//
// An IN_PROGRESS record is live until lease_until, whatever its expires_at;
// any other record until expires_at. Expiry is enforced in every condition:
// TTL deletion is only clean-up (DynamoDB may delete up to 48 hours late).
// Because clocks differ between hosts, an attempt treats a record or lease as
// lapsed only when it is past by more than Config.ClockSkew by its own clock.
//
// A COMPLETED record expires Config.Retention after its commit. An
// IN_PROGRESS record's expires_at is the later of Retention after its
// acquisition and lease_until plus ClockSkew, so TTL cannot delete it, and
// free the key, while its holder still counts on the lease; and since the
// takeover condition judges an IN_PROGRESS record by its lease alone, not
// even a record whose expires_at passed early (written by an older version)
// lets a second attempt in while the lease runs. Retention may therefore be
// any positive duration, shorter than the lease included.
//
// # Lease mode
//
//  1. Acquire: one PutItem of an IN_PROGRESS record conditioned on "no live
//     record" (none, IN_PROGRESS with a lapsed lease, or COMPLETED and
//     expired), asking for ALL_OLD both on success (a replaced IN_PROGRESS
//     record is a LeaseTakeover) and on a failed condition, so a duplicate
//     learns the live record in the same round trip: COMPLETED with the same
//     fingerprint is replayed; another fingerprint is ErrMismatch (also while
//     in progress); IN_PROGRESS is ErrInProgress, after an optional bounded
//     wait (Config.Wait) that replays the first attempt if it completes. A
//     rejected duplicate never writes to the live record. The lease lasts
//     Config.Lease, cut to the caller's context deadline.
//  2. Run fn with a context carrying a fresh ddb.UnitOfWork and ending
//     Config.CommitBudget before the lease ends (when the lease is shorter
//     than twice the budget, halfway through it), so that a handler that
//     returns when its context ends still leaves the commit time to land
//     within the lease and before the Lambda's deadline.
//  3. Commit, fenced: every write after acquisition is conditioned on
//     "owner = this attempt AND status = IN_PROGRESS". fn's writes and the
//     update to COMPLETED go in one TransactWriteItems (or a single
//     UpdateItem when fn wrote nothing), so they commit together or not at
//     all. A failed fence means the lease was taken over: ErrCommitLost, and
//     nothing of this attempt is written. A failed condition of one of fn's
//     writes, or a write that transactions in flight on its item kept
//     refusing (see Retried writes), is ErrWriteConditionFailed.
//  4. Release, fenced: when fn fails or panics, Keep is false, the outcome
//     does not fit, a business condition fails or the commit's fate is
//     unknown, a conditional DeleteItem removes the record only if this
//     attempt still holds it as IN_PROGRESS; it can neither delete a
//     takeover's record nor undo a commit that landed.
//
// A miss costs two round trips (acquire, commit); a hit one, or none when
// Config.Cache holds the record. Every Result.Response is the caller's own
// copy: the cache neither shares its bytes nor keeps fn's slice.
//
// # Optimistic mode
//
// No lease: run fn (its context, too, ends Config.CommitBudget before the
// caller's deadline), then one TransactWriteItems of fn's writes and a Put of
// the COMPLETED record conditioned on "no live record", asking for ALL_OLD
// on a failed condition (a single conditional PutItem when fn wrote
// nothing). If another attempt's record is live, the transaction is
// cancelled, nothing of this attempt is written, and the record from the
// cancellation reason answers the request as in Lease mode. A miss and a hit
// cost one round trip each, but fn may run for a hit: use Optimistic only
// when every side effect of fn is a write through ddb.Write.
//
// Keep=false writes nothing, and the key's record still decides, as it
// does in Lease mode before fn runs: one consistent GetItem, on this path
// only, reads it, and a live record answers the request (a replay when it is
// COMPLETED with the same fingerprint, ErrMismatch for another fingerprint,
// ErrInProgress, after Config.Wait, while another attempt holds it); only
// when none blocks the key is fn's response returned as it is. A failed read
// is ErrStore. So a different request with a used key gets ErrMismatch, not
// fn's unstored answer, in both modes alike.
//
// # Retried writes
//
// The SDK retries a write whose response was lost. Every write carries the
// attempt's owner token, so a retry that finds the write already landed is
// recognised as this attempt's own (a lease it holds, a record it
// completed), never misread as a conflict, a lost commit or a replay;
// transactions also send the token as ClientRequestToken.
//
// A write that collides with a transaction in flight on one of its items is
// refused by DynamoDB (TransactionConflictException, or a transaction
// cancelled with reason TransactionConflict) with nothing written, and the
// SDK does not retry it. Under a storm of retries that is the normal case,
// so the guard handles it: a refused commit is retried a few times with
// jittered backoff (each try a new ClientRequestToken); an acquire refused
// because the holder is committing reads the record and judges it like the
// ALL_OLD item of a failed condition: its own owner token there means an
// earlier try of the put landed and the lease is this attempt's; a record
// that blocks no longer (gone, or lapsed) means the key is free, tried again
// within Config.Wait and otherwise ErrInProgress with RetryAfter 0.
//
// A commit still refused after the retries is judged by which of its
// actions the cancellation reasons name. One of fn's writes, and not the
// record: a write conflict in both modes (ErrWriteConditionFailed, a
// *WriteConditionError with Conflict set and the write's Index; the lease
// released), since the contention is on that item, not on this key. The
// record: in Optimistic mode another attempt is committing this key,
// ErrInProgress; in Lease mode, where this attempt holds the record, a
// failure like any other, ErrStore (the lease released). Either way
// nothing of this attempt was written.
//
// # Crash points
//
// The reliability suite builds with the crashtest tag, which adds
// SetStepHook; the hook runs at each Step (lease held, fn returned, commit
// landed). Production builds have no way to set it.
//
// # Limits
//
// A record holds at most DynamoDB's 400 KB (ErrTooLarge); fn's writes plus
// the record must fit one transaction: 100 actions and about 4 MB
// (ErrTooManyWrites). DynamoDB failures are ErrStore.
package idem
