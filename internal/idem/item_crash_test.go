//go:build crashtest

package idem_test

import (
	"bytes"
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/parcelhq/orderservice/internal/idem"
)

// TestItemStepHook crashes Item-mode attempts at each step. Not parallel:
// the hook is process-wide (see TestStepHook).
func TestItemStepHook(t *testing.T) {
	e := newItemEnv(t, true)
	g := e.itemGuard(idem.Config{})
	var mu sync.Mutex
	var steps []idem.Step
	crashAt := idem.Step(0)
	idem.SetStepHook(func(ctx context.Context, s idem.Step) {
		if ctx.Value(crashKey{}) == nil {
			return
		}
		mu.Lock()
		steps = append(steps, s)
		mu.Unlock()
		if s == crashAt {
			panic("crash at " + s.String())
		}
	})
	t.Cleanup(func() { idem.SetStepHook(nil) })
	crashing := context.WithValue(context.Background(), crashKey{}, true)
	crash := func(r idem.Request, fn func(context.Context) (idem.Outcome, error)) {
		defer func() { _ = recover() }()
		_, _ = g.Do(crashing, r, fn)
	}

	t.Run("an item attempt passes handled, committed in order", func(t *testing.T) {
		steps, crashAt = nil, 0
		var runs atomic.Int32
		mustDo(t, g, req(uniqueKey(t), "fp"), e.book(t.Name(), &runs))
		if _, err := g.Do(crashing, req(uniqueKey(t), "fp"), e.book(t.Name(), &runs)); err != nil {
			t.Fatal(err)
		}
		if want := []idem.Step{idem.StepHandled, idem.StepCommitted}; !slices.Equal(steps, want) {
			t.Fatalf("steps %v, want %v", steps, want)
		}
	})

	t.Run("a crash after fn and before the put writes nothing, and the retry books exactly one item", func(t *testing.T) {
		steps, crashAt = nil, idem.StepHandled
		r := req(uniqueKey(t), "fp")
		var runs atomic.Int32
		crash(r, e.book(t.Name(), &runs))
		if n := len(e.itemsOf(t.Name())); n != 0 {
			t.Fatalf("%d items after a crash before the put", n)
		}
		if res := mustDo(t, g, r, e.book(t.Name(), &runs)); res.Replayed || len(e.itemsOf(t.Name())) != 1 {
			t.Fatalf("retry replayed=%v with %d items, want a fresh booking of one", res.Replayed, len(e.itemsOf(t.Name())))
		}
	})

	t.Run("a crash after the put lands leaves the booking, and the retry replays it", func(t *testing.T) {
		steps, crashAt = nil, idem.StepCommitted
		r := req(uniqueKey(t), "fp")
		var runs atomic.Int32
		crash(r, e.book(t.Name(), &runs))
		got := e.itemsOf(t.Name())
		if len(got) != 1 {
			t.Fatalf("%d items after a crash after the put, want 1", len(got))
		}
		res := mustDo(t, g, r, e.book(t.Name(), &runs))
		if !res.Replayed || !bytes.HasPrefix(res.Response, []byte(str(got[0], "pk"))) || len(e.itemsOf(t.Name())) != 1 {
			t.Fatalf("retry got %q (replayed %v), want the crashed attempt's booking replayed", res.Response, res.Replayed)
		}
	})
}
