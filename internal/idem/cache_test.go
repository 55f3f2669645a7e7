package idem_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/parcelhq/orderservice/internal/idem"
)

// deleteRecord removes r's record from the table behind the guard's back,
// so only the cache can still answer it.
func (e *env) deleteRecord(r idem.Request) {
	e.t.Helper()
	_, err := e.client.DeleteItem(context.Background(), &dynamodb.DeleteItemInput{
		TableName: aws.String(e.table),
		Key:       map[string]types.AttributeValue{idem.AttrID: &types.AttributeValueMemberS{Value: idem.RecordID(r.Scope, r.Key)}},
	})
	if err != nil {
		e.t.Fatal(err)
	}
}

func TestCache(t *testing.T) {
	t.Parallel()
	e := newEnv(t, true)

	t.Run("a replayed record is served from the cache without the table", func(t *testing.T) {
		t.Parallel()
		var ev events
		g := e.guard(idem.Config{Cache: idem.NewCache(10, 1<<20), Observer: ev.observe})
		r := req(uniqueKey(t), "fp")
		var runs atomic.Int32
		mustDo(t, e.guard(idem.Config{}), r, respond(&runs, []byte("v"))) // committed by another process
		mustDo(t, g, r, respond(&runs, nil))                              // hit from the table fills the cache
		e.deleteRecord(r)
		res := mustDo(t, g, r, respond(&runs, nil))
		if !res.Replayed || string(res.Response) != "v" || runs.Load() != 1 {
			t.Fatalf("replayed=%v response=%q runs=%d, want a cached replay", res.Replayed, res.Response, runs.Load())
		}
		if last := ev.list[len(ev.list)-1]; last.Kind != idem.Hit || !last.Cached {
			t.Fatalf("last event %+v, want a cached Hit", last)
		}
		r.Fingerprint = "other"
		if _, err := g.Do(context.Background(), r, respond(&runs, nil)); !errors.Is(err, idem.ErrMismatch) {
			t.Fatalf("cached record with another fingerprint: err = %v, want ErrMismatch", err)
		}
	})

	for _, mode := range []idem.Mode{idem.Lease, idem.Optimistic} {
		t.Run(mode.String()+": a record this process committed is served from the cache without the table", func(t *testing.T) {
			t.Parallel()
			var ev events
			g := e.guard(idem.Config{Mode: mode, Cache: idem.NewCache(10, 1<<20), Observer: ev.observe})
			r := req(uniqueKey(t), "fp")
			var runs atomic.Int32
			mustDo(t, g, r, respond(&runs, []byte("mine")))
			e.deleteRecord(r) // only the cache can answer now
			res := mustDo(t, g, r, respond(&runs, []byte("again")))
			if !res.Replayed || string(res.Response) != "mine" || runs.Load() != 1 {
				t.Fatalf("replayed=%v response=%q runs=%d, want a cached replay of the commit", res.Replayed, res.Response, runs.Load())
			}
			if last := ev.list[len(ev.list)-1]; last.Kind != idem.Hit || !last.Cached {
				t.Fatalf("last event %+v, want a cached Hit", last)
			}
		})
	}

	t.Run("an in-progress record is never cached", func(t *testing.T) {
		t.Parallel()
		c := idem.NewCache(10, 1<<20)
		g := e.guard(idem.Config{Cache: c})
		r := req(uniqueKey(t), "fp")
		holding, done := holdLease(t, g, r)
		<-holding
		var runs atomic.Int32
		if _, err := g.Do(context.Background(), r, respond(&runs, nil)); !errors.Is(err, idem.ErrInProgress) {
			t.Fatalf("err = %v, want ErrInProgress", err)
		}
		if c.Len() != 0 {
			t.Fatalf("cache holds %d records after a conflict, want 0", c.Len())
		}
		done()
		if res := mustDo(t, g, r, respond(&runs, nil)); !res.Replayed || string(res.Response) != "first" {
			t.Fatalf("after completion got %q (replayed %v)", res.Response, res.Replayed)
		}
	})

	t.Run("a cached record is not served once it is within the skew of expiry", func(t *testing.T) {
		t.Parallel()
		c := idem.NewCache(10, 1<<20)
		r := req(uniqueKey(t), "fp")
		var runs atomic.Int32
		now := e.guard(idem.Config{Cache: c, Retention: time.Hour})
		mustDo(t, now, r, respond(&runs, []byte("old")))
		mustDo(t, now, r, respond(&runs, nil))
		e.deleteRecord(r)
		later := e.guard(idem.Config{Cache: c, Retention: time.Hour, Now: clock(time.Hour - time.Second)})
		if res := mustDo(t, later, r, respond(&runs, []byte("new"))); res.Replayed || string(res.Response) != "new" {
			t.Fatalf("got %q (replayed %v), want a fresh run, not the expiring cached record", res.Response, res.Replayed)
		}
	})

	t.Run("the cache stays within its entry bound, evicting the least recently used", func(t *testing.T) {
		t.Parallel()
		c := idem.NewCache(2, 1<<20)
		g := e.guard(idem.Config{Cache: c})
		var runs atomic.Int32
		var reqs []idem.Request
		for i := range 3 {
			r := req(uniqueKey(t), "fp")
			reqs = append(reqs, r)
			mustDo(t, g, r, respond(&runs, []byte{byte(i)}))
			mustDo(t, g, r, respond(&runs, nil))
		}
		if c.Len() != 2 {
			t.Fatalf("cache holds %d records, want 2", c.Len())
		}
		for _, r := range reqs {
			e.deleteRecord(r)
		}
		before := runs.Load()
		mustDo(t, g, reqs[0], respond(&runs, nil))
		if runs.Load() != before+1 {
			t.Fatal("the evicted record was served")
		}
		if res := mustDo(t, g, reqs[2], respond(&runs, nil)); !res.Replayed {
			t.Fatal("the most recent record was not served from the cache")
		}
	})

	t.Run("the cache stays within its byte bound", func(t *testing.T) {
		t.Parallel()
		c := idem.NewCache(100, 10_000)
		g := e.guard(idem.Config{Cache: c})
		var runs atomic.Int32
		for range 5 {
			r := req(uniqueKey(t), "fp")
			mustDo(t, g, r, respond(&runs, randomBytes(3000)))
			mustDo(t, g, r, respond(&runs, nil))
			if c.Bytes() > 10_000 {
				t.Fatalf("cache holds %d bytes, bound 10000", c.Bytes())
			}
		}
		if c.Len() == 0 || c.Len() > 3 {
			t.Fatalf("cache holds %d records of 3000 bytes within 10000", c.Len())
		}
		r := req(uniqueKey(t), "fp")
		mustDo(t, g, r, respond(&runs, randomBytes(20_000)))
		mustDo(t, g, r, respond(&runs, nil))
		if c.Bytes() > 10_000 {
			t.Fatal("a record larger than the bound was cached")
		}
	})
}

// TestResultsAreTheCallersToKeep: a Result's Response belongs to the caller;
// changing it, or the slice fn returned, never changes what later replays
// answer, wherever the response came from.
func TestResultsAreTheCallersToKeep(t *testing.T) {
	t.Parallel()
	e := newEnv(t, true)
	const want = "original"
	scribble := func(b []byte) {
		for i := range b {
			b[i] = 'X'
		}
	}
	for _, mode := range []idem.Mode{idem.Lease, idem.Optimistic} {
		for _, tc := range []struct {
			name  string
			first func(t *testing.T, g *idem.Guard, r idem.Request) idem.Result
		}{
			{"the response of a fresh run", func(t *testing.T, g *idem.Guard, r idem.Request) idem.Result {
				fnBuf := []byte(want)
				res := mustDo(t, g, r, func(context.Context) (idem.Outcome, error) {
					return idem.Outcome{Response: fnBuf, Keep: true}, nil
				})
				scribble(fnBuf) // fn may reuse its buffer once it returned
				return res
			}},
			{"a replay read from the table", func(t *testing.T, g *idem.Guard, r idem.Request) idem.Result {
				var runs atomic.Int32
				mustDo(t, e.guard(idem.Config{Mode: mode}), r, respond(&runs, []byte(want))) // another process
				return mustDo(t, g, r, respond(&runs, []byte("other")))
			}},
		} {
			t.Run(mode.String()+": changing "+tc.name+" changes no later replay", func(t *testing.T) {
				t.Parallel()
				g := e.guard(idem.Config{Mode: mode, Cache: idem.NewCache(10, 1<<20)})
				r := req(uniqueKey(t), "fp")
				res := tc.first(t, g, r)
				scribble(res.Response)
				var runs atomic.Int32
				for i := range 2 { // from the cache: then change that replay too
					again := mustDo(t, g, r, respond(&runs, []byte("other")))
					if !again.Replayed || string(again.Response) != want {
						t.Fatalf("replay %d = %q (replayed %v), want %q", i+1, again.Response, again.Replayed, want)
					}
					scribble(again.Response)
				}
			})
		}
	}
}
