package idem

import (
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

var (
	// ErrInProgress reports that another attempt with the same scope and key
	// holds a live lease (or, in Optimistic mode, that a Lease-mode attempt
	// does). Nothing was run and nothing was written. The error is an
	// *InProgressError; errors.As gives the RetryAfter hint.
	ErrInProgress = errors.New("idem: a request with this idempotency key is in progress")

	// ErrMismatch reports that the scope and key were first used with another
	// request fingerprint. Nothing was run and nothing was written.
	ErrMismatch = errors.New("idem: idempotency key reused with a different request")

	// ErrTooLarge reports an outcome whose record would exceed DynamoDB's
	// 400 KB item limit even compressed. Nothing of the attempt was
	// stored (neither the record nor the unit of work's writes) and the lease
	// was released, so a retry runs afresh.
	ErrTooLarge = errors.New("idem: outcome too large to store")

	// ErrCommitLost reports that this attempt's lease lapsed and another
	// attempt took the record over before this one committed. Nothing of
	// this attempt was written: the record and the unit of work's writes
	// commit in one transaction, fenced by the owner token.
	ErrCommitLost = errors.New("idem: lease taken over before commit; nothing was written")

	// ErrStore reports a DynamoDB failure other than a condition outcome
	// (throttling, 5xx, timeout, validation...). The error wraps the cause.
	// When it happens while acquiring, fn did not run. When it happens while
	// committing, the outcome is unknown: the guard tries a fenced release,
	// which cannot undo a commit that landed, and a retry either replays the
	// committed outcome or runs afresh. One commit failure has a known
	// outcome: in Lease mode, a commit that transactions in flight on the
	// record refused on every try wrote nothing (the error says so and
	// wraps the refusal); fn ran, so it is not ErrInProgress.
	ErrStore = errors.New("idem: idempotency store failed")

	// ErrTooManyWrites reports a unit of work that does not fit in one
	// DynamoDB transaction together with the record: more than 99 writes, or
	// about 4 MB in all. Nothing was written and the lease was released.
	ErrTooManyWrites = errors.New("idem: unit of work exceeds one DynamoDB transaction")

	// ErrWriteConditionFailed reports that the transaction was cancelled
	// because of one of fn's own writes: its condition failed (for example
	// "order id does not exist yet"), or a transaction in flight on its item
	// refused it on every try (WriteConditionError.Conflict). Nothing was
	// committed and the lease was released, in either mode; the cause is
	// the state of that write's item, not another attempt with the same
	// key. The error is a *WriteConditionError.
	ErrWriteConditionFailed = errors.New("idem: a write's condition failed; nothing was committed")

	// ErrItemWrite reports, in Item mode, a unit of work that is neither
	// empty nor one Put of a new item on Config.Item.Table at the key fn
	// drew from ddb.KeyRand with Config.Item.NewKey: a programming error in
	// fn. Nothing was written; the error says what was wrong.
	ErrItemWrite = errors.New("idem: Item mode takes no write or one Put of a new item at its derived key")

	// ErrKeyUsedUp reports, in Item mode, a key used again after its
	// retention more than MaxGenerations times: every generation's item
	// holds an earlier use. Nothing ran to completion and nothing was
	// written. It matches ErrMismatch, whose remedy (a new key) it shares.
	ErrKeyUsedUp = fmt.Errorf("%w: the key was used too many times, each after the retention of the last", ErrMismatch)
)

// InProgressError is the error for a live lease held by another attempt. It
// matches ErrInProgress with errors.Is.
type InProgressError struct {
	// RetryAfter is how long until the holder's lease can be taken over, an
	// upper bound on how long the conflict lasts (the holder usually
	// finishes sooner). It is never negative.
	RetryAfter time.Duration
}

func (e *InProgressError) Error() string {
	return fmt.Sprintf("%s (retry after %s)", ErrInProgress.Error(), e.RetryAfter)
}

// Is reports whether target is ErrInProgress.
func (e *InProgressError) Is(target error) bool { return target == ErrInProgress }

// WriteConditionError is the error for a cancelled commit whose cause is one
// of fn's writes: its failed condition, or (Conflict) a transaction in
// flight on its item. It matches ErrWriteConditionFailed and unwraps to the
// *types.TransactionCanceledException.
type WriteConditionError struct {
	// Index is the position of the write among those fn made, in the order
	// it made them (the first one, when several were refused).
	Index int
	// Conflict is true when the write's condition did not fail but
	// DynamoDB refused it, on every try of the commit, because another
	// transaction was in flight on its item (TransactionConflict); retrying
	// the request later is the remedy. Item is then nil.
	Conflict bool
	// Item is the item as it was when the condition failed, when the write
	// asked for ReturnValuesOnConditionCheckFailure ALL_OLD; otherwise nil.
	Item map[string]types.AttributeValue
	// Err is the cancellation.
	Err error
}

func (e *WriteConditionError) Error() string {
	if e.Conflict {
		return fmt.Sprintf("idem: a write was refused by a transaction in flight on its item; nothing was committed (write %d): %v", e.Index, e.Err)
	}
	return fmt.Sprintf("%s (write %d): %v", ErrWriteConditionFailed.Error(), e.Index, e.Err)
}

// Is reports whether target is ErrWriteConditionFailed.
func (e *WriteConditionError) Is(target error) bool { return target == ErrWriteConditionFailed }

// Unwrap returns the cancellation.
func (e *WriteConditionError) Unwrap() error { return e.Err }

// storeErr wraps err, a DynamoDB failure during op, in ErrStore, once: an
// error that already is ErrStore is returned as it is.
func storeErr(op string, err error) error {
	if errors.Is(err, ErrStore) {
		return err
	}
	return fmt.Errorf("%w: %s: %w", ErrStore, op, err)
}
