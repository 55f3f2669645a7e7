//go:build crashtest

package idem_test

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/parcelhq/orderservice/internal/idem"
)

type crashKey struct{}

// TestStepHook is not parallel: the hook is process-wide, and parallel tests
// start only after the sequential ones finish. The hook acts only on
// contexts marked with crashKey.
func TestStepHook(t *testing.T) {
	e := newEnv(t, true)
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
	ctx := context.WithValue(context.Background(), crashKey{}, true)

	t.Run("a lease attempt passes acquired, handled, committed in order", func(t *testing.T) {
		steps, crashAt = nil, 0
		var runs atomic.Int32
		if _, err := e.guard(idem.Config{}).Do(ctx, req(uniqueKey(t), "fp"), respond(&runs, nil)); err != nil {
			t.Fatal(err)
		}
		if want := []idem.Step{idem.StepAcquired, idem.StepHandled, idem.StepCommitted}; !slices.Equal(steps, want) {
			t.Fatalf("steps %v, want %v", steps, want)
		}
	})

	t.Run("a crash after the handler wrote and before commit leaves no business write", func(t *testing.T) {
		steps, crashAt = nil, idem.StepHandled
		r := req(uniqueKey(t), "fp")
		func() {
			defer func() { _ = recover() }()
			_, _ = e.guard(idem.Config{}).Do(ctx, r, func(ctx context.Context) (idem.Outcome, error) {
				return idem.Outcome{Response: []byte("x"), Keep: true}, e.putBiz(ctx, r.Key)
			})
		}()
		if e.bizItem(r.Key) {
			t.Fatal("the business write landed without the record")
		}
	})
}
