// Package idem makes a unit of work idempotent: Guard.Do runs a function at
// most once per (scope, idempotency key) within a retention period and
// replays its stored outcome, byte for byte, to every retry. It knows
// nothing about HTTP or orders; the record lives in one DynamoDB table (see
// TableDefinition), or, in Item mode, on the item fn writes.
//
// # Record
//
// One item per (scope, key), keyed by RecordID: the hex SHA-256 of the
// scope, a separator and the key, so neither the raw key nor another
// caller's record is reachable from a key alone. Its attributes: status
// (IN_PROGRESS or COMPLETED), fingerprint, owner (a random token per
// attempt), lease_until (epoch ms, IN_PROGRESS only), expires_at (epoch s,
// the table's TTL attribute), and for COMPLETED records data (the response)
// with encoding "snappy" or "gzip" when compression made it smaller
// (Snappy from 1 KB; gzip instead when that takes fewer write units).
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
//     wait (Config.Wait) that replays the first attempt if it completes, and
//     ends in ErrMismatch as soon as it reads the key held for another
//     request. A rejected duplicate never writes to the live record. The lease lasts
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
// # Item mode
//
// For fn whose only side effect is one new item (a create), or nothing: no
// lease and no transaction. fn runs first, then one conditional PutItem
// writes fn's item with the record as attributes of it, or learns from the
// ALL_OLD item of its failed condition the record already there. Atomic
// because it is one item; a miss and a hit cost one round trip each, a miss
// one write unit per KB of fn's item and its record (instead of a lease put
// and a transaction, which bills two units per item).
//
// The key. fn draws the key of its new item from ddb.KeyRand(ctx), with
// Config.Item.NewKey, before anything else reads it. For that context the
// guard makes KeyRand a deterministic stream seeded by the record id and a
// generation (0 first), so every attempt for (scope, key) draws the same
// key, and the guard, calling NewKey on the same stream, knows it too. The
// key is thus a function of scope, idempotency key and generation: whoever
// knows the first two can compute it, so it must not serve as a secret.
//
// What fn may write: nothing, or one Put of a new item on
// Config.Item.Table at that key, without a condition or conditioned on
// attribute_not_exists of the partition key, with no attribute in the
// guard's prefix "idem_". Anything else is ErrItemWrite and nothing is
// written: there is no fallback to a transaction with the record in the
// idempotency table, since every record of a key must live on one item for
// one conditional write to order them.
//
// The record on the item: idem_fp (the fingerprint; a lower-case hex one as
// its bytes), idem_data (the response; compressed as in the other modes, with
// idem_enc naming the encoding, when the item would otherwise exceed 1 KB,
// a write unit, and compression makes it smaller), idem_exp (the key's expiry, epoch
// s, Retention after the commit) and idem_owner (the attempt's token, 16
// bytes). An outcome with no write is a record-only item at the same key,
// which also carries AttrItemTTL (the table's TTL attribute, see
// ItemTableDefinition): TTL deletes record-only items once expired and never
// fn's items, which do not carry it. Because every record of a key lives at
// the key's item, a stored refusal binds the key: a later request with
// another body that does write meets the record-only item and is
// ErrMismatch. Readers of the table see the record's attributes on fn's
// items and must treat record-only items, which lack fn's attributes, as
// absent.
//
// The put is conditioned on "no item, or a record-only item whose record
// expired more than ClockSkew ago" (the guard's condition replaces fn's,
// which it implies) and asks for ALL_OLD on a failed condition. The item in
// the way then answers: this attempt's own token means an earlier try of
// the same put landed (an SDK retry), a success; a live record is replayed
// (same fingerprint) or ErrMismatch; an expired record on fn's item, from a
// use of the key before its retention ran out, sends the attempt to the
// next generation, where fn runs again with that generation's randomness
// and so a new key: fn's items are never written over. An expired
// record-only item is written over in place, so every generation below the
// highest one holding an item holds fn's item, which TTL never deletes:
// deleting a record-only item can never hide a later generation's record.
// After MaxGenerations uses the key is ErrKeyUsedUp. Each earlier use costs
// every later request of the key one more put and one more run of fn.
//
// fn may run for a hit (as in Optimistic mode): any side effect beyond its
// one write must be idempotent. Keep=false writes nothing and consults no
// record. No record is ever IN_PROGRESS, so Config.Lease and Config.Wait do
// not apply; ErrInProgress comes only from transactions in flight on the
// item that keep refusing the put. The item and its record must fit
// DynamoDB's 400 KB (ErrTooLarge). Steps: StepHandled, StepCommitted.
//
// Item-mode records live in fn's table, the other modes' in the idempotency
// table, and neither mode sees the other's: switching a deployment between
// Item and another mode forgets every key used before the switch, and a
// retry of a request made before it runs again. Switch only when no
// retry of an earlier request can still arrive (or accept that risk).
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
// within Config.Wait, as many times as a refused commit at most, and otherwise
// ErrInProgress with RetryAfter 0.
//
// A commit still refused after the retries is judged by which of its
// actions the cancellation reasons name. One of fn's writes, and not the
// record: a write conflict in both modes (ErrWriteConditionFailed, a
// *WriteConditionError with Conflict set and the write's Index; the lease
// released), since the contention is on that item, not on this key. The
// record: in Optimistic mode another attempt is committing this key,
// ErrInProgress; in Lease mode, where this attempt holds the record,
// ErrStore naming the refusal, and the lease released. Either way nothing
// of this attempt was written. Lease mode does not answer ErrInProgress
// because fn has run, with effects outside DynamoDB that may have happened,
// and ErrInProgress promises that nothing ran; nor does it keep the lease,
// which would make the retry wait up to a lease before it runs fn again all
// the same (nothing was committed to replay).
//
// # Invariants
//
// The explorer (internal/idem/explore, make explore) checks these on the
// tables after every schedule of attempts on hosts whose clocks differ by at
// most ClockSkew, under lost responses retried by the SDK, refusals by a
// transaction in flight, failed calls and crashes:
//
//  1. No live record is replaced: a new record replaces an IN_PROGRESS one
//     only after its lease ended, and a COMPLETED one only after it
//     expired. Within Retention a key has at most one committed outcome.
//  2. Fenced: a Lease-mode commit lands only while its attempt holds the
//     record IN_PROGRESS; a release deletes only the record its attempt
//     holds IN_PROGRESS.
//  3. Atomic: fn's writes are stored if and only if the COMPLETED record of
//     the same attempt is.
//  4. At most once (Lease mode): fn runs only while its attempt holds the
//     lease; never while another attempt whose fn ran holds a lease not yet
//     over by its own clock without having committed or released; never
//     within the retention of a committed outcome. A run after an earlier
//     one gave the key up (released it, its caller told of the failure) or
//     after that one's lease truly lapsed is allowed.
//  5. Every success is stored: a fresh success is the attempt's committed
//     outcome, a replay is byte for byte an outcome some attempt committed,
//     and a caller that reuses the slice it got changes no later answer.
//  6. Errors are explained: ErrStore only after a DynamoDB failure;
//     ErrCommitLost only when another attempt took the record over;
//     ErrInProgress only when another attempt's record was there or a
//     transaction in flight refused this attempt's write of the record;
//     ErrWriteConditionFailed only for fn's writes; never ErrMismatch for
//     the same request.
//  7. The dust settles: once every attempt returned or crashed, a retry
//     replays or creates exactly one outcome and later retries (also a
//     host's Cache) answer the same until it expires; a retry meets
//     ErrInProgress only while the lease of an attempt that crashed or
//     failed to release it is live, and succeeds once it lapsed.
//
// # Crash points
//
// The reliability suite builds with the crashtest tag, which adds
// SetStepHook; the hook runs at each Step (lease held, fn returned, commit
// landed). Production builds have no way to set it.
//
// # Limits
//
// A record holds at most DynamoDB's 400 KB (ErrTooLarge; in Item mode with
// fn's item); fn's writes plus the record must fit one transaction: 100
// actions and about 4 MB (ErrTooManyWrites). DynamoDB failures are ErrStore.
package idem
