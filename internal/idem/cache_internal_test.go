package idem

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// TestCacheOrder checks the cache's recency list against a model, a slice of
// ids from the most to the least recently used, over random puts, gets and
// expiries: after every operation the cache holds exactly the model's records
// in the model's order, within both bounds, and its byte count is theirs.
func TestCacheOrder(t *testing.T) {
	for seed := uint64(1); seed <= 20; seed++ {
		t.Run(fmt.Sprintf("seed %d: the cache evicts exactly the least recently used", seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 0))
			const maxEntries, maxBytes = 5, 5 * 130
			c := NewCache(maxEntries, maxBytes)
			now := time.Unix(1_700_000_000, 0)
			var model []string // most recently used first
			entries := map[string]cacheEntry{}
			size := func(ids []string) int64 {
				var n int64
				for _, id := range ids {
					e := entries[id]
					n += e.size()
				}
				return n
			}
			for op := range 400 {
				id := fmt.Sprintf("k%d", rng.IntN(9))
				switch rng.IntN(3) {
				case 0, 1: // put
					e := cacheEntry{id: id, fingerprint: "fp", response: make([]byte, rng.IntN(80)), expiresAt: now.Add(time.Duration(1+rng.IntN(4)) * time.Minute)}
					c.put(e.id, e.fingerprint, e.response, e.expiresAt)
					entries[id] = e
					model = slices.Insert(slices.DeleteFunc(model, func(s string) bool { return s == id }), 0, id)
					for len(model) > maxEntries || size(model) > maxBytes {
						model = model[:len(model)-1]
					}
				case 2: // get, now and then past the record's expiry
					horizon := now
					if rng.IntN(4) == 0 {
						horizon = now.Add(3 * time.Minute)
					}
					got, ok := c.get(id, horizon)
					i := slices.Index(model, id)
					want := i >= 0 && horizon.Before(entries[id].expiresAt)
					if ok != want {
						t.Fatalf("op %d: get(%s) found %v, want %v", op, id, ok, want)
					}
					switch {
					case want:
						if got.id != id || len(got.response) != len(entries[id].response) || !got.expiresAt.Equal(entries[id].expiresAt) {
							t.Fatalf("op %d: get(%s) = %+v, want %+v", op, id, got, entries[id])
						}
						model = slices.Insert(slices.Delete(model, i, i+1), 0, id)
					case i >= 0: // expired: dropped
						model = slices.Delete(model, i, i+1)
					}
				}
				var held []string
				for el := c.ll.Front(); el != nil; el = el.Next() {
					e := el.Value.(*cacheEntry)
					if c.byID[e.id] != el {
						t.Fatalf("op %d: %s's index entry is not its list element", op, e.id)
					}
					held = append(held, e.id)
				}
				if !slices.Equal(held, model) || c.Len() != len(model) || c.Bytes() != size(model) {
					t.Fatalf("op %d: cache holds %v (%d, %d bytes), want %v (%d bytes)", op, held, c.Len(), c.Bytes(), model, size(model))
				}
			}
		})
	}
}
