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

// putInProgress writes an IN_PROGRESS record of r held by owner, with a
// lease that runs for another minute, as another attempt's acquire would.
func (e *env) putInProgress(r idem.Request, owner string) {
	e.t.Helper()
	now := time.Now()
	_, err := e.client.PutItem(context.Background(), &dynamodb.PutItemInput{
		TableName: aws.String(e.table),
		Item: map[string]types.AttributeValue{
			idem.AttrID:        &types.AttributeValueMemberS{Value: idem.RecordID(r.Scope, r.Key)},
			"status":           &types.AttributeValueMemberS{Value: "IN_PROGRESS"},
			"fingerprint":      &types.AttributeValueMemberS{Value: r.Fingerprint},
			"owner":            &types.AttributeValueMemberS{Value: owner},
			"lease_until":      &types.AttributeValueMemberN{Value: strconv.FormatInt(now.Add(time.Minute).UnixMilli(), 10)},
			idem.AttrExpiresAt: &types.AttributeValueMemberN{Value: strconv.FormatInt(now.Add(time.Hour).Unix(), 10)},
		},
	})
	if err != nil {
		e.t.Fatal(err)
	}
}

// frozen returns a Now func that always answers the same instant.
func frozen() func() time.Time {
	t := time.Now()
	return func() time.Time { return t }
}

// TestWaitIsBounded: Config.Wait bounds every loop of an attempt that waits
// for the key, also when Config.Now stands still (a virtual clock), so that
// the attempt answers ErrInProgress instead of waiting until its context
// ends, or forever without a deadline.
func TestWaitIsBounded(t *testing.T) {
	t.Parallel()
	e := newEnv(t, true)

	t.Run("with a clock that stands still, an acquire that transactions in flight keep refusing gives up after a few tries", func(t *testing.T) {
		t.Parallel()
		api := newConflicting(e.client, "PutItem", 1000)
		g := idem.New(api, idem.Config{Table: e.table, Wait: time.Second, Now: frozen()})
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		t.Cleanup(cancel)
		var runs atomic.Int32
		_, err := g.Do(ctx, req(uniqueKey(t), "fp"), respond(&runs, []byte("x")))
		var ip *idem.InProgressError
		if !errors.As(err, &ip) || ip.RetryAfter != 0 {
			t.Fatalf("err = %v, want ErrInProgress with RetryAfter 0 (context: %v)", err, ctx.Err())
		}
		// 1 try plus at most maxConflictRetries (4) more, and at least one retry within Wait.
		if n := api.refused.Load(); n < 2 || n > 5 {
			t.Fatalf("the acquire was refused %d times, want 2 to 5", n)
		}
		if runs.Load() != 0 {
			t.Fatal("fn ran although every acquire was refused")
		}
	})

	for _, mode := range []idem.Mode{idem.Lease, idem.Optimistic} {
		t.Run(mode.String()+": with a clock that stands still, a duplicate waiting for a holder that never finishes gives up after Wait", func(t *testing.T) {
			t.Parallel()
			r := req(uniqueKey(t), "fp")
			e.putInProgress(r, "holder")
			g := e.guard(idem.Config{Mode: mode, Wait: time.Second, Now: frozen()})
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			t.Cleanup(cancel)
			var runs atomic.Int32
			_, err := g.Do(ctx, r, respond(&runs, []byte("x")))
			if !errors.Is(err, idem.ErrInProgress) {
				t.Fatalf("err = %v, want ErrInProgress (context: %v)", err, ctx.Err())
			}
			if got := str(e.record(r), "owner"); got != "holder" {
				t.Fatalf("record owner = %q, want the holder's", got)
			}
		})
	}
}

// TestWaitMeetsAnotherRequest: a duplicate waiting for the key's holder
// answers ErrMismatch (422) as soon as it reads that the key is now held for
// another request, instead of polling that record until Wait ends and
// answering ErrInProgress (409): no wait can make it a replay.
func TestWaitMeetsAnotherRequest(t *testing.T) {
	t.Parallel()
	e := newEnv(t, true)
	for _, mode := range []idem.Mode{idem.Lease, idem.Optimistic} {
		t.Run(mode.String()+": a waiting duplicate answers ErrMismatch once another request holds the key", func(t *testing.T) {
			t.Parallel()
			r := req(uniqueKey(t), "fp")
			e.putInProgress(r, "first")
			waiting := make(chan struct{}, 1)
			g := e.guard(idem.Config{Mode: mode, Wait: time.Minute, Observer: func(_ context.Context, ev idem.Event) {
				if ev.Kind == idem.Conflict {
					select {
					case waiting <- struct{}{}:
					default:
					}
				}
			}})
			ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
			t.Cleanup(cancel)
			type result struct {
				res idem.Result
				err error
			}
			out := make(chan result, 1)
			var runs atomic.Int32
			go func() {
				res, err := g.Do(ctx, r, respond(&runs, []byte("x")))
				out <- result{res, err}
			}()
			select {
			case <-waiting:
			case got := <-out:
				t.Fatalf("Do returned %q, %v before it waited", got.res.Response, got.err)
			}
			// The first holder gave the key up and an attempt with another
			// request took it, in one step as the duplicate sees the table.
			e.putInProgress(req(r.Key, "another request"), "third")
			got := <-out
			if !errors.Is(got.err, idem.ErrMismatch) {
				t.Fatalf("err = %v, want ErrMismatch (context: %v)", got.err, ctx.Err())
			}
			if got := str(e.record(r), "owner"); got != "third" {
				t.Fatalf("record owner = %q, want the third attempt's", got)
			}
		})
	}
}
