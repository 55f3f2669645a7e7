package idem_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parcelhq/orderservice/internal/idem"
)

func TestOptimistic(t *testing.T) {
	t.Parallel()
	e := newEnv(t, true)
	g := e.guard(idem.Config{Mode: idem.Optimistic})

	// writeAndRespond makes a business write unique to this run and answers
	// with its name, so the table shows which run committed.
	writeAndRespond := func(runs *atomic.Int32, key string) func(context.Context) (idem.Outcome, error) {
		return func(ctx context.Context) (idem.Outcome, error) {
			pk := fmt.Sprintf("%s-run-%d", key, runs.Add(1))
			return idem.Outcome{Response: []byte(pk), Keep: true}, e.putBiz(ctx, pk)
		}
	}

	t.Run("a miss commits and a retry replays the winner without committing its own writes", func(t *testing.T) {
		t.Parallel()
		r := req(uniqueKey(t), "fp")
		var runs atomic.Int32
		first := mustDo(t, g, r, writeAndRespond(&runs, r.Key))
		second := mustDo(t, g, r, writeAndRespond(&runs, r.Key))
		if first.Replayed || !second.Replayed || !bytes.Equal(first.Response, second.Response) {
			t.Fatalf("got %q (replayed %v) then %q (replayed %v)", first.Response, first.Replayed, second.Response, second.Replayed)
		}
		if !e.bizItem(r.Key+"-run-1") || e.bizItem(r.Key+"-run-2") {
			t.Fatal("business writes: want only the first run's")
		}
	})

	t.Run("without business writes a miss and a hit work alike", func(t *testing.T) {
		t.Parallel()
		r := req(uniqueKey(t), "fp")
		var runs atomic.Int32
		first := mustDo(t, g, r, respond(&runs, []byte("one")))
		second := mustDo(t, g, r, respond(&runs, []byte("two")))
		if string(first.Response) != "one" || string(second.Response) != "one" || !second.Replayed {
			t.Fatalf("got %q then %q, want one twice", first.Response, second.Response)
		}
	})

	t.Run("concurrent duplicates commit exactly once and all others replay the winner", func(t *testing.T) {
		t.Parallel()
		r := req(uniqueKey(t), "fp")
		const n = 50
		var runs atomic.Int32
		results := make([]idem.Result, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() { results[i], errs[i] = g.Do(context.Background(), r, writeAndRespond(&runs, r.Key)) })
		}
		wg.Wait()
		fresh := 0
		for i := range n {
			if errs[i] != nil {
				t.Fatalf("request %d: %v", i, errs[i])
			}
			if !results[i].Replayed {
				fresh++
			}
			if !bytes.Equal(results[i].Response, results[0].Response) {
				t.Fatalf("request %d got %q, request 0 got %q", i, results[i].Response, results[0].Response)
			}
		}
		if fresh != 1 {
			t.Fatalf("%d requests committed, want 1", fresh)
		}
		if !e.bizItem(string(results[0].Response)) {
			t.Fatal("the winner's business write is missing")
		}
		committed := 0
		for i := 1; i <= int(runs.Load()); i++ {
			if e.bizItem(fmt.Sprintf("%s-run-%d", r.Key, i)) {
				committed++
			}
		}
		if committed != 1 {
			t.Fatalf("%d runs' business writes landed, want 1", committed)
		}
	})

	t.Run("a key reused with another fingerprint is a mismatch and writes nothing", func(t *testing.T) {
		t.Parallel()
		r := req(uniqueKey(t), "fp-1")
		var runs atomic.Int32
		mustDo(t, g, r, writeAndRespond(&runs, r.Key))
		r.Fingerprint = "fp-2"
		if _, err := g.Do(context.Background(), r, writeAndRespond(&runs, r.Key)); !errors.Is(err, idem.ErrMismatch) {
			t.Fatalf("err = %v, want ErrMismatch", err)
		}
		if e.bizItem(r.Key + "-run-2") {
			t.Fatal("the mismatched request's write landed")
		}
	})

	t.Run("a record held by a lease-mode attempt answers ErrInProgress", func(t *testing.T) {
		t.Parallel()
		r := req(uniqueKey(t), "fp")
		holding, done := holdLease(t, e.guard(idem.Config{}), r)
		t.Cleanup(func() { done() })
		<-holding
		var runs atomic.Int32
		if _, err := g.Do(context.Background(), r, writeAndRespond(&runs, r.Key)); !errors.Is(err, idem.ErrInProgress) {
			t.Fatalf("err = %v, want ErrInProgress", err)
		}
		if e.bizItem(r.Key + "-run-1") {
			t.Fatal("the losing attempt's write landed")
		}
	})

	t.Run("Keep=false writes nothing and a retry runs afresh", func(t *testing.T) {
		t.Parallel()
		r := req(uniqueKey(t), "fp")
		res, err := g.Do(context.Background(), r, func(ctx context.Context) (idem.Outcome, error) {
			return idem.Outcome{Response: []byte("try later")}, e.putBiz(ctx, r.Key)
		})
		if err != nil || string(res.Response) != "try later" {
			t.Fatalf("Do = %q, %v", res.Response, err)
		}
		if e.bizItem(r.Key) || e.record(r) != nil {
			t.Fatal("Keep=false stored something")
		}
		var runs atomic.Int32
		if res := mustDo(t, g, r, respond(&runs, []byte("ok"))); res.Replayed || runs.Load() != 1 {
			t.Fatal("the retry did not run")
		}
	})

	t.Run("an expired record is replaced", func(t *testing.T) {
		t.Parallel()
		r := req(uniqueKey(t), "fp")
		var runs atomic.Int32
		mustDo(t, g, r, respond(&runs, []byte("old")))
		later := e.guard(idem.Config{Mode: idem.Optimistic, Retention: time.Hour, Now: clock(25 * time.Hour)})
		if res := mustDo(t, later, r, respond(&runs, []byte("new"))); res.Replayed || string(res.Response) != "new" {
			t.Fatalf("got %q (replayed %v), want a fresh commit", res.Response, res.Replayed)
		}
	})
}
