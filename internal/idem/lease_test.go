package idem_test

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/parcelhq/orderservice/internal/idem"
)

func TestLeaseMissThenHit(t *testing.T) {
	t.Parallel()
	e := newEnv(t, true)
	g := e.guard(idem.Config{})
	cases := []struct {
		name     string
		response []byte
		encoding string
	}{
		{"a small response is replayed byte for byte", []byte(`{"order":"o-1"}`), ""},
		{"an empty response is replayed as empty", nil, ""},
		{"an incompressible response is stored as it is", randomBytes(50_000), ""},
		{"a compressible response of a few KB is stored snappy-compressed and replayed identical", bytes.Repeat([]byte("parcel "), 300), "snappy"},
		{"a large compressible response is stored gzip-compressed and replayed identical", bytes.Repeat([]byte("parcel "), 200_000), "gzip"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			r := req(uniqueKey(t), "fp")
			var runs atomic.Int32
			first := mustDo(t, g, r, respond(&runs, c.response))
			second := mustDo(t, g, r, respond(&runs, []byte("other")))
			if runs.Load() != 1 {
				t.Fatalf("fn ran %d times, want 1", runs.Load())
			}
			if first.Replayed || !second.Replayed {
				t.Fatalf("Replayed = %v then %v, want false then true", first.Replayed, second.Replayed)
			}
			if !bytes.Equal(first.Response, c.response) || !bytes.Equal(second.Response, c.response) {
				t.Fatal("response not byte-identical to fn's")
			}
			item := e.record(r)
			if got := str(item, "status"); got != "COMPLETED" {
				t.Fatalf("status = %q, want COMPLETED", got)
			}
			if got := str(item, "encoding"); got != c.encoding {
				t.Fatalf("encoding = %q, want %q", got, c.encoding)
			}
			if _, ok := item["lease_until"]; ok {
				t.Fatal("a COMPLETED record keeps its lease")
			}
		})
	}
}

func TestMismatch(t *testing.T) {
	t.Parallel()
	e := newEnv(t, true)
	g := e.guard(idem.Config{})

	t.Run("a completed key reused with another fingerprint is rejected without running fn", func(t *testing.T) {
		t.Parallel()
		r := req(uniqueKey(t), "fp-1")
		var runs atomic.Int32
		mustDo(t, g, r, respond(&runs, []byte("a")))
		before := e.record(r)
		r.Fingerprint = "fp-2"
		if _, err := g.Do(context.Background(), r, respond(&runs, []byte("b"))); !errors.Is(err, idem.ErrMismatch) {
			t.Fatalf("err = %v, want ErrMismatch", err)
		}
		if runs.Load() != 1 {
			t.Fatalf("fn ran %d times, want 1", runs.Load())
		}
		if str(e.record(r), "fingerprint") != str(before, "fingerprint") {
			t.Fatal("the rejected request changed the record")
		}
	})

	t.Run("an in-progress key reused with another fingerprint is a mismatch, not a conflict", func(t *testing.T) {
		t.Parallel()
		r := req(uniqueKey(t), "fp-1")
		holding, done := holdLease(t, g, r)
		defer done()
		<-holding
		r.Fingerprint = "fp-2"
		var runs atomic.Int32
		if _, err := g.Do(context.Background(), r, respond(&runs, nil)); !errors.Is(err, idem.ErrMismatch) {
			t.Fatalf("err = %v, want ErrMismatch", err)
		}
	})

	t.Run("the same key in another scope is another record", func(t *testing.T) {
		t.Parallel()
		r := req(uniqueKey(t), "fp-1")
		var runs atomic.Int32
		mustDo(t, g, r, respond(&runs, []byte("a")))
		r.Scope, r.Fingerprint = "tenant-2", "fp-2"
		res := mustDo(t, g, r, respond(&runs, []byte("b")))
		if res.Replayed || string(res.Response) != "b" || runs.Load() != 2 {
			t.Fatalf("other scope: replayed=%v response=%q runs=%d, want a fresh run", res.Replayed, res.Response, runs.Load())
		}
	})
}

// holdLease starts a Do on r whose fn blocks until done is called; holding
// is closed once fn runs. done waits for Do to return and returns its result.
func holdLease(t *testing.T, g *idem.Guard, r idem.Request) (holding <-chan struct{}, done func() idem.Result) {
	t.Helper()
	h := make(chan struct{})
	release := make(chan struct{})
	out := make(chan idem.Result, 1)
	go func() {
		res, err := g.Do(context.Background(), r, func(context.Context) (idem.Outcome, error) {
			close(h)
			<-release
			return idem.Outcome{Response: []byte("first"), Keep: true}, nil
		})
		if err != nil {
			t.Errorf("holding Do: %v", err)
		}
		out <- res
	}()
	var once sync.Once
	var res idem.Result
	return h, func() idem.Result {
		once.Do(func() { close(release); res = <-out })
		return res
	}
}

func TestInProgress(t *testing.T) {
	t.Parallel()
	e := newEnv(t, true)

	t.Run("a duplicate during the first attempt gets ErrInProgress with a retry hint and leaves the lease alone", func(t *testing.T) {
		t.Parallel()
		g := e.guard(idem.Config{Lease: 10 * time.Second})
		r := req(uniqueKey(t), "fp")
		holding, done := holdLease(t, g, r)
		t.Cleanup(func() { done() })
		<-holding
		before := e.record(r)
		var runs atomic.Int32
		_, err := g.Do(context.Background(), r, respond(&runs, nil))
		var ip *idem.InProgressError
		if !errors.As(err, &ip) || !errors.Is(err, idem.ErrInProgress) {
			t.Fatalf("err = %v, want *InProgressError matching ErrInProgress", err)
		}
		if ip.RetryAfter <= 0 || ip.RetryAfter > 12*time.Second {
			t.Fatalf("RetryAfter = %s, want within the lease plus skew", ip.RetryAfter)
		}
		if runs.Load() != 0 {
			t.Fatal("the duplicate ran fn")
		}
		if str(e.record(r), "owner") != str(before, "owner") {
			t.Fatal("the duplicate changed the live record")
		}
		if got := done(); string(got.Response) != "first" {
			t.Fatalf("first attempt answered %q", got.Response)
		}
	})

	// A duplicate that waits must meet the first attempt in progress (its
	// Conflict event) and poll until that attempt ends. The first attempt
	// ends only once the duplicate's Conflict event has fired, so a
	// duplicate that came late (a plain replay or a fresh run) or did not
	// wait (ErrInProgress) fails.
	waits := []struct {
		name              string
		holderOutcome     idem.Outcome
		holderErr         error
		wantReplayed      bool
		wantResponse      string
		wantRuns          int32
		wantAfterConflict idem.EventKind
	}{
		{
			name:          "a duplicate that waits replays the first attempt once it completes",
			holderOutcome: idem.Outcome{Response: []byte("first"), Keep: true},
			wantReplayed:  true, wantResponse: "first", wantRuns: 0, wantAfterConflict: idem.Hit,
		},
		{
			name:         "a duplicate that waits runs fn itself when the first attempt gives the key up",
			holderErr:    errBoom,
			wantReplayed: false, wantResponse: "second", wantRuns: 1, wantAfterConflict: idem.Miss,
		},
	}
	for _, c := range waits {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			r := req(uniqueKey(t), "fp")
			finish := make(chan struct{})
			var once sync.Once
			letFinish := func() { once.Do(func() { close(finish) }) }
			started, holderDone := make(chan struct{}), make(chan struct{})
			var holderErr error
			go func() {
				defer close(holderDone)
				_, holderErr = e.guard(idem.Config{}).Do(context.Background(), r, func(context.Context) (idem.Outcome, error) {
					close(started)
					<-finish
					return c.holderOutcome, c.holderErr
				})
			}()
			t.Cleanup(func() { letFinish(); <-holderDone })
			<-started

			var ev events
			api := newFailingWrite(e.client, "", false) // counts the duplicate's polls
			g := idem.New(api, idem.Config{Table: e.table, Wait: 30 * time.Second, Observer: func(ctx context.Context, got idem.Event) {
				ev.observe(ctx, got)
				if got.Kind == idem.Conflict {
					letFinish() // the first attempt ends only once the duplicate met it in progress
				}
			}})
			var runs atomic.Int32
			res := mustDo(t, g, r, respond(&runs, []byte("second")))
			if res.Replayed != c.wantReplayed || string(res.Response) != c.wantResponse || runs.Load() != c.wantRuns {
				t.Fatalf("replayed=%v response=%q runs=%d, want replayed=%v response=%q runs=%d",
					res.Replayed, res.Response, runs.Load(), c.wantReplayed, c.wantResponse, c.wantRuns)
			}
			if len(ev.kinds) < 2 || ev.kinds[0] != idem.Conflict || ev.kinds[1] != c.wantAfterConflict || ev.count(idem.Conflict) != 1 {
				t.Fatalf("events %v, want a conflict, then a %v", ev.kinds, c.wantAfterConflict)
			}
			if api.reads.Load() == 0 {
				t.Fatal("the duplicate answered without polling: it did not wait")
			}
			<-holderDone
			if !errors.Is(holderErr, c.holderErr) {
				t.Fatalf("first attempt: err = %v, want %v", holderErr, c.holderErr)
			}
		})
	}
}

func TestConcurrentDuplicatesRunOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t, true)
	g := e.guard(idem.Config{Wait: 30 * time.Second})
	r := req(uniqueKey(t), "fp")
	const n = 200
	var runs atomic.Int32
	fn := func(ctx context.Context) (idem.Outcome, error) {
		runs.Add(1)
		time.Sleep(200 * time.Millisecond)
		return idem.Outcome{Response: randomBytes(256), Keep: true}, nil
	}
	results := make([]idem.Result, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { results[i], errs[i] = g.Do(context.Background(), r, fn) })
	}
	wg.Wait()
	if runs.Load() != 1 {
		t.Fatalf("fn ran %d times for one key, want 1", runs.Load())
	}
	fresh := 0
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("request %d: %v", i, errs[i])
		}
		if !results[i].Replayed {
			fresh++
		}
		if !bytes.Equal(results[i].Response, results[0].Response) {
			t.Fatalf("request %d got a different response", i)
		}
	}
	if fresh != 1 {
		t.Fatalf("%d requests were not replays, want 1", fresh)
	}
}

func TestLeaseTakeover(t *testing.T) {
	t.Parallel()
	e := newEnv(t, true)
	const lease = 5 * time.Second
	cases := []struct {
		name    string
		outcome func() (idem.Outcome, error)
		wantErr error
	}{
		{"the first attempt's commit fails with ErrCommitLost and writes nothing",
			func() (idem.Outcome, error) { return idem.Outcome{Response: []byte("stale"), Keep: true}, nil }, idem.ErrCommitLost},
		{"the first attempt's release after an error changes nothing",
			func() (idem.Outcome, error) { return idem.Outcome{}, errBoom }, errBoom},
		{"the first attempt's release after Keep=false changes nothing",
			func() (idem.Outcome, error) { return idem.Outcome{Response: []byte("no")}, nil }, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			var ev events
			first := e.guard(idem.Config{Lease: lease, Observer: ev.observe})
			// The second host's clock is past the first lease plus the skew.
			second := e.guard(idem.Config{Lease: lease, Now: clock(lease + 3*time.Second), Observer: ev.observe})
			r := req(uniqueKey(t), "fp")
			staleKey := "stale-" + r.Key
			acquired, proceed := make(chan struct{}), make(chan struct{})
			errc := make(chan error, 1)
			go func() {
				_, err := first.Do(context.Background(), r, func(ctx context.Context) (idem.Outcome, error) {
					if err := e.putBiz(ctx, staleKey); err != nil {
						return idem.Outcome{}, err
					}
					close(acquired)
					<-proceed
					return c.outcome()
				})
				errc <- err
			}()
			<-acquired
			res := mustDo(t, second, r, func(ctx context.Context) (idem.Outcome, error) {
				return idem.Outcome{Response: []byte("new"), Keep: true}, e.putBiz(ctx, "new-"+r.Key)
			})
			if res.Replayed || string(res.Response) != "new" {
				t.Fatalf("takeover: replayed=%v response=%q", res.Replayed, res.Response)
			}
			if ev.count(idem.LeaseTakeover) != 1 {
				t.Fatalf("LeaseTakeover events = %d, want 1", ev.count(idem.LeaseTakeover))
			}
			want := e.record(r)
			close(proceed)
			err := <-errc
			if c.wantErr == nil && err != nil || c.wantErr != nil && !errors.Is(err, c.wantErr) {
				t.Fatalf("first attempt: err = %v, want %v", err, c.wantErr)
			}
			got := e.record(r)
			for _, attr := range []string{"status", "owner", "fingerprint"} {
				if str(got, attr) != str(want, attr) {
					t.Fatalf("record %s changed from %q to %q", attr, str(want, attr), str(got, attr))
				}
			}
			if data := got["data"].(*types.AttributeValueMemberB).Value; string(data) != "new" {
				t.Fatalf("record data = %q, want the takeover's", data)
			}
			if e.bizItem(staleKey) {
				t.Fatal("the first attempt's business write landed")
			}
			if !e.bizItem("new-" + r.Key) {
				t.Fatal("the takeover's business write is missing")
			}
		})
	}
}

func TestExpiredRecordIsTakenOver(t *testing.T) {
	t.Parallel()
	e := newEnv(t, false) // no TTL: the expired record stays readable
	r := req(uniqueKey(t), "fp")
	var runs atomic.Int32
	mustDo(t, e.guard(idem.Config{Retention: time.Hour}), r, respond(&runs, []byte("old")))

	t.Run("within the skew after expiry the record still answers", func(t *testing.T) {
		later := e.guard(idem.Config{Retention: time.Hour, Now: clock(time.Hour + time.Second)})
		res := mustDo(t, later, r, respond(&runs, []byte("new")))
		if !res.Replayed || string(res.Response) != "old" {
			t.Fatalf("replayed=%v response=%q, want the old record", res.Replayed, res.Response)
		}
	})
	t.Run("past expiry plus skew a new attempt runs and replaces it", func(t *testing.T) {
		later := e.guard(idem.Config{Retention: time.Hour, Now: clock(time.Hour + 5*time.Second)})
		r2 := r
		r2.Fingerprint = "another payload is fine once the key expired"
		res := mustDo(t, later, r2, respond(&runs, []byte("new")))
		if res.Replayed || string(res.Response) != "new" || runs.Load() != 2 {
			t.Fatalf("replayed=%v response=%q runs=%d, want a fresh run", res.Replayed, res.Response, runs.Load())
		}
		if got := str(e.record(r), "fingerprint"); got != r2.Fingerprint {
			t.Fatalf("record fingerprint = %q, want the new attempt's", got)
		}
	})
}

func TestNoBusinessWriteWithoutCommit(t *testing.T) {
	t.Parallel()
	e := newEnv(t, true)
	g := e.guard(idem.Config{})
	cases := []struct {
		name string
		// after runs in fn after its business write; cancel ends the caller's ctx.
		after   func(cancel context.CancelFunc) (idem.Outcome, error)
		wantErr error
	}{
		{"fn returns an error", func(context.CancelFunc) (idem.Outcome, error) { return idem.Outcome{}, errBoom }, errBoom},
		{"the caller's context ends before commit", func(cancel context.CancelFunc) (idem.Outcome, error) {
			cancel()
			return idem.Outcome{Response: []byte("late"), Keep: true}, nil
		}, context.Canceled},
		{"fn panics", func(context.CancelFunc) (idem.Outcome, error) { panic("handler crashed") }, nil},
		{"fn asks not to keep the outcome", func(context.CancelFunc) (idem.Outcome, error) {
			return idem.Outcome{Response: []byte("transient")}, nil
		}, nil},
	}
	for _, c := range cases {
		t.Run(c.name+" leaves no business write and releases the key", func(t *testing.T) {
			t.Parallel()
			r := req(uniqueKey(t), "fp")
			ctx, cancel := context.WithCancel(context.Background())
			t.Cleanup(cancel)
			var recovered any
			var err error
			func() {
				defer func() { recovered = recover() }()
				_, err = g.Do(ctx, r, func(ctx context.Context) (idem.Outcome, error) {
					if err := e.putBiz(ctx, r.Key); err != nil {
						return idem.Outcome{}, err
					}
					return c.after(cancel)
				})
			}()
			if c.name == "fn panics" && recovered != "handler crashed" {
				t.Fatalf("recovered %v, want the original panic value", recovered)
			}
			if c.wantErr == nil && err != nil || c.wantErr != nil && !errors.Is(err, c.wantErr) {
				t.Fatalf("err = %v, want %v", err, c.wantErr)
			}
			if e.bizItem(r.Key) {
				t.Fatal("the business write landed without a commit")
			}
			if e.record(r) != nil {
				t.Fatal("the record was not released")
			}
			var runs atomic.Int32
			if res := mustDo(t, g, r, respond(&runs, []byte("retry"))); res.Replayed || runs.Load() != 1 {
				t.Fatal("a retry did not run afresh")
			}
		})
	}
}

func TestBusinessConditionFailure(t *testing.T) {
	t.Parallel()
	e := newEnv(t, true)
	g := e.guard(idem.Config{})
	r := req(uniqueKey(t), "fp")
	taken := "taken-" + r.Key
	if err := e.putBiz(context.Background(), taken); err != nil {
		t.Fatal(err)
	}
	_, err := g.Do(context.Background(), r, func(ctx context.Context) (idem.Outcome, error) {
		if err := e.putBiz(ctx, "fresh-"+r.Key); err != nil {
			return idem.Outcome{}, err
		}
		return idem.Outcome{Response: []byte("x"), Keep: true}, e.putBiz(ctx, taken)
	})
	var wce *idem.WriteConditionError
	if !errors.As(err, &wce) || !errors.Is(err, idem.ErrWriteConditionFailed) {
		t.Fatalf("err = %v, want *WriteConditionError", err)
	}
	if errors.Is(err, idem.ErrCommitLost) || errors.Is(err, idem.ErrStore) {
		t.Fatalf("err = %v is misreported as a lost commit or store failure", err)
	}
	var tce *types.TransactionCanceledException
	if !errors.As(err, &tce) {
		t.Fatal("the cancellation is not wrapped")
	}
	if wce.Index != 1 || str(wce.Item, "pk") != taken {
		t.Fatalf("failed write %d with item %v, want write 1 with the existing item", wce.Index, wce.Item)
	}
	if e.bizItem("fresh-" + r.Key) {
		t.Fatal("the other business write landed")
	}
	if e.record(r) != nil {
		t.Fatal("the lease was not released")
	}
}

func TestLeaseBounds(t *testing.T) {
	t.Parallel()
	e := newEnv(t, true)

	t.Run("fn's context ends before the lease does, and the key is released", func(t *testing.T) {
		t.Parallel()
		g := e.guard(idem.Config{Lease: 200 * time.Millisecond})
		r := req(uniqueKey(t), "fp")
		_, err := g.Do(context.Background(), r, func(ctx context.Context) (idem.Outcome, error) {
			select {
			case <-ctx.Done():
				return idem.Outcome{}, ctx.Err()
			case <-time.After(10 * time.Second):
				return idem.Outcome{Keep: true}, nil
			}
		})
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v, want the lease's deadline", err)
		}
		if e.record(r) != nil {
			t.Fatal("the record was not released")
		}
	})

	t.Run("the lease is cut to the caller's deadline", func(t *testing.T) {
		t.Parallel()
		g := e.guard(idem.Config{Lease: time.Minute})
		r := req(uniqueKey(t), "fp")
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		t.Cleanup(cancel)
		callerDeadline, _ := ctx.Deadline()
		var fnDeadline time.Time
		var dupErr error
		_, err := g.Do(ctx, r, func(fctx context.Context) (idem.Outcome, error) {
			fnDeadline, _ = fctx.Deadline()
			_, dupErr = g.Do(context.Background(), r, respond(new(atomic.Int32), nil))
			return idem.Outcome{Keep: true}, nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if fnDeadline.After(callerDeadline) {
			t.Fatalf("fn's deadline %s is after the caller's %s", fnDeadline, callerDeadline)
		}
		var ip *idem.InProgressError
		if !errors.As(dupErr, &ip) || ip.RetryAfter > 5*time.Second+idem.DefaultClockSkew {
			t.Fatalf("duplicate: err = %v, want a conflict whose lease ends by the caller's deadline, not in a minute", dupErr)
		}
	})
}
