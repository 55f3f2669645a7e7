package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/parcelhq/orderservice/functions/createorder/app"
	"github.com/parcelhq/orderservice/internal/ddb"
	"github.com/parcelhq/orderservice/internal/idem"
)

// loadResult is one concurrency level of a throughput run.
type loadResult struct {
	mode        idem.Mode
	concurrency int
	ok, failed  int // 201 responses; anything else (status or transport error)
	elapsed     time.Duration
	latencies   []time.Duration // of the 201 responses
	firstErr    string
}

func (r loadResult) rps() float64 { return float64(r.ok) / r.elapsed.Seconds() }

// buildServe compiles local/serve for this machine into dir.
func buildServe(ctx context.Context, root, dir string) (string, error) {
	bin := filepath.Join(dir, "serve")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./local/serve")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./local/serve: %v\n%s", err, out)
	}
	return bin, nil
}

// load sends POST /orders, each with a fresh idempotency key, from conc
// workers until dur has passed or maxReqs were sent.
func load(ctx context.Context, client *http.Client, url string, conc int, dur time.Duration, maxReqs int) loadResult {
	r := loadResult{concurrency: conc}
	var mu sync.Mutex
	var wg sync.WaitGroup
	sent := 0
	start := time.Now()
	deadline := start.Add(dur)
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var lat []time.Duration
			var ok, failed int
			var firstErr string
			for {
				mu.Lock()
				stop := sent >= maxReqs || time.Now().After(deadline) || ctx.Err() != nil
				if !stop {
					sent++
				}
				mu.Unlock()
				if stop {
					break
				}
				t0 := time.Now()
				_, err := postOrder(ctx, client, url, newKey(), false)
				if err != nil {
					failed++
					if firstErr == "" {
						firstErr = err.Error()
					}
					continue
				}
				lat = append(lat, time.Since(t0))
				ok++
			}
			mu.Lock()
			r.ok += ok
			r.failed += failed
			r.latencies = append(r.latencies, lat...)
			if r.firstErr == "" {
				r.firstErr = firstErr
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	r.elapsed = time.Since(start)
	return r
}

// scrubbedEnv is this process's environment without the variables the
// function and local/serve read, so that the child gets only what is set
// for it.
func scrubbedEnv() []string {
	var out []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		switch name {
		case ddb.EndpointEnv, "API_ADDR", "AWS_LAMBDA_RUNTIME_API":
			continue
		}
		skip := false
		for _, v := range app.EnvVars {
			skip = skip || name == v
		}
		if !skip {
			out = append(out, kv)
		}
	}
	return out
}
