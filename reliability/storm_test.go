package reliability_test

import (
	"context"
	"math/rand/v2"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/parcelhq/orderservice/internal/idem/idemhttp"
	"github.com/parcelhq/orderservice/internal/problem"
)

// TestReliabilityDuplicateStorm sends a storm of creates — one hot key sent
// hundreds of times plus fresh keys each sent a few times — concurrently and
// spread over four processes of the real local/serve binary sharing one pair
// of tables, in each guard mode. It proves: exactly one order per key; every
// 201 for a key is byte-identical (the first answer and every replay); every
// other answer is 409 idempotency-key-in-use with Retry-After; and the key's
// stored outcome replays that same body afterwards.
func TestReliabilityDuplicateStorm(t *testing.T) {
	for _, mode := range []string{"lease", "optimistic", "item"} {
		t.Run("in "+mode+" mode one key gets one order however many processes race for it", func(t *testing.T) {
			storm(t, mode, scale(1000, 20000), 64, 4)
		})
	}
}

func storm(t *testing.T, mode string, total, inflight, procs int) {
	tb := newTables(t)
	bin := serveBin(t)
	var servers []*proc
	for i := 0; i < procs; i++ {
		servers = append(servers, start(t, bin, tb.env(mode)...))
	}

	// Two in five requests carry the hot key; the rest go to fresh keys, three
	// requests each, shuffled so duplicates of a fresh key race too.
	hot := newKey("hot")
	keys := []string{hot}
	var plan []string
	for len(plan) < total {
		if len(plan)%5 < 2 {
			plan = append(plan, hot)
			continue
		}
		k := newKey("fresh")
		keys = append(keys, k)
		for j := 0; j < 3 && len(plan) < total; j++ {
			plan = append(plan, k)
		}
	}
	rand.Shuffle(len(plan), func(i, j int) { plan[i], plan[j] = plan[j], plan[i] })

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	type answer struct {
		key string
		r   resp
	}
	answers := make([]answer, len(plan))
	sem := make(chan struct{}, inflight)
	var wg sync.WaitGroup
	began := time.Now()
	for i, key := range plan {
		sem <- struct{}{}
		wg.Add(1)
		go func(i int, key string) {
			defer func() { <-sem; wg.Done() }()
			answers[i] = answer{key, create(ctx, servers[i%len(servers)].URL, key, "application/json", []byte(orderBody(key)))}
		}(i, key)
	}
	wg.Wait()
	elapsed := time.Since(began)

	var first, replays, conflicts int
	bodies := map[string][]byte{}
	for _, a := range answers {
		r := a.r
		switch {
		case r.Err != nil:
			t.Errorf("key %s: %v", a.key, r.Err)
		case r.Status == http.StatusCreated:
			if r.Header.Get(idemhttp.HeaderReplayed) == "true" {
				replays++
			} else {
				first++
			}
			if prev, ok := bodies[a.key]; ok && string(prev) != string(r.Body) {
				t.Errorf("key %s: two different 201 bodies:\n%s\n%s", a.key, prev, r.Body)
			}
			bodies[a.key] = r.Body
		case r.Status == http.StatusConflict && r.Header.Get("Retry-After") != "" &&
			r.Header.Get("Content-Type") == problem.ContentType && problemType(r) == problem.Type(idemhttp.TypeKeyInUse):
			conflicts++
		default:
			t.Errorf("key %s: want 201 or 409 key-in-use with Retry-After, got %v (Retry-After %q)", a.key, r, r.Header.Get("Retry-After"))
		}
	}
	if first != len(keys) {
		t.Errorf("%d first (not replayed) 201s for %d keys: want exactly one per key", first, len(keys))
	}

	// Afterwards every key replays its one outcome, from any process.
	for i, key := range keys {
		r := create(ctx, servers[(i+1)%len(servers)].URL, key, "application/json", []byte(orderBody(key)))
		if r.Err != nil || r.Status != http.StatusCreated || r.Header.Get(idemhttp.HeaderReplayed) != "true" {
			t.Errorf("key %s: replay after the storm: %v", key, r)
			continue
		}
		if b, ok := bodies[key]; ok && string(b) != string(r.Body) {
			t.Errorf("key %s: replay differs from the storm's 201:\n%s\n%s", key, b, r.Body)
		}
		bodies[key] = r.Body
	}

	orders := scanOrders(t, tb.Orders)
	byDesc := ordersByDescription(orders)
	if len(orders) != len(keys) {
		t.Errorf("%d orders in the table for %d keys", len(orders), len(keys))
	}
	for _, key := range keys {
		ids := byDesc[key]
		if len(ids) != 1 {
			t.Errorf("key %s: %d orders %v, want exactly 1", key, len(ids), ids)
			continue
		}
		if got := (resp{Body: bodies[key]}).orderID(); got != ids[0] {
			t.Errorf("key %s: clients were told order %q, the table holds %q", key, got, ids[0])
		}
	}
	t.Logf("FIGURES storm mode=%s processes=%d requests=%d keys=%d in-flight=%d: %.0f req/s (%.2fs); 201 first=%d replayed=%d; 409=%d",
		mode, len(servers), len(plan), len(keys), inflight, float64(len(plan))/elapsed.Seconds(), elapsed.Seconds(), first, replays, conflicts)
}
