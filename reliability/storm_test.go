package reliability_test

import (
	"context"
	"math/rand/v2"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/parcelhq/orderservice/internal/idem/idemhttp"
	"github.com/parcelhq/orderservice/internal/problem"
)

// TestReliabilityDuplicateStorm sends a storm of creates — one hot key sent
// hundreds of times by two callers plus fresh keys each sent a few times,
// and some requests without a token — concurrently and spread over four
// processes of the real local/serve binary sharing one pair of tables, in
// each guard mode. It proves: exactly one order per caller and key (the hot
// key is two orders, one per caller); every 201 a caller gets for a key is
// byte-identical (the first answer and every replay) and never the other
// caller's; every other answer is 409 idempotency-key-in-use with
// Retry-After; a request without a token is API Gateway's 401 and books
// nothing; and each stored outcome replays that same body afterwards.
func TestReliabilityDuplicateStorm(t *testing.T) {
	for _, mode := range []string{"lease", "optimistic"} {
		t.Run("in "+mode+" mode one key gets one order per caller however many processes race for it", func(t *testing.T) {
			storm(t, mode, scale(1000, 20000), 64, 4)
		})
	}
}

// stormCaller is who sends a storm request.
type stormCaller int

const (
	callerA stormCaller = iota
	callerB
	anonymous
)

func (c stormCaller) authorization() string {
	switch c {
	case callerA:
		return bearer
	case callerB:
		return otherBearer
	}
	return ""
}

func storm(t *testing.T, mode string, total, inflight, procs int) {
	tb := newTables(t)
	bin := serveBin(t)
	var servers []*proc
	for i := 0; i < procs; i++ {
		servers = append(servers, start(t, bin, tb.env(mode)...))
	}

	type shot struct {
		key string
		who stormCaller
	}
	type ck struct {
		who stormCaller
		key string
	}
	// Two in five requests carry the hot key, from caller A or B in turn;
	// one in 25 is a fresh key sent without a token; the rest go to fresh
	// keys of caller A, three requests each. Shuffled, so duplicates race.
	hot := newKey("hot")
	pairs := []ck{{callerA, hot}, {callerB, hot}}
	var plan []shot
	var anonKeys []string
	for n := 0; len(plan) < total; n++ {
		switch {
		case len(plan)%5 < 2:
			plan = append(plan, shot{hot, stormCaller(n % 2)})
			continue
		case len(plan)%25 == 2:
			k := newKey("anon")
			anonKeys = append(anonKeys, k)
			plan = append(plan, shot{k, anonymous})
			continue
		}
		k := newKey("fresh")
		pairs = append(pairs, ck{callerA, k})
		for j := 0; j < 3 && len(plan) < total; j++ {
			plan = append(plan, shot{k, callerA})
		}
	}
	rand.Shuffle(len(plan), func(i, j int) { plan[i], plan[j] = plan[j], plan[i] })

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	answers := make([]resp, len(plan))
	sem := make(chan struct{}, inflight)
	var wg sync.WaitGroup
	began := time.Now()
	for i, s := range plan {
		sem <- struct{}{}
		wg.Add(1)
		go func(i int, s shot) {
			defer func() { <-sem; wg.Done() }()
			answers[i] = createAs(ctx, s.who.authorization(), servers[i%len(servers)].URL, s.key, "application/json", []byte(orderBody(s.key)))
		}(i, s)
	}
	wg.Wait()
	elapsed := time.Since(began)

	var first, replays, conflicts, refused int
	bodies := map[ck][]byte{}
	for i, r := range answers {
		s := plan[i]
		switch {
		case r.Err != nil:
			t.Errorf("key %s: %v", s.key, r.Err)
		case s.who == anonymous:
			if r.Status != http.StatusUnauthorized || string(r.Body) != `{"message":"Unauthorized"}` {
				t.Errorf("key %s without a token: want API Gateway's 401, got %v", s.key, r)
			}
			refused++
		case r.Status == http.StatusCreated:
			if r.Header.Get(idemhttp.HeaderReplayed) == "true" {
				replays++
			} else {
				first++
			}
			c := ck{s.who, s.key}
			if prev, ok := bodies[c]; ok && string(prev) != string(r.Body) {
				t.Errorf("caller %d key %s: two different 201 bodies:\n%s\n%s", s.who, s.key, prev, r.Body)
			}
			bodies[c] = r.Body
		case r.Status == http.StatusConflict && r.Header.Get("Retry-After") != "" &&
			r.Header.Get("Content-Type") == problem.ContentType && problemType(r) == problem.Type(idemhttp.TypeKeyInUse):
			conflicts++
		default:
			t.Errorf("key %s: want 201 or 409 key-in-use with Retry-After, got %v (Retry-After %q)", s.key, r, r.Header.Get("Retry-After"))
		}
	}
	if first != len(pairs) {
		t.Errorf("%d first (not replayed) 201s for %d caller-key pairs: want exactly one per caller and key", first, len(pairs))
	}
	if a, b := bodies[ck{callerA, hot}], bodies[ck{callerB, hot}]; a != nil && b != nil &&
		(resp{Body: a}).orderID() == (resp{Body: b}).orderID() {
		t.Errorf("callers A and B share the hot key's order %s", (resp{Body: a}).orderID())
	}

	// Afterwards every caller's key replays its one outcome, from any process.
	for i, c := range pairs {
		r := createAs(ctx, c.who.authorization(), servers[(i+1)%len(servers)].URL, c.key, "application/json", []byte(orderBody(c.key)))
		if r.Err != nil || r.Status != http.StatusCreated || r.Header.Get(idemhttp.HeaderReplayed) != "true" {
			t.Errorf("caller %d key %s: replay after the storm: %v", c.who, c.key, r)
			continue
		}
		if b, ok := bodies[c]; ok && string(b) != string(r.Body) {
			t.Errorf("caller %d key %s: replay differs from the storm's 201:\n%s\n%s", c.who, c.key, b, r.Body)
		}
		bodies[c] = r.Body
	}

	orders := scanOrders(t, tb.Orders)
	byDesc := ordersByDescription(orders)
	if len(orders) != len(pairs) {
		t.Errorf("%d orders in the table for %d caller-key pairs", len(orders), len(pairs))
	}
	for _, k := range anonKeys {
		if ids := byDesc[k]; len(ids) != 0 {
			t.Errorf("key %s, sent without a token, booked %v", k, ids)
		}
	}
	for _, c := range pairs {
		ids := byDesc[c.key]
		want := 1
		if c.key == hot {
			want = 2
		}
		if len(ids) != want {
			t.Errorf("key %s: %d orders %v, want %d", c.key, len(ids), ids, want)
			continue
		}
		if got := (resp{Body: bodies[c]}).orderID(); !slices.Contains(ids, got) {
			t.Errorf("caller %d key %s: told order %q, the table holds %v", c.who, c.key, got, ids)
		}
	}
	t.Logf("FIGURES storm mode=%s processes=%d requests=%d caller-key pairs=%d in-flight=%d: %.0f req/s (%.2fs); 201 first=%d replayed=%d; 409=%d; 401=%d",
		mode, len(servers), len(plan), len(pairs), inflight, float64(len(plan))/elapsed.Seconds(), elapsed.Seconds(), first, replays, conflicts, refused)
}
