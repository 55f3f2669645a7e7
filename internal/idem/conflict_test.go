package idem_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"

	"github.com/parcelhq/orderservice/internal/idem"
)

// conflicting wraps the real client and refuses the next n calls of op the
// way real DynamoDB refuses a write that collides with a transaction in
// flight on one of its items (DynamoDB Local never does): a transaction is
// cancelled with reason TransactionConflict on its action at (by default
// -1, the last: the record), a single-item write fails with
// TransactionConflictException. A refused call does not reach DynamoDB, as
// a refusal writes nothing.
//
// With landed set, a refused call reaches DynamoDB first: as when the SDK's
// first try landed with its response lost, and its retry was refused by a
// transaction begun in between.
type conflicting struct {
	idem.API
	op      string
	at      int // the refused action of a transaction; negative counts from the end
	landed  bool
	pending atomic.Int32
	refused atomic.Int32
}

func newConflicting(api idem.API, op string, n int32) *conflicting {
	c := &conflicting{API: api, op: op, at: -1}
	c.pending.Store(n)
	return c
}

func (c *conflicting) refuse(op string, actions int, forward func()) error {
	if op != c.op || c.pending.Add(-1) < 0 {
		return nil
	}
	if c.landed {
		forward()
	}
	c.refused.Add(1)
	if op != "TransactWriteItems" {
		return &smithy.OperationError{ServiceID: "DynamoDB", OperationName: op,
			Err: &types.TransactionConflictException{Message: aws.String("Transaction is ongoing for the item")}}
	}
	reasons := make([]types.CancellationReason, actions)
	for i := range reasons {
		reasons[i].Code = aws.String("None")
	}
	at := c.at
	if at < 0 {
		at += actions
	}
	reasons[at].Code = aws.String("TransactionConflict")
	return &smithy.OperationError{ServiceID: "DynamoDB", OperationName: op,
		Err: &types.TransactionCanceledException{Message: aws.String("Transaction cancelled"), CancellationReasons: reasons}}
}

func (c *conflicting) PutItem(ctx context.Context, in *dynamodb.PutItemInput, o ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	if err := c.refuse("PutItem", 1, func() { _, _ = c.API.PutItem(ctx, in, o...) }); err != nil {
		return nil, err
	}
	return c.API.PutItem(ctx, in, o...)
}

func (c *conflicting) UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, o ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	if err := c.refuse("UpdateItem", 1, func() { _, _ = c.API.UpdateItem(ctx, in, o...) }); err != nil {
		return nil, err
	}
	return c.API.UpdateItem(ctx, in, o...)
}

func (c *conflicting) TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, o ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error) {
	if err := c.refuse("TransactWriteItems", len(in.TransactItems), func() { _, _ = c.API.TransactWriteItems(ctx, in, o...) }); err != nil {
		return nil, err
	}
	return c.API.TransactWriteItems(ctx, in, o...)
}

// TestTransactionConflict: a commit refused because a transaction was in
// flight on its record (a storm of duplicates does that) is retried, not
// reported as a store failure; a duplicate that meets a commit in flight is
// judged on the record, not answered 503.
func TestTransactionConflict(t *testing.T) {
	t.Parallel()
	e := newEnv(t, true)
	for _, mode := range []idem.Mode{idem.Lease, idem.Optimistic} {
		for _, withWrite := range []bool{false, true} {
			op := commitOp[mode][withWrite]
			t.Run(fmt.Sprintf("%s: a %s refused twice by a conflict is retried and commits once", mode, op), func(t *testing.T) {
				t.Parallel()
				var ev events
				api := newConflicting(e.client, op, 2)
				g := idem.New(api, idem.Config{Table: e.table, Mode: mode, Observer: ev.observe})
				r := req(uniqueKey(t), "fp")
				var runs atomic.Int32
				res, err := g.Do(context.Background(), r, func(ctx context.Context) (idem.Outcome, error) {
					runs.Add(1)
					if withWrite {
						if err := e.putBiz(ctx, r.Key); err != nil {
							return idem.Outcome{}, err
						}
					}
					return idem.Outcome{Response: []byte("booked"), Keep: true}, nil
				})
				if err != nil || string(res.Response) != "booked" {
					t.Fatalf("Do = %q, %v; want the response, no error", res.Response, err)
				}
				if api.refused.Load() != 2 {
					t.Fatalf("%s refused %d times, want 2", op, api.refused.Load())
				}
				if str(e.record(r), "status") != "COMPLETED" {
					t.Fatalf("record %v, want COMPLETED", e.record(r))
				}
				if withWrite && !e.bizItem(r.Key) {
					t.Fatal("the business write was not committed")
				}
				if n := ev.count(idem.StoreError); n != 0 {
					t.Fatalf("StoreError events = %d for a conflict", n)
				}
				if res := mustDo(t, g, r, respond(&runs, []byte("other"))); !res.Replayed || string(res.Response) != "booked" {
					t.Fatalf("retry = %q replayed=%v, want a replay of the commit", res.Response, res.Replayed)
				}
			})
		}
	}

	t.Run("optimistic: a duplicate still colliding after every retry is in progress, not a store failure", func(t *testing.T) {
		t.Parallel()
		var ev events
		api := newConflicting(e.client, "TransactWriteItems", 100)
		g := idem.New(api, idem.Config{Table: e.table, Mode: idem.Optimistic, Observer: ev.observe})
		r := req(uniqueKey(t), "fp")
		_, err := g.Do(context.Background(), r, func(ctx context.Context) (idem.Outcome, error) {
			return idem.Outcome{Response: []byte("x"), Keep: true}, e.putBiz(ctx, r.Key)
		})
		if !errors.Is(err, idem.ErrInProgress) || errors.Is(err, idem.ErrStore) {
			t.Fatalf("err = %v, want ErrInProgress", err)
		}
		if ev.count(idem.StoreError) != 0 || ev.count(idem.Conflict) != 1 {
			t.Fatalf("events %v, want one Conflict and no StoreError", ev.list)
		}
		if e.record(r) != nil || e.bizItem(r.Key) {
			t.Fatal("a refused commit left a record or a business write")
		}
	})

	// Lease mode: fn ran (its effects outside DynamoDB may have happened), so
	// the answer is not ErrInProgress, whose contract is "nothing ran", but
	// ErrStore naming the refusal; nothing was written, and the lease is
	// released, since keeping it would only make the retry wait for it to
	// lapse before it runs fn again all the same.
	for _, withWrite := range []bool{false, true} {
		op := commitOp[idem.Lease][withWrite]
		t.Run("lease: the "+op+" of a commit still refused on the record after every retry is ErrStore naming the refusal, with nothing written and the key released", func(t *testing.T) {
			t.Parallel()
			var ev events
			api := newConflicting(e.client, op, 100)
			g := idem.New(api, idem.Config{Table: e.table, Observer: ev.observe})
			r := req(uniqueKey(t), "fp")
			_, err := g.Do(context.Background(), r, func(ctx context.Context) (idem.Outcome, error) {
				if withWrite {
					if err := e.putBiz(ctx, r.Key); err != nil {
						return idem.Outcome{}, err
					}
				}
				return idem.Outcome{Response: []byte("x"), Keep: true}, nil
			})
			if !errors.Is(err, idem.ErrStore) || errors.Is(err, idem.ErrInProgress) || !strings.Contains(err.Error(), "transaction in flight") {
				t.Fatalf("err = %v, want ErrStore naming the transaction in flight", err)
			}
			if !wrapsRefusal(err) {
				t.Fatalf("err = %v does not wrap the refusal", err)
			}
			if api.refused.Load() < 2 || ev.count(idem.StoreError) != 1 || ev.count(idem.Released) != 1 {
				t.Fatalf("refused %d times, events %v; want retries, one StoreError, one Released", api.refused.Load(), ev.kinds)
			}
			if e.record(r) != nil || (withWrite && e.bizItem(r.Key)) {
				t.Fatal("a refused commit left a record or a business write")
			}
			var runs atomic.Int32
			if res := mustDo(t, e.guard(idem.Config{}), r, respond(&runs, []byte("again"))); res.Replayed || runs.Load() != 1 {
				t.Fatal("a retry did not run afresh")
			}
		})
	}

	t.Run("lease: a duplicate whose acquire meets a commit in flight is judged on the record", func(t *testing.T) {
		t.Parallel()
		r := req(uniqueKey(t), "fp")
		var runs atomic.Int32
		mustDo(t, e.guard(idem.Config{}), r, respond(&runs, []byte("first")))

		for _, tc := range []struct {
			name    string
			req     idem.Request
			wantRes string
			wantErr error
		}{
			{"the same request replays", r, "first", nil},
			{"another request is a mismatch", req(r.Key, "other"), "", idem.ErrMismatch},
		} {
			var ev events
			api := newConflicting(e.client, "PutItem", 1)
			g := idem.New(api, idem.Config{Table: e.table, Observer: ev.observe})
			res, err := g.Do(context.Background(), tc.req, respond(&runs, []byte("second")))
			if !errors.Is(err, tc.wantErr) || string(res.Response) != tc.wantRes || api.refused.Load() != 1 {
				t.Fatalf("%s: Do = %q, %v (refused %d); want %q, %v", tc.name, res.Response, err, api.refused.Load(), tc.wantRes, tc.wantErr)
			}
			if ev.count(idem.StoreError) != 0 {
				t.Fatalf("%s: a StoreError event for a conflict", tc.name)
			}
		}
		if runs.Load() != 1 {
			t.Fatalf("fn ran %d times, want once", runs.Load())
		}
	})

	t.Run("lease: an acquire that meets a conflict on a key with no record says retry now", func(t *testing.T) {
		t.Parallel()
		api := newConflicting(e.client, "PutItem", 1)
		g := idem.New(api, idem.Config{Table: e.table})
		var ip *idem.InProgressError
		_, err := g.Do(context.Background(), req(uniqueKey(t), "fp"), func(context.Context) (idem.Outcome, error) {
			t.Error("fn ran although the acquire was refused")
			return idem.Outcome{}, nil
		})
		if !errors.As(err, &ip) || ip.RetryAfter != 0 {
			t.Fatalf("err = %v, want ErrInProgress with RetryAfter 0", err)
		}
	})
}

// wrapsRefusal reports whether err wraps a refusal by a transaction in
// flight, as conflicting makes it.
func wrapsRefusal(err error) bool {
	var tce *types.TransactionConflictException
	var canceled *types.TransactionCanceledException
	return errors.As(err, &tce) || errors.As(err, &canceled)
}

// failingRead wraps the real client and fails every GetItem with a 500, as
// the SDK returns it after its own retries gave up.
type failingRead struct{ idem.API }

func (f failingRead) GetItem(context.Context, *dynamodb.GetItemInput, ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	return nil, &smithy.OperationError{ServiceID: "DynamoDB", OperationName: "GetItem",
		Err: &types.InternalServerError{Message: aws.String("injected")}}
}

// noAllOld wraps the real client and drops the item from a failed
// condition of PutItem, as if DynamoDB had returned no ALL_OLD.
type noAllOld struct{ idem.API }

func (n noAllOld) PutItem(ctx context.Context, in *dynamodb.PutItemInput, o ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	out, err := n.API.PutItem(ctx, in, o...)
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		ccf.Item = nil
	}
	return out, err
}

// TestAcquireRefusedByConflict covers the acquire that DynamoDB refuses
// because a transaction is in flight on the record: the guard reads the
// record and judges it, and must recognise its own lease there.
func TestAcquireRefusedByConflict(t *testing.T) {
	t.Parallel()
	e := newEnv(t, true)

	t.Run("an acquire whose first try landed and whose retry was refused holds its own lease and runs", func(t *testing.T) {
		t.Parallel()
		var ev events
		api := newConflicting(e.client, "PutItem", 1)
		api.landed = true
		g := idem.New(api, idem.Config{Table: e.table, Observer: ev.observe})
		r := req(uniqueKey(t), "fp")
		var runs atomic.Int32
		res, err := g.Do(context.Background(), r, respond(&runs, []byte("mine")))
		if err != nil || res.Replayed || string(res.Response) != "mine" || runs.Load() != 1 {
			t.Fatalf("Do = %q (replayed %v), %v after %d runs; want a fresh run of fn", res.Response, res.Replayed, err, runs.Load())
		}
		if api.refused.Load() != 1 {
			t.Fatalf("PutItem refused %d times, want 1", api.refused.Load())
		}
		if got := str(e.record(r), "status"); got != "COMPLETED" {
			t.Fatalf("record status = %q, want COMPLETED", got)
		}
		if ev.count(idem.Conflict) != 0 || ev.count(idem.Miss) != 1 {
			t.Fatalf("events %v, want one Miss and no Conflict", ev.kinds)
		}
	})

	t.Run("with Wait, an acquire refused on a key that the re-read finds free tries again and runs", func(t *testing.T) {
		t.Parallel()
		api := newConflicting(e.client, "PutItem", 1)
		g := idem.New(api, idem.Config{Table: e.table, Wait: 5 * time.Second})
		r := req(uniqueKey(t), "fp")
		var runs atomic.Int32
		res, err := g.Do(context.Background(), r, respond(&runs, []byte("mine")))
		if err != nil || string(res.Response) != "mine" || runs.Load() != 1 {
			t.Fatalf("Do = %q, %v after %d runs; want fn run once", res.Response, err, runs.Load())
		}
		if api.refused.Load() != 1 {
			t.Fatalf("PutItem refused %d times, want 1", api.refused.Load())
		}
	})

	// The read that follows a refused acquire fails: the error is ErrStore
	// once, not ErrStore wrapping ErrStore, and a lease the acquire may have
	// landed is released.
	for _, tc := range []struct {
		name   string
		holder bool // another attempt holds the key first
		api    func() idem.API
	}{
		{"after a conflict whose first try landed", false, func() idem.API {
			c := newConflicting(failingRead{e.client}, "PutItem", 1)
			c.landed = true
			return c
		}},
		{"after a failed condition that returned no record", true, func() idem.API { return failingRead{noAllOld{e.client}} }},
	} {
		t.Run("a failed read "+tc.name+" is ErrStore, wrapped once, and leaves no lease of its own", func(t *testing.T) {
			t.Parallel()
			r := req(uniqueKey(t), "fp")
			other := ""
			if tc.holder {
				holding, done := holdLease(t, e.guard(idem.Config{}), r)
				t.Cleanup(func() { done() })
				<-holding
				other = str(e.record(r), "owner")
			}
			var ev events
			g := idem.New(tc.api(), idem.Config{Table: e.table, Observer: ev.observe})
			var runs atomic.Int32
			_, err := g.Do(context.Background(), r, respond(&runs, []byte("x")))
			wantStoreError(t, err, &ev)
			if n := strings.Count(err.Error(), idem.ErrStore.Error()); n != 1 {
				t.Fatalf("err = %q names ErrStore %d times, want once", err, n)
			}
			if runs.Load() != 0 {
				t.Fatal("fn ran although the acquire failed")
			}
			if rec := e.record(r); rec != nil && str(rec, "owner") != other {
				t.Fatalf("the failed acquire left its own lease: %v", rec)
			}
		})
	}
}

// TestBusinessWriteConflict: a business write that a transaction in flight
// on its item keeps refusing is a write conflict in both modes (409
// idempotent-write-conflict, retry): nothing committed, the key free. It is
// neither "key in use" (no other attempt holds this key) nor a store
// failure of unknown outcome (nothing was written).
func TestBusinessWriteConflict(t *testing.T) {
	t.Parallel()
	e := newEnv(t, true)
	for _, mode := range []idem.Mode{idem.Lease, idem.Optimistic} {
		t.Run(mode.String()+": a business write refused on every try is a write conflict naming it, and nothing is committed", func(t *testing.T) {
			t.Parallel()
			var ev events
			api := newConflicting(e.client, "TransactWriteItems", 100)
			api.at = 1 // the second of fn's two writes
			g := idem.New(api, idem.Config{Table: e.table, Mode: mode, Observer: ev.observe})
			r := req(uniqueKey(t), "fp")
			fn := func(ctx context.Context) (idem.Outcome, error) {
				for _, pk := range []string{r.Key + "-a", r.Key + "-b"} {
					if err := e.putBiz(ctx, pk); err != nil {
						return idem.Outcome{}, err
					}
				}
				return idem.Outcome{Response: []byte("booked"), Keep: true}, nil
			}
			_, err := g.Do(context.Background(), r, fn)
			var wce *idem.WriteConditionError
			if !errors.As(err, &wce) || !errors.Is(err, idem.ErrWriteConditionFailed) || errors.Is(err, idem.ErrInProgress) || errors.Is(err, idem.ErrStore) {
				t.Fatalf("err = %v, want only a *WriteConditionError", err)
			}
			if wce.Index != 1 || !wce.Conflict || wce.Item != nil {
				t.Fatalf("WriteConditionError{Index: %d, Conflict: %v, Item: %v}, want write 1, a conflict, no item", wce.Index, wce.Conflict, wce.Item)
			}
			var tce *types.TransactionCanceledException
			if !errors.As(err, &tce) {
				t.Fatal("the cancellation is not wrapped")
			}
			if got := api.refused.Load(); got < 2 {
				t.Fatalf("the commit was tried %d times, want it retried", got)
			}
			if ev.count(idem.StoreError) != 0 || ev.count(idem.Conflict) != 0 {
				t.Fatalf("events %v: a write conflict is neither a store error nor a key conflict", ev.kinds)
			}
			if e.record(r) != nil || e.bizItem(r.Key+"-a") || e.bizItem(r.Key+"-b") {
				t.Fatal("a record or a business write remains")
			}
			var runs atomic.Int32
			res := mustDo(t, e.guard(idem.Config{Mode: mode}), r, func(ctx context.Context) (idem.Outcome, error) {
				runs.Add(1)
				return fn(ctx)
			})
			if res.Replayed || runs.Load() != 1 || !e.bizItem(r.Key+"-b") {
				t.Fatal("a retry did not run afresh and commit")
			}
		})
	}
}
