package idem_test

import (
	"context"
	"errors"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/parcelhq/orderservice/internal/idem"
)

func num(item map[string]types.AttributeValue, attr string) int64 {
	n, _ := item[attr].(*types.AttributeValueMemberN)
	if n == nil {
		return 0
	}
	i, _ := strconv.ParseInt(n.Value, 10, 64)
	return i
}

// TestRetentionShorterThanLease: a retention may be as short as a second,
// shorter than the lease; an in-progress record still lives until its lease
// ends plus the clock skew, so no duplicate takes over a live lease because
// the record's retention ran out.
func TestRetentionShorterThanLease(t *testing.T) {
	t.Parallel()
	const (
		retention = time.Second
		lease     = 30 * time.Second
	)
	// wantInProgress checks that a duplicate through g is refused as in
	// progress; in Lease mode without running fn (Optimistic mode runs fn
	// first, by design, and commits nothing).
	wantInProgress := func(t *testing.T, g *idem.Guard, mode idem.Mode, r idem.Request) {
		t.Helper()
		var runs atomic.Int32
		_, err := g.Do(context.Background(), r, respond(&runs, []byte("second")))
		if !errors.Is(err, idem.ErrInProgress) || mode == idem.Lease && runs.Load() != 0 {
			t.Fatalf("%s duplicate: err = %v after %d runs of fn, want ErrInProgress", mode, err, runs.Load())
		}
	}

	t.Run("an in-progress record expires no earlier than its lease ends plus the skew", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, true)
		r := req(uniqueKey(t), "fp")
		holding, done := holdLease(t, e.guard(idem.Config{Retention: retention, Lease: lease}), r)
		t.Cleanup(func() { done() })
		<-holding
		rec := e.record(r)
		leaseEnd := time.UnixMilli(num(rec, "lease_until"))
		if exp := time.Unix(num(rec, "expires_at"), 0); exp.Before(leaseEnd.Add(idem.DefaultClockSkew)) {
			t.Fatalf("expires_at %s is before lease_until %s plus the skew", exp, leaseEnd)
		}
	})

	t.Run("a duplicate past the retention but inside the lease is in progress, not a takeover", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, false) // no TTL: only the guard's conditions decide
		r := req(uniqueKey(t), "fp")
		holding, done := holdLease(t, e.guard(idem.Config{Retention: retention, Lease: lease}), r)
		t.Cleanup(func() { done() })
		<-holding
		before := e.record(r)
		// 10 s later: past retention plus skew, 20 s before the lease ends.
		wantInProgress(t, e.guard(idem.Config{Retention: retention, Lease: lease, Now: clock(10 * time.Second)}), idem.Lease, r)
		if str(e.record(r), "owner") != str(before, "owner") {
			t.Fatal("the duplicate replaced the holder's record")
		}
		if got := done(); string(got.Response) != "first" {
			t.Fatalf("holder answered %q, want its own response", got.Response)
		}
	})

	t.Run("an in-progress record whose expiry passed while its lease is live is not taken over", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, false)
		r := req(uniqueKey(t), "fp")
		// As a record from before the fix, or from a host with a short
		// retention, looks: expired, its lease live for another 30 s.
		now := time.Now()
		_, err := e.client.PutItem(context.Background(), &dynamodb.PutItemInput{
			TableName: aws.String(e.table),
			Item: map[string]types.AttributeValue{
				idem.AttrID:        &types.AttributeValueMemberS{Value: idem.RecordID(r.Scope, r.Key)},
				"status":           &types.AttributeValueMemberS{Value: "IN_PROGRESS"},
				"fingerprint":      &types.AttributeValueMemberS{Value: r.Fingerprint},
				"owner":            &types.AttributeValueMemberS{Value: "another-attempt"},
				"lease_until":      &types.AttributeValueMemberN{Value: strconv.FormatInt(now.Add(lease).UnixMilli(), 10)},
				idem.AttrExpiresAt: &types.AttributeValueMemberN{Value: strconv.FormatInt(now.Add(-time.Minute).Unix(), 10)},
			},
		})
		if err != nil {
			t.Fatal(err)
		}
		for _, mode := range []idem.Mode{idem.Lease, idem.Optimistic} {
			wantInProgress(t, e.guard(idem.Config{Mode: mode, Retention: retention}), mode, r)
		}
		if got := str(e.record(r), "owner"); got != "another-attempt" {
			t.Fatalf("record owner = %q, want the holder's", got)
		}
	})

	t.Run("a completed record with a retention of a second is forgotten a second after its commit", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, false)
		r := req(uniqueKey(t), "fp")
		var runs atomic.Int32
		mustDo(t, e.guard(idem.Config{Retention: retention, Lease: lease}), r, respond(&runs, []byte("first")))
		if res := mustDo(t, e.guard(idem.Config{Retention: retention, Lease: lease}), r, respond(&runs, nil)); !res.Replayed {
			t.Fatal("a retry within the retention was not replayed")
		}
		later := e.guard(idem.Config{Retention: retention, Lease: lease, Now: clock(retention + idem.DefaultClockSkew + 2*time.Second)})
		if res := mustDo(t, later, r, respond(&runs, []byte("again"))); res.Replayed || runs.Load() != 2 {
			t.Fatalf("after the retention: replayed=%v runs=%d, want a fresh run", res.Replayed, runs.Load())
		}
	})
}
