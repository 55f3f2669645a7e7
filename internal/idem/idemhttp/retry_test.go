package idemhttp

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/parcelhq/orderservice/internal/idem"
)

func TestTheRetryHintIsReadFromIdempotencyRetryQuestionOneOnly(t *testing.T) {
	t.Parallel()
	var (
		mu   sync.Mutex
		last idem.Event
	)
	cfg := idem.Config{Observer: func(_ context.Context, e idem.Event) {
		mu.Lock()
		last = e
		mu.Unlock()
	}}
	h := newHarness(t, cfg, Options{}, createOrder)
	for _, tc := range []struct {
		name   string
		values []string
		hint   bool
	}{
		{"?1 is the hint", []string{"?1"}, true},
		{"?1 with spaces around it is the hint", []string{" ?1\t"}, true},
		{"?0 is no hint", []string{"?0"}, false},
		{"1 is no hint (not a Structured Field Boolean)", []string{"1"}, false},
		{"true is no hint", []string{"true"}, false},
		{"two fields are no hint", []string{"?1", "?1"}, false},
		{"no field is no hint", nil, false},
	} {
		t.Run(tc.name+", and the retry gets the same replay either way", func(t *testing.T) {
			key := "hint-" + randomID()
			first := h.send(t, "/orders", "application/json", order, key)
			if first.Status != http.StatusCreated {
				t.Fatalf("first: %d %s", first.Status, first.Body)
			}
			hdr := http.Header{HeaderKey: {key}}
			if tc.values != nil {
				hdr[HeaderRetry] = tc.values
			}
			replay := h.sendWith(t, "/orders", "application/json", strings.NewReader(order), hdr)
			wantReplayOf(t, first, replay)
			mu.Lock()
			e := last
			mu.Unlock()
			if e.Kind != idem.Hit || e.ReadFirst != tc.hint {
				t.Fatalf("the guard saw %v with ReadFirst %v, want a hit with ReadFirst %v", e.Kind, e.ReadFirst, tc.hint)
			}
		})
	}
	if runs := h.runs.Load(); runs != 7 {
		t.Fatalf("the handler ran %d times, want once per key (7)", runs)
	}
}
