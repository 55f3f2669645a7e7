package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/parcelhq/orderservice/functions/createorder/app"
	"github.com/parcelhq/orderservice/internal/ddb"
	"github.com/parcelhq/orderservice/internal/idem"
	"github.com/parcelhq/orderservice/internal/idem/idemhttp"
	"github.com/parcelhq/orderservice/internal/orders/orderstest"
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

// serveResult is one local/serve process: its throughput at each level and
// its memory after them.
type serveResult struct {
	mode      idem.Mode
	levels    []loadResult
	hwm, rss  int64 // KiB
	memoryErr string
}

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

var listeningRE = regexp.MustCompile(`listening on http://(\S+)`)

// serveLoad starts bin (local/serve) on a free 127.0.0.1 port with the tables
// and mode of cfg, sends it warmup requests, then for each concurrency level
// POST /orders with a fresh key per request (every request a miss) from that
// many workers, until perLevel has passed or maxPerLevel requests were sent.
// Then it reads the process's VmHWM and stops it with SIGTERM.
func serveLoad(ctx context.Context, bin, endpoint string, cfg app.Config, mode idem.Mode, levels []int, perLevel time.Duration, maxPerLevel, warmup int) (serveResult, error) {
	res := serveResult{mode: mode}
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	cmd := exec.CommandContext(sctx, bin)
	cmd.Env = append(scrubbedEnv(),
		ddb.EndpointEnv+"="+endpoint, "API_ADDR=127.0.0.1:0",
		app.EnvOrdersTable+"="+cfg.OrdersTable, app.EnvIdempotencyTable+"="+cfg.IdempotencyTable,
		app.EnvIdempotencyMode+"="+mode.String(), app.EnvLogLevel+"=INFO",
		// Throughput of the guard, without the local gateway's token check.
		app.EnvAuthMode+"="+app.AuthNone)
	cmd.Stdout = nil // the request log: discarded (os.DevNull)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return res, err
	}
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 10 * time.Second
	if err := cmd.Start(); err != nil {
		return res, err
	}
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	}()

	addrc := make(chan string, 1)
	var lastLines []string
	var linesMu sync.Mutex
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			linesMu.Lock()
			lastLines = append(lastLines, line)
			linesMu.Unlock()
			if m := listeningRE.FindStringSubmatch(line); m != nil {
				select {
				case addrc <- m[1]:
				default:
				}
			}
		}
		close(addrc)
	}()
	var addr string
	select {
	case a, ok := <-addrc:
		if !ok {
			linesMu.Lock()
			defer linesMu.Unlock()
			return res, fmt.Errorf("local/serve exited before listening:\n%s", strings.Join(lastLines, "\n"))
		}
		addr = a
	case <-time.After(2 * time.Minute):
		return res, errors.New("local/serve did not start listening within 2 minutes")
	}
	if !strings.HasPrefix(addr, "127.0.0.1:") {
		return res, fmt.Errorf("local/serve listens on %s, not 127.0.0.1", addr)
	}

	maxConc := 0
	for _, c := range levels {
		maxConc = max(maxConc, c)
	}
	client := &http.Client{
		Timeout:   30 * time.Second,
		Transport: &http.Transport{MaxIdleConns: maxConc, MaxIdleConnsPerHost: maxConc, IdleConnTimeout: time.Minute},
	}
	defer client.CloseIdleConnections()
	url := "http://" + addr + "/orders"

	if w := load(ctx, client, url, 1, time.Minute, warmup); w.failed > 0 {
		return res, fmt.Errorf("local/serve warm-up: %d of %d requests failed, first: %s", w.failed, w.ok+w.failed, w.firstErr)
	}
	for _, c := range levels {
		r := load(ctx, client, url, c, perLevel, maxPerLevel)
		r.mode = mode
		res.levels = append(res.levels, r)
		if err := ctx.Err(); err != nil {
			return res, err
		}
	}
	if hwm, rss, err := peakRSS(cmd.Process.Pid); err != nil {
		res.memoryErr = err.Error()
	} else {
		res.hwm, res.rss = hwm, rss
	}
	return res, nil
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
				err := postOrder(ctx, client, url, newKey())
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

func postOrder(ctx context.Context, client *http.Client, url, key string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(orderstest.JSON))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(idemhttp.HeaderKey, idemhttp.QuoteKey(key))
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusCreated {
		return fmt.Errorf("status %d: %.200s", resp.StatusCode, body)
	}
	return nil
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
