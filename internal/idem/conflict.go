package idem

import (
	"context"
	"errors"
	"math/rand/v2"
	"slices"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// DynamoDB refuses a write that collides with a transaction in flight on one
// of its items: a single-item write fails with TransactionConflictException,
// a transaction is cancelled with reason TransactionConflict. Either way
// nothing was written, DynamoDB asks the caller to retry, and the SDK's
// retryer does not. Under a storm of retries this is the normal case: every
// duplicate's conditional put lands on the record that the first attempt is
// committing. (DynamoDB Local never produces it; the tests fake it.)

// maxConflictRetries bounds the retries of a commit refused by a conflict.
const maxConflictRetries = 4

// conflicted reports whether err is such a refusal: a
// TransactionConflictException (items nil: the write's one item), or a
// cancelled transaction with a TransactionConflict reason and no failed
// condition (a failed condition is an answer, not a collision); items are
// then the indexes of the refused actions, in order.
func conflicted(err error) (items []int, ok bool) {
	if err == nil {
		return nil, false // before the errors.As targets, which escape
	}
	var tce *types.TransactionConflictException
	if errors.As(err, &tce) {
		return nil, true
	}
	var canceled *types.TransactionCanceledException
	if !errors.As(err, &canceled) {
		return nil, false
	}
	for i, r := range canceled.CancellationReasons {
		switch aws.ToString(r.Code) {
		case "ConditionalCheckFailed":
			return nil, false
		case "TransactionConflict":
			items = append(items, i)
		}
	}
	return items, len(items) > 0
}

// writeConflict returns the *WriteConditionError for a commit of n writes of
// fn's plus the record (action n) whose err says that a transaction in
// flight refused one of fn's writes and not the record: nothing was
// written, and the cause is that write's item, not this key. It returns
// nil for any other err.
func writeConflict(err error, n int) error {
	items, ok := conflicted(err)
	if !ok || len(items) == 0 || items[0] >= n || slices.Contains(items, n) {
		return nil
	}
	return &WriteConditionError{Index: items[0], Conflict: true, Err: err}
}

// retryConflicts calls write(try), try = 0, 1, ..., until it returns
// anything but a conflict, it was refused maxConflictRetries+1 times, or ctx
// ends; it returns write's last error.
func retryConflicts(ctx context.Context, write func(try int) error) error {
	for try := 0; ; try++ {
		err := write(try)
		if _, refused := conflicted(err); try == maxConflictRetries || !refused || !sleep(ctx, conflictDelay(try)) {
			return err
		}
	}
}

// conflictDelay is the pause before retry number try (0-based) of a write
// refused by a conflict: 10 ms doubled each time, with jitter, so that
// colliding attempts spread out.
func conflictDelay(try int) time.Duration {
	d := 10 * time.Millisecond << try
	return d + rand.N(d)
}

// commitToken is the ClientRequestToken of try number try of one commit:
// each try after a refusal is a new request (the refusal wrote nothing), while
// the SDK's own retries of one try share its token, so a try that landed
// with its answer lost succeeds when retried. 32 hex characters of owner plus
// the try stay within the token's 36.
func commitToken(owner string, try int) *string {
	if try == 0 {
		return aws.String(owner)
	}
	return aws.String(owner + "-" + strconv.Itoa(try))
}
