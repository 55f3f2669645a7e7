package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/parcelhq/orderservice/functions/createorder/app"
	"github.com/parcelhq/orderservice/internal/ddb"
	"github.com/parcelhq/orderservice/internal/lambdatest"
	"github.com/parcelhq/orderservice/local/rie"
)

// artifact is one `make build` bootstrap.
type artifact struct {
	arch string
	path string
	size int64
}

// makeBuild runs the Makefile's build target for each architecture, into
// a directory of its own under dir (BUILD_DIR and GOARCH_LAMBDA overridden on
// make's command line), so the sizes are those of the artifact `make build`
// ships: linux, static, -tags lambda.norpc, -trimpath, stripped.
func makeBuild(ctx context.Context, root, dir string, archs []string) ([]artifact, error) {
	var out []artifact
	for _, arch := range archs {
		bdir := filepath.Join(dir, "build-"+arch)
		cmd := exec.CommandContext(ctx, "make", "-s", "-C", root, "build", "GOARCH_LAMBDA="+arch, "BUILD_DIR="+bdir)
		if b, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("make build GOARCH_LAMBDA=%s: %v\n%s", arch, err, b)
		}
		p := filepath.Join(bdir, "createorder", "bootstrap")
		fi, err := os.Stat(p)
		if err != nil {
			return nil, err
		}
		out = append(out, artifact{arch: arch, path: p, size: fi.Size()})
	}
	return out, nil
}

// bootstrapResult is what the bootstrap runs under the emulator measured.
type bootstrapResult struct {
	arch        string
	coldStarts  []time.Duration // environment start to first response
	invocations int             // of the memory load, after the first
	warmMiss    []time.Duration // invoke round trips of the memory load's misses
	warmHit     []time.Duration // and of its replays
	hwm, rss    int64           // KiB, of the bootstrap process after the memory load
}

// runBootstrap runs bin (a bootstrap for this machine) n times, each time in
// a fresh execution environment of its own (local/rie: the real Lambda
// Runtime Interface Emulator, one environment), and times the environment's
// start to the response of its first invocation, a POST /orders miss: the
// emulator's start, the bootstrap's init, the invocation. The last
// environment then gets invocations more (every fifth the retry of the one
// before, a hit; the others misses), each timed from Invoke to its response,
// and the bootstrap process's VmHWM is read.
func runBootstrap(ctx context.Context, r *runner, bin, endpoint string, cfg app.Config, n, invocations int) (bootstrapResult, error) {
	res := bootstrapResult{arch: runtime.GOARCH}
	for i := range n {
		last := i == n-1
		d, proc, err := coldStart(ctx, r, bin, endpoint, cfg, func(ctx context.Context, invoke func(context.Context, string) error) error {
			if !last {
				return nil
			}
			prev := ""
			for j := range invocations {
				key := newKey()
				if j%5 == 4 {
					key = prev
				}
				t0 := time.Now()
				if err := invoke(ctx, key); err != nil {
					return fmt.Errorf("invocation %d: %w", j+2, err)
				}
				if key == prev {
					res.warmHit = append(res.warmHit, time.Since(t0))
				} else {
					res.warmMiss = append(res.warmMiss, time.Since(t0))
				}
				prev = key
			}
			return nil
		})
		if err != nil {
			return res, err
		}
		res.coldStarts = append(res.coldStarts, d)
		if last {
			res.invocations = invocations
			res.hwm, res.rss = proc.hwm, proc.rss
		}
	}
	return res, nil
}

type procMem struct{ hwm, rss int64 }

// coldStart runs one execution environment: it times its start to the first
// response, calls more with an invoke function, reads the bootstrap
// process's memory, and shuts the environment down.
func coldStart(ctx context.Context, r *runner, bin, endpoint string, cfg app.Config, more func(context.Context, func(context.Context, string) error) error) (time.Duration, procMem, error) {
	s, done := r.scope()
	defer done()
	var output bytes.Buffer // the function's log, for an error message
	var outMu sync.Mutex
	pool, err := rie.NewPool(rie.Options{
		RIE: lambdatest.RIE(s), Bootstrap: bin, FunctionName: "CreateOrderFunction",
		Timeout: 10 * time.Second, MemoryMB: 256, Max: 1,
		Env: []string{
			ddb.EndpointEnv + "=" + endpoint,
			app.EnvOrdersTable + "=" + cfg.OrdersTable, app.EnvIdempotencyTable + "=" + cfg.IdempotencyTable, app.EnvLogLevel + "=ERROR",
			// The benchmark measures the guard, not the authorizer: events carry no caller.
			app.EnvAuthMode + "=" + app.AuthNone,
		},
		Logger: slog.New(slog.NewJSONHandler(io.Discard, nil)),
		Output: writerFunc(func(p []byte) (int, error) {
			outMu.Lock()
			defer outMu.Unlock()
			if output.Len() < 64<<10 {
				output.Write(p)
			}
			return len(p), nil
		}),
	})
	if err != nil {
		return 0, procMem{}, err
	}
	defer pool.Close()

	invoke := func(ctx context.Context, key string) error {
		ev, err := json.Marshal(createEvent(key))
		if err != nil {
			return err
		}
		ictx, icancel := context.WithTimeout(ctx, 30*time.Second)
		defer icancel()
		out, err := pool.Invoke(ictx, "", ev)
		if err != nil {
			outMu.Lock()
			defer outMu.Unlock()
			return fmt.Errorf("%w\n%s", err, output.String())
		}
		var resp events.APIGatewayV2HTTPResponse
		if err := json.Unmarshal(out, &resp); err != nil {
			return fmt.Errorf("not an API Gateway v2 response: %v: %.200s", err, out)
		}
		if resp.StatusCode != http.StatusCreated {
			return fmt.Errorf("status %d: %.200s", resp.StatusCode, resp.Body)
		}
		return nil
	}
	start := time.Now()
	if err := invoke(ctx, newKey()); err != nil {
		return 0, procMem{}, err
	}
	d := time.Since(start)
	if err := more(ctx, invoke); err != nil {
		return d, procMem{}, err
	}
	pid, err := processOf(bin)
	if err != nil {
		return d, procMem{}, err
	}
	hwm, rss, err := peakRSS(pid)
	if err != nil {
		return d, procMem{}, err
	}
	return d, procMem{hwm: hwm, rss: rss}, nil
}

// processOf returns the pid of the one running process whose executable is
// bin (the bootstrap the emulator started).
func processOf(bin string) (int, error) {
	want, err := filepath.EvalSymlinks(bin)
	if err != nil {
		return 0, err
	}
	exes, _ := filepath.Glob("/proc/[0-9]*/exe")
	var pids []int
	for _, exe := range exes {
		if got, err := os.Readlink(exe); err == nil && got == want {
			pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(exe)))
			pids = append(pids, pid)
		}
	}
	if len(pids) != 1 {
		return 0, fmt.Errorf("%d processes run %s, want the one bootstrap: %v", len(pids), bin, pids)
	}
	return pids[0], nil
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
