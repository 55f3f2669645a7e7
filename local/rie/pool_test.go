package rie_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/parcelhq/orderservice/internal/lambdatest"
	"github.com/parcelhq/orderservice/local/rie"
)

type answer struct {
	PID       int    `json:"pid"`
	Served    int64  `json:"served"`
	RequestID string `json:"request_id"`
	Function  string `json:"function"`
	Memory    string `json:"memory"`
	Value     string `json:"value"`
	Deadline  int64  `json:"deadline_ms"`
}

// syncBuffer is a log sink safe for the pool's writes and the test's reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func newPool(t *testing.T, bin string, opts rie.Options) (*rie.Pool, *syncBuffer) {
	t.Helper()
	logs := &syncBuffer{}
	if opts.RIE == "" {
		opts.RIE = lambdatest.RIE(t)
	}
	opts.Bootstrap = bin
	opts.Logger = slog.New(slog.NewJSONHandler(logs, nil))
	opts.Output = logs
	p, err := rie.NewPool(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p, logs
}

func invoke(t *testing.T, p *rie.Pool, requestID string, ev map[string]any) (answer, error) {
	t.Helper()
	b, _ := json.Marshal(ev)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := p.Invoke(ctx, requestID, b)
	if err != nil {
		return answer{}, err
	}
	var a answer
	if err := json.Unmarshal(out, &a); err != nil {
		t.Fatalf("answer %s: %v", out, err)
	}
	return a, nil
}

func alive(pid int) bool { return syscall.Kill(pid, 0) == nil }

func TestPool(t *testing.T) {
	if !rie.Supported() {
		t.Skip("the Lambda Runtime Interface Emulator runs on linux only")
	}
	t.Parallel()
	bin := lambdatest.Build(t, "./local/rie/testdata/fn")

	t.Run("a burst of concurrent invocations is served by several environments, up to the limit, each one invocation at a time", func(t *testing.T) {
		t.Parallel()
		p, _ := newPool(t, bin, rie.Options{Max: 3, Timeout: 10 * time.Second})
		type span struct {
			pid        int
			start, end time.Time
		}
		var mu sync.Mutex
		var spans []span
		var wg sync.WaitGroup
		gate := make(chan struct{})
		for range 7 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-gate
				start := time.Now()
				a, err := invoke(t, p, "", map[string]any{"sleep_ms": 300})
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				spans = append(spans, span{a.PID, start, time.Now()})
				mu.Unlock()
			}()
		}
		close(gate)
		wg.Wait()
		pids := map[int]int{}
		for _, s := range spans {
			pids[s.pid]++
		}
		if len(pids) != 3 {
			t.Errorf("7 concurrent invocations of 300 ms were served by %d processes %v, want the limit, 3", len(pids), pids)
		}
		if n := p.Environments(); n != 3 {
			t.Errorf("%d environments alive, want 3", n)
		}
		// Invocations served by one process never overlapped: the process
		// sleeps 300 ms per invocation, so k invocations of one process
		// took at least k*300 ms from the first start to the last end.
		for pid, k := range pids {
			var first, last time.Time
			for _, s := range spans {
				if s.pid != pid {
					continue
				}
				if first.IsZero() || s.start.Before(first) {
					first = s.start
				}
				if s.end.After(last) {
					last = s.end
				}
			}
			if d := last.Sub(first); d < time.Duration(k)*300*time.Millisecond {
				t.Errorf("process %d served %d invocations in %v: they overlapped", pid, k, d)
			}
		}
	})

	t.Run("sequential invocations reuse one warm environment, whose memory persists", func(t *testing.T) {
		t.Parallel()
		p, logs := newPool(t, bin, rie.Options{Max: 4})
		var pid int
		for i := range 3 {
			a, err := invoke(t, p, "", map[string]any{})
			if err != nil {
				t.Fatal(err)
			}
			if i == 0 {
				pid = a.PID
			}
			if a.PID != pid || a.Served != int64(i+1) {
				t.Fatalf("invocation %d: pid %d served %d, want pid %d served %d", i+1, a.PID, a.Served, pid, i+1)
			}
		}
		if n := p.Environments(); n != 1 {
			t.Errorf("%d environments, want 1", n)
		}
		var cold, warm int
		for _, line := range bytes.Split([]byte(logs.String()), []byte("\n")) {
			var rec struct {
				Msg      string   `json:"msg"`
				Cold     *bool    `json:"cold_start"`
				InitMS   *float64 `json:"init_duration_ms"`
				Env      string   `json:"environment"`
				Duration float64  `json:"duration_ms"`
			}
			if json.Unmarshal(line, &rec) != nil || rec.Msg != "invocation" {
				continue
			}
			switch {
			case *rec.Cold && rec.InitMS != nil && *rec.InitMS > 0 && rec.Env == "env-1":
				cold++
			case !*rec.Cold && rec.InitMS == nil:
				warm++
			}
		}
		if cold != 1 || warm != 2 {
			t.Errorf("log shows %d cold starts with an init duration and %d warm invocations, want 1 and 2:\n%s", cold, warm, logs)
		}
	})

	t.Run("the function gets Lambda's environment, the request id, the timeout as deadline, and only the variables it is given", func(t *testing.T) {
		t.Parallel()
		if os.Getenv("HOME") == "" {
			t.Fatal("this test needs HOME set in its own environment, to see that it does not reach the function")
		}
		p, _ := newPool(t, bin, rie.Options{FunctionName: "Fn", MemoryMB: 256, Timeout: 7 * time.Second})
		a, err := invoke(t, p, "7f0c1c52-8f3e-4d8e-9a57-1f2f3a4b5c6d", map[string]any{"getenv": "HOME"})
		if err != nil {
			t.Fatal(err)
		}
		p2, _ := newPool(t, bin, rie.Options{Env: []string{"POOL_TEST_VALUE=given"}})
		b, err := invoke(t, p2, "", map[string]any{"getenv": "POOL_TEST_VALUE"})
		if err != nil {
			t.Fatal(err)
		}
		checks := []struct {
			name      string
			got, want any
		}{
			{"the function name", a.Function, "Fn"},
			{"the memory size", a.Memory, "256"},
			{"the request id", a.RequestID, "7f0c1c52-8f3e-4d8e-9a57-1f2f3a4b5c6d"},
			{"the caller's environment does not leak into it", a.Value, ""},
			{"Options.Env reaches it", b.Value, "given"},
		}
		for _, c := range checks {
			if c.got != c.want {
				t.Errorf("%s: got %v, want %v", c.name, c.got, c.want)
			}
		}
		if a.Deadline < 5000 || a.Deadline > 7000 {
			t.Errorf("deadline %d ms away, want about 7000", a.Deadline)
		}
	})

	t.Run("a crash fails the invocation, shuts the environment down, and the next invocation gets a fresh one", func(t *testing.T) {
		t.Parallel()
		p, _ := newPool(t, bin, rie.Options{Max: 2})
		first, err := invoke(t, p, "", map[string]any{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := invoke(t, p, "", map[string]any{"exit": true}); err == nil {
			t.Fatal("an invocation whose runtime exited succeeded")
		}
		if n := p.Environments(); n != 0 {
			t.Errorf("%d environments after the crash, want 0", n)
		}
		if alive(first.PID) {
			t.Errorf("the crashed environment's runtime %d is still running", first.PID)
		}
		next, err := invoke(t, p, "", map[string]any{})
		if err != nil {
			t.Fatal(err)
		}
		if next.PID == first.PID || next.Served != 1 {
			t.Errorf("after the crash: pid %d served %d, want a new process serving its first", next.PID, next.Served)
		}
	})

	t.Run("an invocation past the timeout fails and its environment is replaced", func(t *testing.T) {
		t.Parallel()
		p, _ := newPool(t, bin, rie.Options{Timeout: time.Second})
		if _, err := invoke(t, p, "", map[string]any{"sleep_ms": 4000}); err == nil {
			t.Fatal("an invocation of 4 s succeeded with a 1 s timeout")
		}
		if n := p.Environments(); n != 0 {
			t.Errorf("%d environments after the timeout, want 0", n)
		}
	})

	t.Run("with every environment busy, an invocation waits no longer than its context", func(t *testing.T) {
		t.Parallel()
		p, _ := newPool(t, bin, rie.Options{Max: 1})
		busy := make(chan error, 1)
		go func() {
			_, err := invoke(t, p, "", map[string]any{"sleep_ms": 1500})
			busy <- err
		}()
		for p.Environments() == 0 {
			time.Sleep(10 * time.Millisecond)
		}
		time.Sleep(300 * time.Millisecond) // the environment is invoked
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		if _, err := p.Invoke(ctx, "", []byte(`{}`)); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("err = %v, want the context's deadline", err)
		}
		if err := <-busy; err != nil {
			t.Errorf("the busy invocation: %v", err)
		}
	})

	t.Run("Close stops every environment and later invocations fail", func(t *testing.T) {
		t.Parallel()
		p, _ := newPool(t, bin, rie.Options{})
		a, err := invoke(t, p, "", map[string]any{})
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Close(); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(5 * time.Second)
		for alive(a.PID) && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if alive(a.PID) {
			t.Errorf("runtime %d still running after Close", a.PID)
		}
		if _, err := p.Invoke(context.Background(), "", []byte(`{}`)); !errors.Is(err, rie.ErrClosed) {
			t.Errorf("Invoke after Close: %v, want ErrClosed", err)
		}
	})
}
