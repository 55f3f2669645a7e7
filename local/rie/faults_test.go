package rie_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/parcelhq/orderservice/internal/lambdatest"
	"github.com/parcelhq/orderservice/local/rie"
)

// children returns the pids of this process's live (not zombie) children
// whose command line contains substr.
func children(t *testing.T, substr string) []int {
	t.Helper()
	var pids []int
	ents, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...
		f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
		if len(f) < 2 || f[0] == "Z" || f[1] != strconv.Itoa(os.Getpid()) {
			continue
		}
		cmdline, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if strings.Contains(string(cmdline), substr) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// running reports whether process pid exists and is not a zombie.
func running(pid int) bool {
	stat, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return false
	}
	f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
	return len(f) > 0 && f[0] != "Z"
}

// slowEmulator returns an executable that waits 500 ms, then execs the real
// emulator: an emulator slow to start, whose process exists all along.
func slowEmulator(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "slow-aws-lambda-rie")
	script := fmt.Sprintf("#!/bin/sh\nsleep 0.5\nexec %q \"$@\"\n", lambdatest.RIE(t))
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

// impostor serves HTTP on a free 127.0.0.1 port, answering every request
// with a function answer of pid -1, and counts the requests.
func impostor(t *testing.T) (addr string, requests *atomic.Int64) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	requests = &atomic.Int64{}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		requests.Add(1)
		_, _ = w.Write([]byte(`{"pid":-1}`))
	}), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String(), requests
}

func TestPoolFaults(t *testing.T) {
	if !rie.Supported() {
		t.Skip("the Lambda Runtime Interface Emulator runs on linux only")
	}
	t.Parallel()
	bin := lambdatest.Build(t, "./local/rie/testdata/fn")

	t.Run("Close while an environment is starting returns only once its emulator has exited", func(t *testing.T) {
		t.Parallel()
		emulator := slowEmulator(t)
		p, _ := newPool(t, bin, rie.Options{RIE: emulator})
		done := make(chan error, 1)
		go func() {
			_, err := p.Invoke(context.Background(), "", []byte(`{}`))
			done <- err
		}()
		var starting []int // the emulator's process, while it waits before exec
		for deadline := time.Now().Add(10 * time.Second); len(starting) == 0 && time.Now().Before(deadline); {
			time.Sleep(5 * time.Millisecond)
			starting = children(t, emulator)
		}
		if len(starting) == 0 {
			t.Fatal("the pool never started an emulator")
		}
		if err := p.Close(); err != nil {
			t.Fatal(err)
		}
		for _, pid := range starting {
			if running(pid) {
				t.Errorf("Close returned with the emulator being started (pid %d) still running", pid)
				_ = syscall.Kill(-pid, syscall.SIGKILL)
			}
		}
		if err := <-done; !errors.Is(err, rie.ErrClosed) {
			t.Errorf("the invocation that was starting an environment: %v, want ErrClosed", err)
		}
	})

	t.Run("an environment starts only on ports its own emulator listens on", func(t *testing.T) {
		t.Parallel()
		cases := []struct {
			name string
			pick func(t *testing.T) (string, string, *atomic.Int64)
		}{
			{"the invoke port is taken by someone else", func(t *testing.T) (string, string, *atomic.Int64) {
				taken, requests := impostor(t)
				_, runtimeAPI, err := rie.FreeAddrs()
				if err != nil {
					t.Fatal(err)
				}
				return taken, runtimeAPI, requests
			}},
			{"the Runtime API port is taken by someone else", func(t *testing.T) (string, string, *atomic.Int64) {
				taken, requests := impostor(t)
				invoke, _, err := rie.FreeAddrs()
				if err != nil {
					t.Fatal(err)
				}
				return invoke, taken, requests
			}},
			{"the invoke port is the Runtime API port", func(t *testing.T) (string, string, *atomic.Int64) {
				invoke, _, err := rie.FreeAddrs()
				if err != nil {
					t.Fatal(err)
				}
				return invoke, invoke, &atomic.Int64{}
			}},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				t.Parallel()
				invokeAddr, runtimeAPI, requests := c.pick(t)
				p, logs := newPool(t, bin, rie.Options{})
				var calls atomic.Int64
				rie.SetAddrs(p, func() (string, string, error) {
					if calls.Add(1) == 1 {
						return invokeAddr, runtimeAPI, nil
					}
					return rie.FreeAddrs()
				})
				a, err := invoke(t, p, "", map[string]any{})
				if err != nil {
					t.Fatalf("invocation: %v\n%s", err, logs)
				}
				if a.PID <= 0 || requests.Load() != 0 {
					t.Errorf("the invocation was answered by pid %d; the other listener got %d requests; want the function's answer and none", a.PID, requests.Load())
				}
				if calls.Load() < 2 {
					t.Errorf("the environment started on the first ports chosen (%s, %s)", invokeAddr, runtimeAPI)
				}
			})
		}
	})

	t.Run("a runtime that exits while its environment is idle is not handed the next invocation", func(t *testing.T) {
		t.Parallel()
		p, logs := newPool(t, bin, rie.Options{Max: 1})
		first, err := invoke(t, p, "", map[string]any{})
		if err != nil {
			t.Fatal(err)
		}
		if err := syscall.Kill(first.PID, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		for deadline := time.Now().Add(5 * time.Second); p.Environments() > 0 && time.Now().Before(deadline); {
			time.Sleep(10 * time.Millisecond)
		}
		if n := p.Environments(); n != 0 {
			t.Errorf("%d environments 5 s after the idle runtime was killed, want 0", n)
		}
		next, err := invoke(t, p, "", map[string]any{})
		if err != nil {
			t.Fatalf("the next invocation: %v\n%s", err, logs)
		}
		if next.PID == first.PID || next.Served != 1 {
			t.Errorf("the next invocation: pid %d served %d, want a new runtime serving its first", next.PID, next.Served)
		}
		if !eventually(func() bool { return strings.Contains(logs.String(), "its runtime exited while idle") }) {
			t.Errorf("the log does not say why the environment was stopped:\n%s", logs)
		}
	})

	t.Run("with every environment busy past the queue wait, an invocation is throttled as Lambda throttles", func(t *testing.T) {
		t.Parallel()
		for _, wait := range []time.Duration{50 * time.Millisecond, -1} {
			p, _ := newPool(t, bin, rie.Options{Max: 1, QueueWait: wait, Timeout: 10 * time.Second})
			busy := make(chan error, 1)
			go func() {
				_, err := invoke(t, p, "", map[string]any{"sleep_ms": 2000})
				busy <- err
			}()
			for p.Environments() == 0 {
				time.Sleep(10 * time.Millisecond)
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			_, err := p.Invoke(ctx, "", []byte(`{}`))
			var api interface{ ErrorCode() string }
			if !errors.Is(err, rie.ErrThrottled) || !errors.As(err, &api) || api.ErrorCode() != "TooManyRequestsException" {
				t.Errorf("queue wait %v: err = %v, want ErrThrottled with ErrorCode TooManyRequestsException", wait, err)
			}
			if ctx.Err() != nil {
				t.Errorf("queue wait %v: the throttled invocation waited for its context", wait)
			}
			cancel()
			if err := <-busy; err != nil {
				t.Errorf("the busy invocation: %v", err)
			}
		}
	})

	t.Run("a line of output over 1 MiB is cut and marked, and the output after it still arrives", func(t *testing.T) {
		t.Parallel()
		p, logs := newPool(t, bin, rie.Options{})
		if _, err := invoke(t, p, "", map[string]any{"print_bytes": 3 << 20}); err != nil {
			t.Fatal(err)
		}
		if _, err := invoke(t, p, "", map[string]any{"print_bytes": 10}); err != nil {
			t.Fatal(err)
		}
		// The output reaches the pool's writer after the answer, through
		// the emulator: wait for it.
		var long, after, short int
		eventually(func() bool {
			long, after, short = 0, 0, 0
			for _, line := range strings.Split(logs.String(), "\n") {
				switch {
				case strings.HasPrefix(line, "xxxx") && strings.HasSuffix(line, fmt.Sprintf(" [line truncated: %d bytes dropped]", 3<<20-1<<20)):
					if strings.Count(line, "x") == 1<<20 {
						long++
					}
				case line == "after the long line":
					after++
				case line == strings.Repeat("x", 10):
					short++
				}
			}
			return long == 1 && after == 2 && short == 1
		})
		if long != 1 || after != 2 || short != 1 {
			t.Errorf("output: %d long lines cut to 1 MiB and marked, %d lines after a long line, %d short lines; want 1, 2, 1", long, after, short)
		}
	})
}

// eventually reports whether cond holds within 5 s.
func eventually(cond func() bool) bool {
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
	}
}
