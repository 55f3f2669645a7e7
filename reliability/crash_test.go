package reliability_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/parcelhq/orderservice/internal/idem/idemhttp"
)

// Guard timings of every crashserve process in the crash and fault tests: a
// dead attempt's lease lapses (for another process) 1.1 s after it was taken.
var shortLease = []string{"CRASHSERVE_LEASE=1s", "CRASHSERVE_CLOCK_SKEW=100ms"}

// TestReliabilityCrashAtEveryStep kills a serving process with SIGKILL at each
// point of an attempt — after the lease is acquired, inside the handler,
// after the handler before the commit, after the commit before the response —
// in each mode where the point exists, and then retries the same request on
// a live process until it succeeds. It proves, for every iteration: the
// client of the dead attempt got no answer; exactly one order exists for the
// key (none lost, none doubled); the retry's 201 names that order; and a
// further retry replays it byte for byte.
func TestReliabilityCrashAtEveryStep(t *testing.T) {
	n := scale(3, 50)
	cases := []struct{ mode, at string }{
		{"lease", "acquired"}, {"lease", "handler"}, {"lease", "handled"}, {"lease", "committed"},
		{"optimistic", "handler"}, {"optimistic", "handled"}, {"optimistic", "committed"},
		{"item", "handler"}, {"item", "handled"}, {"item", "committed"},
	}
	for _, c := range cases {
		t.Run("in "+c.mode+" mode a crash "+describeCrash[c.at]+" neither loses nor doubles the order", func(t *testing.T) {
			t.Parallel()
			crashLoop(t, c.mode, c.at, n)
		})
	}
}

var describeCrash = map[string]string{
	"acquired":  "after acquiring the key",
	"handler":   "inside the handler",
	"handled":   "after the handler and before the commit",
	"committed": "after the commit and before the response",
}

func crashLoop(t *testing.T, mode, at string, n int) {
	tb := newTables(t)
	bin := crashBin(t)
	env := append(tb.env(mode), shortLease...)
	live := start(t, bin, env...)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()

	keys := map[string]string{} // key -> order id the client finally got
	var conflicts, attemptsTotal, replayedFirst int
	began := time.Now()
	for i := 0; i < n; i++ {
		key := newKey("crash-" + at)
		body := orderBody(key)
		doomed := start(t, bin, append(env, "CRASH_AT="+at)...)
		if r := create(ctx, doomed.URL, key, "application/json", []byte(body)); r.Err == nil {
			t.Fatalf("iteration %d: the crashing process answered %v", i, r)
		}
		if !doomed.waitKilled(t) {
			t.Fatalf("iteration %d: the process was not killed by SIGKILL: %v\n%s", i, doomed.state, doomed.logs())
		}

		got, attempts := retryUntilCreated(t, live.URL, key, body, 100)
		conflicts += attempts - 1
		attemptsTotal += attempts
		if got.Header.Get(idemhttp.HeaderReplayed) == "true" {
			replayedFirst++
		}
		again := create(ctx, live.URL, key, "application/json", []byte(body))
		if again.Err != nil || again.Status != http.StatusCreated || again.Header.Get(idemhttp.HeaderReplayed) != "true" || string(again.Body) != string(got.Body) {
			t.Fatalf("iteration %d: a further retry is not a byte-identical replay:\n got %v\nwant %v", i, again, got)
		}
		keys[key] = got.orderID()
	}

	orders := scanOrders(t, tb.Orders)
	byDesc := ordersByDescription(orders)
	if len(orders) != n {
		t.Errorf("%d orders after %d crashed-and-retried requests", len(orders), n)
	}
	for key, id := range keys {
		if ids := byDesc[key]; len(ids) != 1 || ids[0] != id {
			t.Errorf("key %s: the client got order %s, the table holds %v", key, id, ids)
		}
	}
	// A crash before the commit leaves nothing to replay; after it, the
	// retry must be the replay of what the dead process committed.
	wantReplayed := 0
	if at == "committed" {
		wantReplayed = n
	}
	if replayedFirst != wantReplayed {
		t.Errorf("%d of %d retries answered with a replay, want %d", replayedFirst, n, wantReplayed)
	}
	t.Logf("FIGURES crash mode=%s at=%s iterations=%d: retries until 201=%d (409 or 5xx before it=%d), %.1fs",
		mode, at, n, attemptsTotal, conflicts, time.Since(began).Seconds())
}
