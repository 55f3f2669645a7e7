package idem_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"

	"github.com/parcelhq/orderservice/internal/idem"
)

type shipment struct {
	ID     string   `json:"id"`
	Labels []string `json:"labels"`
}

func TestRun(t *testing.T) {
	t.Parallel()
	e := newEnv(t, true)
	for _, mode := range []idem.Mode{idem.Lease, idem.Optimistic} {
		g := e.guard(idem.Config{Mode: mode})
		t.Run(mode.String()+": the value is stored and replayed, an error is not stored", func(t *testing.T) {
			t.Parallel()
			r := req(uniqueKey(t), "sqs-message")
			var runs atomic.Int32
			fail := func(context.Context) (shipment, error) { runs.Add(1); return shipment{}, errBoom }
			ok := func(context.Context) (shipment, error) {
				runs.Add(1)
				return shipment{ID: "s-1", Labels: []string{"a", "b"}}, nil
			}
			if _, _, err := idem.Run(context.Background(), g, r, fail); !errors.Is(err, errBoom) {
				t.Fatalf("err = %v, want fn's error", err)
			}
			v, replayed, err := idem.Run(context.Background(), g, r, ok)
			if err != nil || replayed || v.ID != "s-1" {
				t.Fatalf("after an error: %+v replayed=%v err=%v, want a fresh run", v, replayed, err)
			}
			v, replayed, err = idem.Run(context.Background(), g, r, ok)
			if err != nil || !replayed || v.ID != "s-1" || len(v.Labels) != 2 {
				t.Fatalf("retry: %+v replayed=%v err=%v, want the stored value", v, replayed, err)
			}
			// Optimistic mode runs fn for a retry too, and discards its outcome.
			if want := map[idem.Mode]int32{idem.Lease: 2, idem.Optimistic: 3}[mode]; runs.Load() != want {
				t.Fatalf("fn ran %d times, want %d", runs.Load(), want)
			}
		})
	}
}
