package idem

import (
	"context"
	"errors"
	"testing"
	"time"
)

// wait is how long a test waits for a context that must end: far beyond
// the deadlines it sets, so that a slow machine cannot fail it.
const wait = 10 * time.Second

func TestFnTimeoutBehavesAsWithTimeout(t *testing.T) {
	type ctxKey struct{}
	base := func(t *testing.T) context.Context {
		ctx, cancel := context.WithCancelCause(context.WithValue(context.Background(), ctxKey{}, "v"))
		t.Cleanup(func() { cancel(nil) })
		return ctx
	}
	ended := func(t *testing.T, ctx context.Context, err, cause error) {
		t.Helper()
		select {
		case <-ctx.Done():
		case <-time.After(wait):
			t.Fatal("Done was not closed")
		}
		if got := ctx.Err(); !errors.Is(got, err) {
			t.Errorf("Err() = %v, want %v", got, err)
		}
		if got := context.Cause(ctx); !errors.Is(got, cause) {
			t.Errorf("Cause = %v, want %v", got, cause)
		}
	}

	t.Run("it reports now+d as its deadline and passes values through", func(t *testing.T) {
		before := time.Now()
		ctx, cancel := withFnTimeout(base(t), time.Hour)
		defer cancel()
		d, ok := ctx.Deadline()
		if !ok || d.Before(before.Add(time.Hour)) || d.After(time.Now().Add(time.Hour)) {
			t.Errorf("Deadline() = %v, %v; want about now+1h", d, ok)
		}
		if got := ctx.Value(ctxKey{}); got != "v" {
			t.Errorf("Value = %v, want v", got)
		}
		if ctx.Err() != nil || context.Cause(ctx) != nil {
			t.Errorf("Err() = %v, Cause = %v before the deadline, want nil", ctx.Err(), context.Cause(ctx))
		}
	})
	t.Run("it reports the parent's deadline when that is earlier", func(t *testing.T) {
		parent, cancelParent := context.WithTimeout(base(t), time.Minute)
		defer cancelParent()
		ctx, cancel := withFnTimeout(parent, time.Hour)
		defer cancel()
		want, _ := parent.Deadline()
		if d, _ := ctx.Deadline(); !d.Equal(want) {
			t.Errorf("Deadline() = %v, want the parent's %v", d, want)
		}
	})
	t.Run("it arms no timer while nothing waits on it", func(t *testing.T) {
		c, cancel := withFnTimeout(base(t), time.Hour)
		defer cancel()
		c.Deadline()
		_ = c.Err()
		c.Value(ctxKey{})
		if c.(*fnCtx).armed.Load() != nil {
			t.Error("a timer was armed before anything called Done")
		}
	})
	t.Run("Done closes at the deadline with DeadlineExceeded", func(t *testing.T) {
		ctx, cancel := withFnTimeout(base(t), 20*time.Millisecond)
		defer cancel()
		ended(t, ctx, context.DeadlineExceeded, context.DeadlineExceeded)
	})
	t.Run("Err and Cause report the deadline past it, though Done was never called", func(t *testing.T) {
		ctx, cancel := withFnTimeout(base(t), time.Millisecond)
		defer cancel()
		time.Sleep(5 * time.Millisecond)
		if got := ctx.Err(); !errors.Is(got, context.DeadlineExceeded) {
			t.Errorf("Err() = %v, want DeadlineExceeded", got)
		}
		if got := context.Cause(ctx); !errors.Is(got, context.DeadlineExceeded) {
			t.Errorf("Cause = %v, want DeadlineExceeded", got)
		}
	})
	t.Run("Cause reports the deadline when asked first, past it", func(t *testing.T) {
		ctx, cancel := withFnTimeout(base(t), time.Millisecond)
		defer cancel()
		time.Sleep(5 * time.Millisecond)
		if got := context.Cause(ctx); !errors.Is(got, context.DeadlineExceeded) {
			t.Errorf("Cause = %v, want DeadlineExceeded", got)
		}
	})
	t.Run("the parent's cancellation ends it with the parent's cause", func(t *testing.T) {
		for _, waited := range []bool{true, false} {
			parent, cancelParent := context.WithCancelCause(context.Background())
			ctx, cancel := withFnTimeout(parent, time.Hour)
			if waited {
				ctx.Done()
			}
			why := errors.New("client went away")
			cancelParent(why)
			ended(t, ctx, context.Canceled, why)
			cancel()
		}
	})
	t.Run("cancel ends it, whether Done was called before or after", func(t *testing.T) {
		for _, waited := range []bool{true, false} {
			ctx, cancel := withFnTimeout(base(t), time.Hour)
			if waited {
				ctx.Done()
			}
			cancel()
			cancel() // a second call is harmless
			ended(t, ctx, context.Canceled, context.Canceled)
		}
	})
	t.Run("contexts derived from it end with it", func(t *testing.T) {
		ctx, cancel := withFnTimeout(base(t), 20*time.Millisecond)
		defer cancel()
		child, cancelChild := context.WithCancel(ctx)
		defer cancelChild()
		fired := make(chan struct{})
		stop := context.AfterFunc(ctx, func() { close(fired) })
		defer stop()
		ended(t, child, context.DeadlineExceeded, context.DeadlineExceeded)
		select {
		case <-fired:
		case <-time.After(wait):
			t.Fatal("context.AfterFunc did not run")
		}
	})
}
