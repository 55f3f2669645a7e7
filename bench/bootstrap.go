package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/parcelhq/orderservice/functions/createorder/app"
	"github.com/parcelhq/orderservice/internal/ddb"
	"github.com/parcelhq/orderservice/internal/lambdatest"
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

// bootstrapResult is what the bootstrap runs under the Runtime API measured.
type bootstrapResult struct {
	arch        string
	coldStarts  []time.Duration // process start to first response
	invocations int             // of the memory load, after the first
	warmMiss    []time.Duration // Runtime API round trips of the memory load's misses
	warmHit     []time.Duration // and of its replays
	hwm, rss    int64           // KiB, after the memory load
}

// runBootstrap starts bin (a bootstrap for this machine) n times, each under
// a Runtime API of its own (lambdatest), and times process start to the
// response of its first invocation, a POST /orders miss. The last process
// then gets invocations more (every fifth the retry of the one before, a
// hit; the others misses), each timed from Invoke to its response, and its
// VmHWM is read.
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

// coldStart runs one bootstrap process: it times start to first response,
// calls more with an invoke function, reads the process's memory, and
// kills it.
func coldStart(ctx context.Context, r *runner, bin, endpoint string, cfg app.Config, more func(context.Context, func(context.Context, string) error) error) (time.Duration, procMem, error) {
	s, done := r.scope()
	defer done()
	rt := lambdatest.Start(s, 10*time.Second)
	pctx, cancel := context.WithCancel(ctx)
	defer cancel()
	cmd := exec.CommandContext(pctx, bin)
	cmd.Env = append(append(scrubbedEnv(), rt.Env("createorder")...),
		ddb.EndpointEnv+"="+endpoint, "AWS_ACCESS_KEY_ID=local", "AWS_SECRET_ACCESS_KEY=local",
		app.EnvOrdersTable+"="+cfg.OrdersTable, app.EnvIdempotencyTable+"="+cfg.IdempotencyTable, app.EnvLogLevel+"=INFO",
		// The benchmark measures the guard, not the authorizer: events carry no caller.
		app.EnvAuthMode+"="+app.AuthNone)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.Stdout = nil // the request log
	exited := make(chan struct{})
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, procMem{}, err
	}
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	defer func() {
		cancel()
		<-exited
	}()

	invoke := func(ctx context.Context, key string) error {
		ev, err := json.Marshal(createEvent(key))
		if err != nil {
			return err
		}
		ictx, icancel := context.WithTimeout(ctx, 30*time.Second)
		defer icancel()
		go func() {
			select {
			case <-exited:
				icancel()
			case <-ictx.Done():
			}
		}()
		out, err := rt.Invoke(ictx, ev)
		if err != nil {
			select {
			case <-exited:
				return fmt.Errorf("bootstrap exited: %v\n%s", cmd.ProcessState, stderr.String())
			case msg := <-rt.InitErrors():
				return fmt.Errorf("bootstrap init failed: %s", msg)
			default:
			}
			return err
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
	if err := invoke(ctx, newKey()); err != nil {
		return 0, procMem{}, err
	}
	d := time.Since(start)
	if err := more(ctx, invoke); err != nil {
		return d, procMem{}, err
	}
	hwm, rss, err := peakRSS(cmd.Process.Pid)
	if err != nil {
		return d, procMem{}, errors.Join(err, errors.New(stderr.String()))
	}
	return d, procMem{hwm: hwm, rss: rss}, nil
}
