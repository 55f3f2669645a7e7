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

// The wire trims a field's value before the middleware sees it; a request
// built in process does not, and retried trims it all the same.
func TestRetriedOnTheHeaderAsGiven(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		values []string
		want   bool
	}{
		{[]string{" ?1\t"}, true},
		{[]string{"?1"}, true},
		{[]string{"?1;a=1"}, false},
		{[]string{"? 1"}, false},
		{[]string{""}, false},
		{[]string{"?1", ""}, false},
	} {
		r, err := http.NewRequest(http.MethodPost, "/orders", nil)
		if err != nil {
			t.Fatal(err)
		}
		r.Header[HeaderRetry] = tc.values
		if got := retried(r); got != tc.want {
			t.Errorf("retried with %q = %v, want %v", tc.values, got, tc.want)
		}
	}
}
