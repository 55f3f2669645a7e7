package idem_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parcelhq/orderservice/internal/idem"
)

// TestNotStoredAnswer holds both modes to one rule for an answer fn does not
// keep (Keep=false, a 5xx say): the key's record decides first, so a request
// that the record refuses or answers never gets the unstored answer, and
// nothing of the attempt is written.
func TestNotStoredAnswer(t *testing.T) {
	t.Parallel()
	e := newEnv(t, true)
	for _, mode := range []idem.Mode{idem.Lease, idem.Optimistic} {
		g := e.guard(idem.Config{Mode: mode})
		// unstored answers "try later" and enlists a business write of pk.
		unstored := func(pk string) func(context.Context) (idem.Outcome, error) {
			return func(ctx context.Context) (idem.Outcome, error) {
				return idem.Outcome{Response: []byte("try later")}, e.putBiz(ctx, pk)
			}
		}

		t.Run(mode.String()+": a different request with a used key is a mismatch, not the unstored answer", func(t *testing.T) {
			t.Parallel()
			r := req(uniqueKey(t), "fp-1")
			var runs atomic.Int32
			mustDo(t, g, r, respond(&runs, []byte("first")))
			other := r
			other.Fingerprint = "fp-2"
			res, err := g.Do(context.Background(), other, unstored(r.Key+"-other"))
			if !errors.Is(err, idem.ErrMismatch) {
				t.Fatalf("Do = %q, %v; want ErrMismatch", res.Response, err)
			}
			if e.bizItem(r.Key + "-other") {
				t.Fatal("the mismatched request's write landed")
			}
			if got := str(e.record(r), "fingerprint"); got != "fp-1" {
				t.Fatalf("record fingerprint %q, want fp-1", got)
			}
		})

		t.Run(mode.String()+": a retry of a completed request replays the stored answer", func(t *testing.T) {
			t.Parallel()
			r := req(uniqueKey(t), "fp")
			var runs atomic.Int32
			mustDo(t, g, r, respond(&runs, []byte("first")))
			res := mustDo(t, g, r, unstored(r.Key+"-retry"))
			if !res.Replayed || string(res.Response) != "first" {
				t.Fatalf("got %q (replayed %v), want the stored first answer replayed", res.Response, res.Replayed)
			}
			if e.bizItem(r.Key + "-retry") {
				t.Fatal("the retry's write landed")
			}
		})

		t.Run(mode.String()+": a request while a lease holds the key is in progress", func(t *testing.T) {
			t.Parallel()
			r := req(uniqueKey(t), "fp")
			holding, done := holdLease(t, e.guard(idem.Config{}), r)
			t.Cleanup(func() { done() })
			<-holding
			if res, err := g.Do(context.Background(), r, unstored(r.Key+"-dup")); !errors.Is(err, idem.ErrInProgress) {
				t.Fatalf("Do = %q, %v; want ErrInProgress", res.Response, err)
			}
			if e.bizItem(r.Key + "-dup") {
				t.Fatal("the duplicate's write landed")
			}
		})

		t.Run(mode.String()+": on a free or expired key the unstored answer is returned and nothing is stored", func(t *testing.T) {
			t.Parallel()
			fresh := req(uniqueKey(t), "fp")
			if res := mustDo(t, g, fresh, unstored(fresh.Key)); res.Replayed || string(res.Response) != "try later" {
				t.Fatalf("got %q (replayed %v), want the unstored answer", res.Response, res.Replayed)
			}
			if e.record(fresh) != nil || e.bizItem(fresh.Key) {
				t.Fatal("a Keep=false answer stored something")
			}

			expired := req(uniqueKey(t), "fp-1")
			var runs atomic.Int32
			mustDo(t, g, expired, respond(&runs, []byte("old")))
			later := e.guard(idem.Config{Mode: mode, Retention: time.Hour, Now: clock(25 * time.Hour)})
			expired.Fingerprint = "fp-2"
			if res := mustDo(t, later, expired, unstored(expired.Key)); res.Replayed || string(res.Response) != "try later" {
				t.Fatalf("after expiry got %q (replayed %v), want the unstored answer", res.Response, res.Replayed)
			}
			if e.bizItem(expired.Key) {
				t.Fatal("a Keep=false answer's write landed")
			}
		})
	}
}
