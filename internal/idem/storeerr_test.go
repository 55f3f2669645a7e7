package idem_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"

	"github.com/parcelhq/orderservice/internal/idem"
)

// failingWrite wraps the real client and fails the next call of one write
// operation with a 500 InternalServerError shaped as the SDK returns it
// (after its own retries gave up). When landed is false the call never
// reaches DynamoDB; when it is true DynamoDB applies it and only the
// response is lost, so the guard cannot tell the two apart. Later calls go
// through. It also counts consistent reads, the polls of Config.Wait.
type failingWrite struct {
	idem.API
	op      string // "PutItem", "UpdateItem" or "TransactWriteItems"; "" fails nothing
	landed  bool
	pending atomic.Int32 // calls of op still to fail
	failed  atomic.Int32 // calls of op failed so far
	reads   atomic.Int32 // GetItem calls
}

func newFailingWrite(api idem.API, op string, landed bool) *failingWrite {
	f := &failingWrite{API: api, op: op, landed: landed}
	if op != "" {
		f.pending.Store(1)
	}
	return f
}

// fail reports whether this call of op is to fail and, if so, forwards it
// first when the fault is a lost response.
func (f *failingWrite) fail(op string, forward func()) error {
	if op != f.op || f.pending.Add(-1) < 0 {
		return nil
	}
	if f.landed {
		forward()
	}
	f.failed.Add(1)
	return &smithy.OperationError{ServiceID: "DynamoDB", OperationName: op,
		Err: &types.InternalServerError{Message: aws.String("injected")}}
}

func (f *failingWrite) GetItem(ctx context.Context, in *dynamodb.GetItemInput, o ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	f.reads.Add(1)
	return f.API.GetItem(ctx, in, o...)
}

func (f *failingWrite) PutItem(ctx context.Context, in *dynamodb.PutItemInput, o ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	if err := f.fail("PutItem", func() { _, _ = f.API.PutItem(ctx, in, o...) }); err != nil {
		return nil, err
	}
	return f.API.PutItem(ctx, in, o...)
}

func (f *failingWrite) UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, o ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	if err := f.fail("UpdateItem", func() { _, _ = f.API.UpdateItem(ctx, in, o...) }); err != nil {
		return nil, err
	}
	return f.API.UpdateItem(ctx, in, o...)
}

func (f *failingWrite) TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, o ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error) {
	if err := f.fail("TransactWriteItems", func() { _, _ = f.API.TransactWriteItems(ctx, in, o...) }); err != nil {
		return nil, err
	}
	return f.API.TransactWriteItems(ctx, in, o...)
}

// wantStoreError checks that err is ErrStore wrapping the injected 500 and
// that exactly one StoreError event reported it.
func wantStoreError(t *testing.T, err error, ev *events) {
	t.Helper()
	var ise *types.InternalServerError
	if !errors.Is(err, idem.ErrStore) || !errors.As(err, &ise) {
		t.Fatalf("err = %v, want ErrStore wrapping the InternalServerError", err)
	}
	if n := ev.count(idem.StoreError); n != 1 {
		t.Fatalf("StoreError events = %d, want 1", n)
	}
	for _, e := range ev.list {
		if e.Kind == idem.StoreError && !errors.Is(e.Err, idem.ErrStore) {
			t.Fatalf("StoreError event carries %v, want ErrStore", e.Err)
		}
	}
}

func TestStoreErrorDuringCommit(t *testing.T) {
	t.Parallel()
	e := newEnv(t, true)
	for _, mode := range []idem.Mode{idem.Lease, idem.Optimistic} {
		for _, withWrites := range []bool{false, true} {
			for _, landed := range []bool{false, true} {
				op := commitOp[mode][withWrites]
				name := fmt.Sprintf("%s: a %s that fails ", mode, op)
				if landed {
					name += "after it landed is ErrStore, yet the commit stands and a retry replays it"
				} else {
					name += "before it landed is ErrStore, nothing is stored, and a retry runs afresh"
				}
				t.Run(name, func(t *testing.T) {
					t.Parallel()
					var ev events
					api := newFailingWrite(e.client, op, landed)
					g := idem.New(api, idem.Config{Table: e.table, Mode: mode, Observer: ev.observe})
					r := req(uniqueKey(t), "fp")
					// Each run answers and (withWrites) writes its own name, so
					// the tables show which run committed.
					var runs atomic.Int32
					fn := func(ctx context.Context) (idem.Outcome, error) {
						pk := fmt.Sprintf("%s-run-%d", r.Key, runs.Add(1))
						if withWrites {
							if err := e.putBiz(ctx, pk); err != nil {
								return idem.Outcome{}, err
							}
						}
						return idem.Outcome{Response: []byte(pk), Keep: true}, nil
					}
					run1, run2 := r.Key+"-run-1", r.Key+"-run-2"

					res, err := g.Do(context.Background(), r, fn)
					if api.failed.Load() != 1 {
						t.Fatalf("%s failed %d times, want once", api.op, api.failed.Load())
					}
					wantStoreError(t, err, &ev)
					if res.Response != nil || runs.Load() != 1 {
						t.Fatalf("Do answered %q after %d runs, want nothing after one run", res.Response, runs.Load())
					}
					if n := ev.count(idem.Committed); n != 0 {
						t.Fatalf("Committed events = %d for a commit Do reported as failed", n)
					}
					rec := e.record(r)
					if landed {
						if got := str(rec, "status"); got != "COMPLETED" {
							t.Fatalf("record status = %q, want the landed commit's COMPLETED", got)
						}
						if data, _ := rec["data"].(*types.AttributeValueMemberB); data == nil || string(data.Value) != run1 {
							t.Fatalf("record data = %v, want %q", rec["data"], run1)
						}
						if n := ev.count(idem.Released); n != 0 {
							t.Fatalf("Released events = %d, want 0: the release must not undo a commit that landed", n)
						}
					} else {
						if rec != nil {
							t.Fatalf("a record remains after a commit that did not land: %v", rec)
						}
						if mode == idem.Lease && ev.count(idem.Released) != 1 {
							t.Fatalf("Released events = %d, want the lease released once", ev.count(idem.Released))
						}
					}
					if withWrites && e.bizItem(run1) != landed {
						t.Fatalf("business write of the failed attempt present = %v, want %v", e.bizItem(run1), landed)
					}

					retry := mustDo(t, g, r, fn)
					if landed {
						if !retry.Replayed || !bytes.Equal(retry.Response, []byte(run1)) {
							t.Fatalf("retry = %q (replayed %v), want a replay of %q", retry.Response, retry.Replayed, run1)
						}
						// Lease mode never runs fn for a hit; Optimistic mode
						// runs it (by design) but commits none of its writes.
						if wantRuns := map[idem.Mode]int32{idem.Lease: 1, idem.Optimistic: 2}[mode]; runs.Load() != wantRuns {
							t.Fatalf("fn ran %d times, want %d", runs.Load(), wantRuns)
						}
						if withWrites && (!e.bizItem(run1) || e.bizItem(run2)) {
							t.Fatal("business writes: want only the landed commit's")
						}
					} else {
						if retry.Replayed || !bytes.Equal(retry.Response, []byte(run2)) || runs.Load() != 2 {
							t.Fatalf("retry = %q (replayed %v) after %d runs, want a fresh run", retry.Response, retry.Replayed, runs.Load())
						}
						if got := str(e.record(r), "status"); got != "COMPLETED" {
							t.Fatalf("record status after the retry = %q, want COMPLETED", got)
						}
						if withWrites && (e.bizItem(run1) || !e.bizItem(run2)) {
							t.Fatal("business writes: want only the retry's")
						}
					}
				})
			}
		}
	}
}

func TestStoreErrorDuringAcquire(t *testing.T) {
	t.Parallel()
	e := newEnv(t, true)
	for _, landed := range []bool{false, true} {
		name := "an acquire that never reached DynamoDB"
		if landed {
			name = "an acquire that landed but whose answer was lost"
		}
		t.Run(name+" is ErrStore, runs nothing, leaves no lease, and a retry runs at once", func(t *testing.T) {
			t.Parallel()
			var ev events
			api := newFailingWrite(e.client, "PutItem", landed)
			g := idem.New(api, idem.Config{Table: e.table, Observer: ev.observe})
			r := req(uniqueKey(t), "fp")
			var runs atomic.Int32

			_, err := g.Do(context.Background(), r, respond(&runs, []byte("x")))
			if api.failed.Load() != 1 {
				t.Fatalf("PutItem failed %d times, want once", api.failed.Load())
			}
			wantStoreError(t, err, &ev)
			if runs.Load() != 0 {
				t.Fatal("fn ran although the lease was never acquired")
			}
			if n := ev.count(idem.Miss); n != 0 {
				t.Fatalf("Miss events = %d for an acquire that failed", n)
			}
			if rec := e.record(r); rec != nil {
				t.Fatalf("a record exists after a failed acquire: %v", rec)
			}
			if res := mustDo(t, g, r, respond(&runs, []byte("x"))); res.Replayed || runs.Load() != 1 {
				t.Fatalf("retry: replayed=%v runs=%d, want a fresh run", res.Replayed, runs.Load())
			}
		})
	}
}

// TestOptimisticWait covers Config.Wait in Optimistic mode: an optimistic
// attempt whose commit is beaten by a Lease-mode attempt still in progress
// polls for it (replayWinner) like a Lease-mode duplicate does. The
// optimistic duplicate has already run fn by then; its writes never commit.
func TestOptimisticWait(t *testing.T) {
	t.Parallel()
	e := newEnv(t, true)

	// writeAndRespond makes a business write named after the key and answers
	// with that name.
	writeAndRespond := func(runs *atomic.Int32, key string) func(context.Context) (idem.Outcome, error) {
		return func(ctx context.Context) (idem.Outcome, error) {
			runs.Add(1)
			pk := "optimistic-" + key
			return idem.Outcome{Response: []byte(pk), Keep: true}, e.putBiz(ctx, pk)
		}
	}

	t.Run("a duplicate that waits replays the lease-mode holder once it completes", func(t *testing.T) {
		t.Parallel()
		r := req(uniqueKey(t), "fp")
		holding, done := holdLease(t, e.guard(idem.Config{}), r)
		t.Cleanup(func() { done() })
		<-holding
		var ev events
		g := e.guard(idem.Config{Mode: idem.Optimistic, Wait: 30 * time.Second, Observer: func(ctx context.Context, ev2 idem.Event) {
			ev.observe(ctx, ev2)
			if ev2.Kind == idem.Conflict {
				go done() // the holder completes only once the duplicate found it in progress
			}
		}})
		var runs atomic.Int32
		res := mustDo(t, g, r, writeAndRespond(&runs, r.Key))
		if !res.Replayed || string(res.Response) != "first" {
			t.Fatalf("got %q (replayed %v), want a replay of the holder's %q", res.Response, res.Replayed, "first")
		}
		if ev.count(idem.Conflict) != 1 || ev.count(idem.Hit) != 1 {
			t.Fatalf("events %v, want a conflict, then a hit", ev.kinds)
		}
		if runs.Load() != 1 || e.bizItem("optimistic-"+r.Key) {
			t.Fatalf("fn ran %d times; want once, with its write not committed", runs.Load())
		}
	})

	t.Run("a duplicate whose wait runs out answers ErrInProgress and leaves the holder's record alone", func(t *testing.T) {
		t.Parallel()
		r := req(uniqueKey(t), "fp")
		holding, done := holdLease(t, e.guard(idem.Config{Lease: 30 * time.Second}), r)
		t.Cleanup(func() { done() })
		<-holding
		before := e.record(r)
		api := newFailingWrite(e.client, "", false)
		g := idem.New(api, idem.Config{Table: e.table, Mode: idem.Optimistic, Wait: 300 * time.Millisecond})
		var runs atomic.Int32
		_, err := g.Do(context.Background(), r, writeAndRespond(&runs, r.Key))
		var ip *idem.InProgressError
		if !errors.As(err, &ip) || !errors.Is(err, idem.ErrInProgress) || ip.RetryAfter <= 0 {
			t.Fatalf("err = %v, want *InProgressError with a retry hint", err)
		}
		if api.reads.Load() == 0 {
			t.Fatal("the duplicate answered without polling: Wait was ignored")
		}
		after := e.record(r)
		if str(after, "owner") != str(before, "owner") || str(after, "status") != "IN_PROGRESS" {
			t.Fatal("the duplicate changed the holder's record")
		}
		if e.bizItem("optimistic-" + r.Key) {
			t.Fatal("the duplicate's write landed")
		}
		if got := done(); string(got.Response) != "first" {
			t.Fatalf("the holder answered %q", got.Response)
		}
	})

	// An optimistic duplicate has run fn before it waits; when the holder
	// gives the key up it does not retry its commit but answers
	// ErrInProgress with RetryAfter 0, discarding its outcome, so the
	// caller's retry runs afresh at once (Config.Wait's doc).
	t.Run("a duplicate whose holder gives the key up answers ErrInProgress, retry now, and commits nothing", func(t *testing.T) {
		t.Parallel()
		r := req(uniqueKey(t), "fp")
		giveUp := make(chan struct{})
		var once atomic.Bool
		holder := make(chan error, 1)
		started := make(chan struct{})
		go func() {
			_, err := e.guard(idem.Config{}).Do(context.Background(), r, func(context.Context) (idem.Outcome, error) {
				close(started)
				<-giveUp
				return idem.Outcome{}, errBoom
			})
			holder <- err
		}()
		t.Cleanup(func() {
			if once.CompareAndSwap(false, true) {
				close(giveUp)
			}
			<-holder
		})
		<-started
		api := newFailingWrite(e.client, "", false)
		g := idem.New(api, idem.Config{Table: e.table, Mode: idem.Optimistic, Wait: 30 * time.Second, Observer: func(_ context.Context, ev idem.Event) {
			if ev.Kind == idem.Conflict && once.CompareAndSwap(false, true) {
				close(giveUp)
			}
		}})
		var runs atomic.Int32
		_, err := g.Do(context.Background(), r, writeAndRespond(&runs, r.Key))
		var ip *idem.InProgressError
		if !errors.As(err, &ip) || ip.RetryAfter != 0 {
			t.Fatalf("err = %v, want ErrInProgress with RetryAfter 0", err)
		}
		if api.reads.Load() == 0 {
			t.Fatal("the duplicate answered without polling: Wait was ignored")
		}
		if runs.Load() != 1 || e.bizItem("optimistic-"+r.Key) {
			t.Fatalf("fn ran %d times; want once, with its write not committed", runs.Load())
		}
		if err := <-holder; !errors.Is(err, errBoom) {
			t.Fatalf("holder: err = %v, want errBoom", err)
		}
		holder <- nil // for the clean-up
		if rec := e.record(r); rec != nil {
			t.Fatalf("a record remains: %v", rec)
		}
		res := mustDo(t, g, r, writeAndRespond(&runs, r.Key))
		if res.Replayed || !e.bizItem("optimistic-"+r.Key) {
			t.Fatal("the caller's retry did not run afresh and commit")
		}
	})
}
