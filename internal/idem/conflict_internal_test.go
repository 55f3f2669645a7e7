package idem

import (
	"fmt"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

func TestConflicted(t *testing.T) {
	canceled := func(codes ...string) error {
		r := make([]types.CancellationReason, len(codes))
		for i, c := range codes {
			r[i].Code = aws.String(c)
		}
		return fmt.Errorf("wrapped: %w", &types.TransactionCanceledException{CancellationReasons: r})
	}
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"a TransactionConflictException is a conflict", fmt.Errorf("w: %w", &types.TransactionConflictException{}), true},
		{"a transaction cancelled for a conflict is a conflict", canceled("None", "TransactionConflict"), true},
		{"a failed condition is an answer even beside a conflict", canceled("ConditionalCheckFailed", "TransactionConflict"), false},
		{"a transaction cancelled for a failed condition is not a conflict", canceled("None", "ConditionalCheckFailed"), false},
		{"a throttled transaction is not a conflict", canceled("ThrottlingError"), false},
		{"another error is not a conflict", &types.InternalServerError{}, false},
		{"no error is not a conflict", nil, false},
	} {
		if got := conflicted(tc.err); got != tc.want {
			t.Errorf("%s: conflicted = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestCommitTokenFitsDynamoDB(t *testing.T) {
	owner := newOwner()
	seen := map[string]bool{}
	for try := 0; try <= maxConflictRetries; try++ {
		tok := aws.ToString(commitToken(owner, try))
		if len(tok) < 1 || len(tok) > 36 || seen[tok] {
			t.Fatalf("try %d: token %q: want 1..36 characters, unique per try", try, tok)
		}
		seen[tok] = true
	}
}
