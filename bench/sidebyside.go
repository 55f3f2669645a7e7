package main

import (
	"bufio"
	"context"
	"encoding/json"
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

// The systems of the side-by-side phase.
const (
	sysLease      = "ours, lease"
	sysOptimistic = "ours, optimistic"
	sysItem       = "ours, item"
	sysPowertools = "Powertools-TS 2.35"
	sysFloorPut   = "floor: one conditional PutItem (order + record)"
	sysFloorPutGW = "floor: the same PutItem behind the API Gateway emulation"
	sysFloorLease = "floor: the lease protocol's 2 calls"
	sysFloorOpt   = "floor: the optimistic transaction"
	sysBaseline   = "baseline build of local/serve (-baseline-serve), default mode"
)

// ourSystems are the systems of ours, one per guard mode, in the order of
// ourModes.
var ourSystems = []string{sysLease, sysOptimistic, sysItem}

// sysOf names the system of ours in mode m.
func sysOf(m idem.Mode) string {
	for i, om := range ourModes {
		if om == m {
			return ourSystems[i]
		}
	}
	return ""
}

// floorOf names the floor server making the same DynamoDB calls as a
// system of ours: for Item mode, one conditional PutItem of the order item
// carrying record attributes like Item mode's, under its condition.
var floorOf = map[string]string{sysLease: sysFloorLease, sysOptimistic: sysFloorOpt, sysItem: sysFloorPut}

// gatewayFloorOf names the floor making the same DynamoDB calls as a system
// of ours in a Lambda handler behind the same API Gateway emulation as
// local/serve (Item mode, the default, only): the CPU ours spends beyond it
// is the function's own, without the emulator's, which on AWS is API
// Gateway's and billed to no function.
var gatewayFloorOf = map[string]string{sysItem: sysFloorPutGW}

// sysSpec is one system under test: how to start one of its server
// processes, and whether it is measured on uncached hits (then a second
// process, another execution environment, answers the retries).
type sysSpec struct {
	name string
	cmd  func(ctx context.Context) *exec.Cmd
	hits bool
	hint bool // it reads Idempotency-Retry: half its uncached hits are sent with the hint, half without
}

// proc is a running server process.
type proc struct {
	url  string // http://127.0.0.1:PORT/orders
	pid  int
	stop func()
}

// sysResult is what the side-by-side phase measured of one system: one
// entry per pass in every slice.
type sysResult struct {
	name             string
	missP50, missP99 []time.Duration // c=1, fresh keys
	hitP50, hitP99   []time.Duration // c=1, the same requests again, to the other process (with Idempotency-Retry: ?1 where the system reads it)
	missCPU, missJVM []time.Duration // per create, c=1
	hitCPU, hitJVM   []time.Duration // per hit, c=1
	// The other half of the uncached hits of a system that reads the hint,
	// sent without it (empty for the others).
	plainP50, plainP99 []time.Duration
	plainCPU, plainJVM []time.Duration
	rps                map[int][]float64
	loadCPU, loadJVM   map[int][]time.Duration // per create at each concurrency
	ok, failed         int
	firstErr           string
	hwm, rss           int64 // KiB, of the process answering the misses, after the phase
	memoryErr          string
}

// sideBySideResult is the whole phase.
type sideBySideResult struct {
	order       []string // systems in pass-1 order
	systems     map[string]*sysResult
	passes      int
	levels      []int
	jvm         bool // DynamoDB Local's JVM was found, so its CPU is accounted
	loadBetween []string
	// paired is the paired CPU phase (cpupairs.go), by system; empty when
	// it did not run.
	paired     map[string]*pairedRun
	cpuRounds  int
	cpuBlock   int
	pairedLoad string // load average at its start
}

// sideBySideOptions bounds the phase.
type sideBySideOptions struct {
	passes        int           // ABBA: an even number; pass i runs the systems forwards when i is even
	warmup        int           // requests per process before the first pass
	missN         int           // at most this many c=1 misses per pass
	missDur       time.Duration // and for at most this long
	levels        []int
	levelDur      time.Duration
	levelMax      int
	withPeer      bool
	powertoolDir  string
	baselineServe string // another build of local/serve to measure, or ""
	cpuRounds     int    // paired CPU phase: rounds (0: not run)
	cpuBlock      int    // and misses per system and round
}

var listeningAnyRE = regexp.MustCompile(`listening on http://(\S+)`)

// startProc starts cmd, waits for its "listening on http://ADDR" line on
// stderr (2 minutes at most) and returns it running; stop sends SIGTERM and
// waits.
func startProc(cmd *exec.Cmd) (*proc, error) {
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stdout = nil // request logs: discarded
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 10 * time.Second
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	stop := func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	}
	addrc := make(chan string, 1)
	var mu sync.Mutex
	var lines []string
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			mu.Lock()
			if len(lines) < 200 {
				lines = append(lines, line)
			}
			mu.Unlock()
			if m := listeningAnyRE.FindStringSubmatch(line); m != nil {
				select {
				case addrc <- m[1]:
				default:
				}
			}
		}
		close(addrc)
	}()
	select {
	case addr, ok := <-addrc:
		if !ok {
			stop()
			mu.Lock()
			defer mu.Unlock()
			return nil, fmt.Errorf("%s exited before listening:\n%s", filepath.Base(cmd.Path), strings.Join(lines, "\n"))
		}
		if !strings.HasPrefix(addr, "127.0.0.1:") {
			stop()
			return nil, fmt.Errorf("%s listens on %s, not 127.0.0.1", filepath.Base(cmd.Path), addr)
		}
		return &proc{url: "http://" + addr + "/orders", pid: cmd.Process.Pid, stop: stop}, nil
	case <-time.After(2 * time.Minute):
		stop()
		return nil, fmt.Errorf("%s did not start listening within 2 minutes", filepath.Base(cmd.Path))
	}
}

// systemSpecs returns the systems: ours in each mode (local/serve, the
// API Gateway emulation of `make local`), the Powertools peer, and the
// four floor servers (this program re-executed with -floor; one of them behind the API Gateway emulation).
func systemSpecs(serveBin, self, endpoint string, t benchTables, o sideBySideOptions) []sysSpec {
	var specs []sysSpec
	for _, mode := range ourModes {
		specs = append(specs, sysSpec{name: sysOf(mode), cmd: serveCmd(serveBin, endpoint, t.sbs[mode.String()], mode), hits: true, hint: true})
	}
	if o.baselineServe != "" {
		specs = append(specs, sysSpec{name: sysBaseline, cmd: serveCmd(o.baselineServe, endpoint, t.sbs["baseline"], app.DefaultMode), hits: true})
	}
	return append(specs, peerAndFloors(self, endpoint, t, o)...)
}

// serveCmd starts bin, a local/serve, on cfg's tables in mode.
func serveCmd(bin, endpoint string, cfg app.Config, mode idem.Mode) func(context.Context) *exec.Cmd {
	return func(ctx context.Context) *exec.Cmd {
		cmd := exec.CommandContext(ctx, bin)
		cmd.Env = append(scrubbedEnv(),
			ddb.EndpointEnv+"="+endpoint, "API_ADDR=127.0.0.1:0",
			app.EnvOrdersTable+"="+cfg.OrdersTable, app.EnvIdempotencyTable+"="+cfg.IdempotencyTable,
			app.EnvIdempotencyMode+"="+mode.String(), app.EnvLogLevel+"=INFO",
			// The guard's cost, not the gateway's token check: the peer
			// and the floors have no authorizer either.
			app.EnvAuthMode+"="+app.AuthNone)
		return cmd
	}
}

// peerAndFloors are the Powertools peer (when o.withPeer) and the floor
// servers.
func peerAndFloors(self, endpoint string, t benchTables, o sideBySideOptions) []sysSpec {
	var specs []sysSpec
	floor := func(mode string) func(context.Context) *exec.Cmd {
		cfg := t.sbs["floor-"+mode]
		return func(ctx context.Context) *exec.Cmd {
			cmd := exec.CommandContext(ctx, self, "-floor", mode, "-floor-orders", cfg.OrdersTable, "-floor-idem", cfg.IdempotencyTable)
			cmd.Env = append(scrubbedEnv(), ddb.EndpointEnv+"="+endpoint)
			return cmd
		}
	}
	if o.withPeer {
		cfg := t.sbs["powertools"]
		specs = append(specs, sysSpec{name: sysPowertools, hits: true, cmd: func(ctx context.Context) *exec.Cmd {
			cmd := exec.CommandContext(ctx, "node", filepath.Join(o.powertoolDir, "server.mjs"))
			cmd.Env = append(scrubbedEnv(), ddb.EndpointEnv+"="+endpoint,
				"ORDERS_TABLE="+cfg.OrdersTable, "IDEMPOTENCY_TABLE="+cfg.IdempotencyTable,
				"AWS_SDK_JS_SUPPRESS_MAINTENANCE_MODE_MESSAGE=1", "NODE_NO_WARNINGS=1")
			return cmd
		}})
	}
	specs = append(specs,
		sysSpec{name: sysFloorPut, cmd: floor(floorPut)},
		sysSpec{name: sysFloorPutGW, cmd: floor(floorPutGateway)},
		sysSpec{name: sysFloorLease, cmd: floor(floorLease)},
		sysSpec{name: sysFloorOpt, cmd: floor(floorOptimistic)},
	)
	return specs
}

// sideBySide starts every system's processes, warms them, then measures
// them pass after pass, ABBA: forwards on even passes, backwards on odd
// ones, so that drift in the machine's load falls on every system alike.
// A pass runs every system's misses at c=1 (fresh keys), each followed by
// the same requests again to the system's second process (hits that its
// cache cannot answer); then every system at the first concurrency level,
// then at the next, and so on. CPU time of the server process and of
// DynamoDB Local's JVM is read from /proc before and after each run.
func sideBySide(ctx context.Context, specs []sysSpec, jvmPID int, o sideBySideOptions) (sideBySideResult, error) {
	res := sideBySideResult{systems: map[string]*sysResult{}, passes: o.passes, levels: o.levels, jvm: jvmPID > 0}
	type running struct {
		spec sysSpec
		a, b *proc
	}
	var sys []running
	defer func() {
		for _, s := range sys {
			s.a.stop()
			if s.b != nil {
				s.b.stop()
			}
		}
	}()
	for _, sp := range specs {
		r := running{spec: sp}
		var err error
		if r.a, err = startProc(sp.cmd(ctx)); err != nil {
			return res, fmt.Errorf("%s: %w", sp.name, err)
		}
		sys = append(sys, r)
		if sp.hits {
			if r.b, err = startProc(sp.cmd(ctx)); err != nil {
				return res, fmt.Errorf("%s, second process: %w", sp.name, err)
			}
			sys[len(sys)-1] = r
		}
		res.order = append(res.order, sp.name)
		res.systems[sp.name] = &sysResult{name: sp.name, rps: map[int][]float64{}, loadCPU: map[int][]time.Duration{}, loadJVM: map[int][]time.Duration{}}
	}
	maxConc := 1
	for _, c := range o.levels {
		maxConc = max(maxConc, c)
	}
	client := &http.Client{
		Timeout:   30 * time.Second,
		Transport: &http.Transport{MaxIdleConns: 4 * maxConc * len(sys), MaxIdleConnsPerHost: maxConc, IdleConnTimeout: time.Minute},
	}
	defer client.CloseIdleConnections()

	cpu := func(pid int) time.Duration {
		if pid <= 0 {
			return 0
		}
		d, _ := cpuTime(pid)
		return d
	}
	perReq := func(d time.Duration, n int) time.Duration {
		if n == 0 {
			return 0
		}
		return d / time.Duration(n)
	}

	logf("side by side: warming up %d systems (%d requests per process)", len(sys), o.warmup)
	for _, s := range sys {
		w := pairs(ctx, client, s.a, s.b, o.warmup, time.Minute)
		if w.failed > 0 {
			return res, fmt.Errorf("%s warm-up: %d requests failed, first: %s", s.spec.name, w.failed, w.firstErr)
		}
	}

	for pass := range o.passes {
		order := abba(pass, sys)
		logf("side by side: pass %d of %d (load %s)", pass+1, o.passes, loadAvg())
		res.loadBetween = append(res.loadBetween, loadAvg())
		// Each kind of run goes through every system before the next kind
		// starts, so the systems' runs of one kind lie close together in
		// time.
		for _, s := range order {
			r := res.systems[s.spec.name]
			if err := ctx.Err(); err != nil {
				return res, err
			}
			// Misses at c=1, keeping the keys and the orders they made.
			a0, j0 := cpu(s.a.pid), cpu(jvmPID)
			m := sequentialMisses(ctx, client, s.a.url, o.missN, o.missDur)
			a1, j1 := cpu(s.a.pid), cpu(jvmPID)
			r.note(m.loadResult)
			r.missP50 = append(r.missP50, percentile(m.latencies, 50))
			r.missP99 = append(r.missP99, percentile(m.latencies, 99))
			r.missCPU = append(r.missCPU, perReq(a1-a0, m.ok))
			r.missJVM = append(r.missJVM, perReq(j1-j0, m.ok))
			if s.b != nil {
				hits := func(done []created, hint bool, p50, p99, srv, jvm *[]time.Duration) {
					b0, j0 := cpu(s.b.pid), cpu(jvmPID)
					h := retries(ctx, client, s.b.url, done, hint)
					b1, j1 := cpu(s.b.pid), cpu(jvmPID)
					r.note(h)
					*p50, *p99 = append(*p50, percentile(h.latencies, 50)), append(*p99, percentile(h.latencies, 99))
					*srv, *jvm = append(*srv, perReq(b1-b0, h.ok)), append(*jvm, perReq(j1-j0, h.ok))
				}
				hinted, plain := m.done, []created(nil)
				if s.spec.hint {
					// Half with the hint, half without; which half goes
					// first alternates with the passes.
					half := len(m.done) / 2
					hinted, plain = m.done[:half], m.done[half:]
					if pass%2 == 1 {
						hinted, plain = m.done[half:], m.done[:half]
					}
				}
				withHint := func() { hits(hinted, s.spec.hint, &r.hitP50, &r.hitP99, &r.hitCPU, &r.hitJVM) }
				without := func() {
					if len(plain) > 0 {
						hits(plain, false, &r.plainP50, &r.plainP99, &r.plainCPU, &r.plainJVM)
					}
				}
				first, second := withHint, without
				if pass%2 == 1 {
					first, second = without, withHint
				}
				first()
				second()
			}
		}
		for _, c := range o.levels {
			for _, s := range order {
				r := res.systems[s.spec.name]
				if err := ctx.Err(); err != nil {
					return res, err
				}
				a0, j0 := cpu(s.a.pid), cpu(jvmPID)
				l := load(ctx, client, s.a.url, c, o.levelDur, o.levelMax)
				a1, j1 := cpu(s.a.pid), cpu(jvmPID)
				r.note(l)
				r.rps[c] = append(r.rps[c], l.rps())
				r.loadCPU[c] = append(r.loadCPU[c], perReq(a1-a0, l.ok))
				r.loadJVM[c] = append(r.loadJVM[c], perReq(j1-j0, l.ok))
			}
		}
	}
	if o.cpuRounds > 0 {
		procs := map[string]*proc{}
		for _, s := range sys {
			procs[s.spec.name] = s.a
		}
		res.cpuRounds, res.cpuBlock, res.pairedLoad = o.cpuRounds, o.cpuBlock, loadAvg()
		var err error
		if res.paired, err = pairedCPU(ctx, client, procs, res.systems, jvmPID, o.cpuRounds, o.cpuBlock); err != nil {
			return res, fmt.Errorf("paired CPU: %w", err)
		}
	}
	for _, s := range sys {
		r := res.systems[s.spec.name]
		if hwm, rss, err := peakRSS(s.a.pid); err != nil {
			r.memoryErr = err.Error()
		} else {
			r.hwm, r.rss = hwm, rss
		}
	}
	return res, nil
}

func (r *sysResult) note(l loadResult) {
	r.ok += l.ok
	r.failed += l.failed
	if r.firstErr == "" && l.firstErr != "" {
		r.firstErr = l.firstErr
	}
}

// created is a request that made an order: its key and the order's id.
type created struct{ key, orderID string }

type missRun struct {
	loadResult
	done []created
}

// sequentialMisses sends up to n POST /orders with fresh keys, one at a
// time, for at most dur.
func sequentialMisses(ctx context.Context, client *http.Client, url string, n int, dur time.Duration) missRun {
	r := missRun{loadResult: loadResult{concurrency: 1}}
	start := time.Now()
	for i := 0; i < n && time.Since(start) < dur && ctx.Err() == nil; i++ {
		key := newKey()
		t0 := time.Now()
		id, err := postOrder(ctx, client, url, key, false)
		if err != nil {
			r.failed++
			if r.firstErr == "" {
				r.firstErr = err.Error()
			}
			continue
		}
		r.latencies = append(r.latencies, time.Since(t0))
		r.ok++
		r.done = append(r.done, created{key, id})
	}
	r.elapsed = time.Since(start)
	return r
}

// retries sends each request of done again, one at a time, with
// Idempotency-Retry: ?1 when hint is set, and checks that the answer is the
// order that request made (a replay, not a new order).
func retries(ctx context.Context, client *http.Client, url string, done []created, hint bool) loadResult {
	r := loadResult{concurrency: 1}
	start := time.Now()
	for _, c := range done {
		if ctx.Err() != nil {
			break
		}
		t0 := time.Now()
		id, err := postOrder(ctx, client, url, c.key, hint)
		if err == nil && id != c.orderID {
			err = fmt.Errorf("a retry got order %s, not the replay of %s", id, c.orderID)
		}
		if err != nil {
			r.failed++
			if r.firstErr == "" {
				r.firstErr = err.Error()
			}
			continue
		}
		r.latencies = append(r.latencies, time.Since(t0))
		r.ok++
	}
	r.elapsed = time.Since(start)
	return r
}

// pairs warms a system: n misses to a, each retried to b when b is set,
// half of them with the retry hint and half without, so both of a hit's
// paths are warm.
func pairs(ctx context.Context, client *http.Client, a, b *proc, n int, dur time.Duration) loadResult {
	m := sequentialMisses(ctx, client, a.url, n, dur)
	if b == nil || m.failed > 0 {
		return m.loadResult
	}
	half := len(m.done) / 2
	if r := retries(ctx, client, b.url, m.done[:half], true); r.failed > 0 {
		return r
	}
	return retries(ctx, client, b.url, m.done[half:], false)
}

// postOrder sends POST /orders with key (as a Structured Field string) and
// the example order, with Idempotency-Retry: ?1 when retry is set, and
// returns the order_id of a 201 answer.
func postOrder(ctx context.Context, client *http.Client, url, key string, retry bool) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(orderstest.JSON))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(idemhttp.HeaderKey, idemhttp.QuoteKey(key))
	if retry {
		req.Header.Set(idemhttp.HeaderRetry, "?1")
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusCreated {
		return "", fmt.Errorf("status %d: %.200s", resp.StatusCode, body)
	}
	var o struct {
		ID string `json:"order_id"`
	}
	if err := json.Unmarshal(body, &o); err != nil || o.ID == "" {
		return "", fmt.Errorf("a 201 without an order_id: %.200s", body)
	}
	return o.ID, nil
}

// peerDir returns bench/powertools under root when its node_modules are
// installed (make bench installs them) and node is on PATH.
func peerDir(root string) (string, error) {
	dir := filepath.Join(root, "bench", "powertools")
	if _, err := exec.LookPath("node"); err != nil {
		return "", errors.New("the Powertools peer needs node on PATH (or run with -peer=false)")
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "@aws-lambda-powertools", "idempotency")); err != nil {
		return "", fmt.Errorf("the Powertools peer is not installed: run `make bench` (it runs npm ci in %s), or -peer=false", dir)
	}
	return dir, nil
}
