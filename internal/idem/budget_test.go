package idem_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/parcelhq/orderservice/internal/idem"
)

// TestCommitBudget: fn's context ends a commit budget before the caller's
// deadline (a Lambda's), so a handler that honours its context and returns
// when it ends still has its outcome and its writes committed.
func TestCommitBudget(t *testing.T) {
	t.Parallel()
	e := newEnv(t, true)
	for _, mode := range []idem.Mode{idem.Lease, idem.Optimistic} {
		t.Run(fmt.Sprintf("%s: a handler that returns when its context ends is committed before the caller's deadline", mode), func(t *testing.T) {
			t.Parallel()
			g := e.guard(idem.Config{Mode: mode})
			r := req(uniqueKey(t), "fp")
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			t.Cleanup(cancel)
			callerDeadline, _ := ctx.Deadline()
			var fnDeadline time.Time
			res, err := g.Do(ctx, r, func(fctx context.Context) (idem.Outcome, error) {
				fnDeadline, _ = fctx.Deadline()
				if err := e.putBiz(fctx, r.Key); err != nil {
					return idem.Outcome{}, err
				}
				<-fctx.Done() // a slow handler that stops when told to
				return idem.Outcome{Response: []byte("in time"), Keep: true}, nil
			})
			if err != nil || string(res.Response) != "in time" {
				t.Fatalf("Do = %q, %v; want the handler's outcome committed", res.Response, err)
			}
			if left := callerDeadline.Sub(fnDeadline); left < 500*time.Millisecond {
				t.Fatalf("fn's context ends %v before the caller's, want at least half the default budget", left)
			}
			if str(e.record(r), "status") != "COMPLETED" || !e.bizItem(r.Key) {
				t.Fatal("the outcome and the business write are not both committed")
			}
		})
	}

	// The gap between the lease's end in the record and fn's deadline is the
	// budget; it can only shrink, by the scheduling delay between the two
	// clock readings, so each case checks a range that tells the budgets apart.
	for _, tc := range []struct {
		name         string
		cfg          idem.Config
		wantLo, want time.Duration
	}{
		{"lease: fn's context ends a configured CommitBudget before the lease", idem.Config{Lease: 5 * time.Second, CommitBudget: 1500 * time.Millisecond},
			1250 * time.Millisecond, 1500 * time.Millisecond},
		{"lease: fn's context ends the default budget before the lease", idem.Config{Lease: 5 * time.Second},
			750 * time.Millisecond, idem.DefaultCommitBudget},
		{"lease: a lease shorter than twice the budget is split evenly between fn and the commit", idem.Config{Lease: 600 * time.Millisecond},
			200 * time.Millisecond, 300 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			g := e.guard(tc.cfg)
			r := req(uniqueKey(t), "fp")
			var fnDeadline, leaseEnd time.Time
			mustDo(t, g, r, func(fctx context.Context) (idem.Outcome, error) {
				fnDeadline, _ = fctx.Deadline()
				leaseEnd = time.UnixMilli(num(e.record(r), "lease_until"))
				return idem.Outcome{Keep: true}, nil
			})
			// lease_until is stored in whole milliseconds, rounded down.
			if gap := leaseEnd.Sub(fnDeadline); gap < tc.wantLo || gap > tc.want+time.Millisecond {
				t.Fatalf("fn's context ends %v before the lease, want %v", gap, tc.want)
			}
		})
	}
}
