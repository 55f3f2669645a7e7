package idem

import (
	"fmt"
	"slices"
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
		name      string
		err       error
		want      bool
		wantItems []int
	}{
		{"a TransactionConflictException is a conflict of its one item", fmt.Errorf("w: %w", &types.TransactionConflictException{}), true, nil},
		{"a transaction cancelled for a conflict on its record is a conflict there", canceled("None", "TransactionConflict"), true, []int{1}},
		{"a transaction cancelled for a conflict on a business write is a conflict there", canceled("TransactionConflict", "None", "None"), true, []int{0}},
		{"a transaction cancelled for conflicts on several items names each", canceled("None", "TransactionConflict", "TransactionConflict"), true, []int{1, 2}},
		{"a failed condition is an answer even beside a conflict", canceled("ConditionalCheckFailed", "TransactionConflict"), false, nil},
		{"a transaction cancelled for a failed condition is not a conflict", canceled("None", "ConditionalCheckFailed"), false, nil},
		{"a throttled transaction is not a conflict", canceled("ThrottlingError"), false, nil},
		{"another error is not a conflict", &types.InternalServerError{}, false, nil},
		{"no error is not a conflict", nil, false, nil},
	} {
		items, got := conflicted(tc.err)
		if got != tc.want || !slices.Equal(items, tc.wantItems) {
			t.Errorf("%s: conflicted = %v, %v; want %v, %v", tc.name, items, got, tc.wantItems, tc.want)
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
