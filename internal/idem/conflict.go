package idem

import (
	"context"
	"errors"
	"math/rand/v2"
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
// TransactionConflictException, or a cancelled transaction with a
// TransactionConflict reason and no failed condition (a failed condition is
// an answer, not a collision).
func conflicted(err error) bool {
	var tce *types.TransactionConflictException
	if errors.As(err, &tce) {
		return true
	}
	var canceled *types.TransactionCanceledException
	if !errors.As(err, &canceled) {
		return false
	}
	conflict := false
	for _, r := range canceled.CancellationReasons {
		switch aws.ToString(r.Code) {
		case "ConditionalCheckFailed":
			return false
		case "TransactionConflict":
			conflict = true
		}
	}
	return conflict
}

// retryConflicts calls write(try), try = 0, 1, ..., until it returns
// anything but a conflict, it was refused maxConflictRetries+1 times, or ctx
// ends; it returns write's last error.
func retryConflicts(ctx context.Context, write func(try int) error) error {
	for try := 0; ; try++ {
		err := write(try)
		if try == maxConflictRetries || !conflicted(err) || !conflictPause(ctx, try) {
			return err
		}
	}
}

// conflictPause waits before retry number try (0-based) of a write refused by
// a conflict: 10 ms doubled each time, with jitter, so that colliding
// attempts spread out. It returns false if ctx ends first.
func conflictPause(ctx context.Context, try int) bool {
	d := 10 * time.Millisecond << try
	d += rand.N(d)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
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
