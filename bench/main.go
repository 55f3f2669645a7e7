// Command bench measures the order service in one run and writes the results
// as a Markdown report (BENCHMARKS.md): the DynamoDB calls and write units
// each kind of request makes, counted by an SDK middleware; the latency of a
// guarded create-order miss and hit next to a bare conditional PutItem and
// an unguarded order write; side by side and interleaved ABBA, the real
// local/serve binary in each guard mode (lease, optimistic, item), the
// Powertools for AWS Lambda (TypeScript) idempotency peer (bench/powertools)
// and four floor servers (this program with -floor: only a protocol's
// DynamoDB calls) behind the same HTTP contract: miss and uncached-hit
// latency, creates/s, CPU per request of each server process and of
// DynamoDB Local's JVM, and the goals of issue 11 met or not for each mode;
// write units per order on AWS pricing terms; the bootstrap's size,
// start-to-first-response time and peak memory.
//
//	make bench                    # starts DynamoDB Local if needed, runs this
//	go run ./bench -out FILE      # with DYNAMODB_ENDPOINT set
//
// It needs DYNAMODB_ENDPOINT (a DynamoDB Local; never AWS), go and make on
// PATH, node and bench/powertools' node_modules (make bench installs them;
// -peer=false skips the peer), and runs from anywhere inside the module. Every table it uses is
// created for the run under a unique prefix and deleted at the end, also
// when the run fails or is interrupted. Every load is bounded both in time
// and in requests; every server it starts listens on 127.0.0.1 only. Its
// figures are reports, not assertions: it fails only when a request does
// not get the answer it must (201, replayed or not as expected), or a tool
// fails.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/parcelhq/orderservice/internal/ddb"
)

type options struct {
	out         string
	warmup      int
	iters       int
	latencyDur  time.Duration
	sbs         sideBySideOptions
	coldStarts  int
	invocations int
	layerRounds int
	layerBlock  int
}

func main() {
	var o options
	var levels string
	flag.StringVar(&o.out, "out", "", "also write the report to this file (e.g. BENCHMARKS.md)")
	flag.IntVar(&o.warmup, "warmup", 30, "in-process warm-up iterations (not recorded)")
	flag.IntVar(&o.iters, "iters", 3000, "in-process iterations at most (one request of each kind each)")
	flag.DurationVar(&o.latencyDur, "latency-time", 20*time.Second, "in-process iterations for at most this long")
	flag.IntVar(&o.sbs.passes, "passes", 6, "side-by-side passes over every system, alternately forwards and backwards (ABBA); even")
	flag.IntVar(&o.sbs.warmup, "sbs-warmup", 150, "side by side: warm-up requests per server process")
	flag.IntVar(&o.sbs.missN, "miss-requests", 600, "side by side: c=1 misses per system and pass at most")
	flag.DurationVar(&o.sbs.missDur, "miss-time", time.Second, "side by side: c=1 misses per system and pass for at most this long")
	flag.StringVar(&levels, "concurrency", "8,32", "side by side: throughput concurrency levels")
	flag.DurationVar(&o.sbs.levelDur, "level-time", 1200*time.Millisecond, "side by side: each throughput level runs at most this long")
	flag.IntVar(&o.sbs.levelMax, "level-requests", 20000, "side by side: each throughput level sends at most this many requests")
	flag.IntVar(&o.sbs.cpuRounds, "cpu-rounds", 10, "side by side: rounds of the paired CPU phase (each system of ours and its floors in turn, ABBA); 0 skips it")
	flag.IntVar(&o.sbs.cpuBlock, "cpu-block", 250, "side by side: c=1 misses per system in each round of the paired CPU phase")
	flag.BoolVar(&o.sbs.withPeer, "peer", true, "measure the Powertools peer (bench/powertools; needs node)")
	flag.StringVar(&o.sbs.baselineServe, "baseline-serve", "", "also measure this local/serve binary (another build, e.g. of main) in the default mode, as \"baseline build\"")
	flag.IntVar(&o.layerRounds, "layer-rounds", 200, "rounds of the layers phase (a block of creates per layer of the function each, ABBA); 0 skips it")
	flag.IntVar(&o.layerBlock, "layer-block", 10, "consecutive creates per layer in each round of the layers phase")
	flag.IntVar(&o.coldStarts, "cold-starts", 7, "bootstrap cold starts to time")
	flag.IntVar(&o.invocations, "invocations", 500, "invocations of the last bootstrap before its memory is read")
	floorMode := flag.String("floor", "", "internal: serve the floor of this protocol ("+strings.Join(floorModes, ", ")+") instead of benchmarking")
	floorOrders := flag.String("floor-orders", "", "internal: the floor server's orders table")
	floorIdem := flag.String("floor-idem", "", "internal: the floor server's idempotency table")
	flag.Parse()
	if *floorMode != "" {
		if !slices.Contains(floorModes, *floorMode) || *floorOrders == "" || *floorIdem == "" {
			fmt.Fprintf(os.Stderr, "bench: -floor wants one of %v, with -floor-orders and -floor-idem\n", floorModes)
			os.Exit(2)
		}
		if err := runFloor(*floorMode, *floorOrders, *floorIdem); err != nil {
			fmt.Fprintln(os.Stderr, "bench: floor:", err)
			os.Exit(1)
		}
		return
	}
	for _, f := range strings.Split(levels, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 || n > 1024 {
			fmt.Fprintf(os.Stderr, "bench: -concurrency: %q is not a level from 1 to 1024\n", f)
			os.Exit(2)
		}
		o.sbs.levels = append(o.sbs.levels, n)
	}
	if o.iters < 1 || o.coldStarts < 1 || o.invocations < 0 || o.sbs.levelMax < 1 || o.warmup < 0 || o.sbs.missN < 1 ||
		o.sbs.passes < 2 || o.sbs.passes%2 != 0 || o.sbs.warmup < 1 ||
		o.sbs.cpuRounds < 0 || o.sbs.cpuBlock < 1 || o.layerRounds < 0 || o.layerBlock < 1 {
		fmt.Fprintln(os.Stderr, "bench: -iters, -cold-starts, -miss-requests, -sbs-warmup and -level-requests must be positive, -cpu-block and -layer-block too, -passes even and at least 2; -warmup, -invocations, -cpu-rounds and -layer-rounds not negative")
		os.Exit(2)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...)
}

func run(ctx context.Context, o options) (err error) {
	began := time.Now()
	endpoint := os.Getenv(ddb.EndpointEnv)
	if endpoint == "" {
		return fmt.Errorf("%s is not set: run `make bench` (it starts DynamoDB Local), or `local/dynamodb-local.sh run -- go run ./bench`", ddb.EndpointEnv)
	}
	if u, perr := url.Parse(endpoint); perr != nil || (u.Hostname() != "127.0.0.1" && u.Hostname() != "localhost" && u.Hostname() != "::1") {
		return fmt.Errorf("%s=%s is not a local endpoint: bench creates and deletes tables and is meant for DynamoDB Local only", ddb.EndpointEnv, endpoint)
	}
	// Runs last: a lambdatest failure (runner.Fatalf) becomes the error,
	// after the other deferred clean-ups ran.
	defer func() {
		if p := recover(); p != nil {
			f, ok := p.(fatal)
			if !ok {
				panic(p)
			}
			err = errors.Join(errors.New(f.msg), err)
		}
	}()
	r, err := newRunner()
	if err != nil {
		return err
	}
	defer os.RemoveAll(r.root)
	defer r.close()

	root, err := moduleRoot()
	if err != nil {
		return err
	}
	rep := report{command: commandLine(), settings: o.String()}
	logf("describing the machine")
	rep.machine = describeMachine(ctx, root, endpoint)
	phaseStart := time.Now()
	phase := func(name string) {
		rep.phases = append(rep.phases, fmt.Sprintf("%s %s", name, time.Since(phaseStart).Round(100*time.Millisecond)))
		phaseStart = time.Now()
	}

	logf("building: make build (linux/arm64, linux/amd64) and local/serve")
	archs := []string{"arm64", "amd64"}
	if !slices.Contains(archs, runtime.GOARCH) {
		archs = append(archs, runtime.GOARCH)
	}
	if rep.artifacts, err = makeBuild(ctx, root, r.TempDir(), archs); err != nil {
		return err
	}
	serveBin, err := buildServe(ctx, root, r.TempDir())
	if err != nil {
		return err
	}
	phase("builds")

	client, err := ddb.NewClient(ctx)
	if err != nil {
		return err
	}
	tables := newBenchTables()
	defer func() {
		dctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if derr := tables.drop(dctx, client); derr != nil {
			err = errors.Join(err, derr)
		} else {
			logf("deleted tables %s-*", tables.prefix)
		}
	}()
	logf("creating tables %s-*", tables.prefix)
	if err := tables.create(ctx, client); err != nil {
		return err
	}
	phase("tables")

	logf("in-process latency and calls: up to %d iterations or %s", o.iters, o.latencyDur)
	if rep.inproc, err = inproc(ctx, endpoint, tables, o.warmup, o.iters, o.latencyDur); err != nil {
		return err
	}
	phase("in-process")

	if o.layerRounds > 0 {
		logf("layers: %d rounds of %d creates per layer of the function", o.layerRounds, o.layerBlock)
		if rep.layers, err = layers(ctx, tables, o.layerRounds, o.layerBlock); err != nil {
			return fmt.Errorf("layers: %w", err)
		}
		phase("layers")
	}

	if o.sbs.withPeer {
		if o.sbs.powertoolDir, err = peerDir(root); err != nil {
			return err
		}
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	jvm, ok := findDynamoDBLocal(endpointPort(endpoint))
	if !ok {
		logf("no DynamoDB Local JVM listening on port %s found on this machine: its CPU is not accounted", endpointPort(endpoint))
	}
	logf("side by side, ABBA: %d passes; c=1 misses and uncached hits, then concurrency %v for %s each", o.sbs.passes, o.sbs.levels, o.sbs.levelDur)
	if rep.sbs, err = sideBySide(ctx, systemSpecs(serveBin, self, endpoint, tables, o.sbs), jvm.pid, o.sbs); err != nil {
		return fmt.Errorf("side by side: %w", err)
	}
	phase("side by side")
	if rep.sizes, err = storedSizes(ctx, client, tables); err != nil {
		return fmt.Errorf("item sizes: %w", err)
	}

	var hostBin string
	for _, a := range rep.artifacts {
		if a.arch == runtime.GOARCH {
			hostBin = a.path
		}
	}
	logf("bootstrap: %d cold starts under the Lambda Runtime Interface Emulator, then %d invocations", o.coldStarts, o.invocations)
	if rep.boot, err = runBootstrap(ctx, r, hostBin, endpoint, tables.bootstrap, o.coldStarts, o.invocations); err != nil {
		return fmt.Errorf("bootstrap: %w", err)
	}
	phase("bootstrap")

	rep.machine.LoadEnd = loadAvg()
	rep.elapsed = time.Since(began)
	md := rep.markdown()
	fmt.Print(md)
	if o.out != "" {
		if err := os.WriteFile(o.out, []byte(md), 0o644); err != nil {
			return err
		}
		logf("wrote %s", o.out)
	}
	return nil
}

func (o options) String() string {
	var lv []string
	for _, l := range o.sbs.levels {
		lv = append(lv, strconv.Itoa(l))
	}
	return fmt.Sprintf("in-process: %d warm-up + up to %d iterations or %s; side by side: %d passes (ABBA), %d warm-up requests per process, c=1 up to %d misses or %s, concurrency %s each %s or %d requests; paired CPU: %d rounds of %d misses per system; layers: %d rounds of %d creates per layer; %d cold starts, %d invocations",
		o.warmup, o.iters, o.latencyDur, o.sbs.passes, o.sbs.warmup, o.sbs.missN, o.sbs.missDur, strings.Join(lv, "/"), o.sbs.levelDur, o.sbs.levelMax, o.sbs.cpuRounds, o.sbs.cpuBlock, o.layerRounds, o.layerBlock, o.coldStarts, o.invocations)
}

// commandLine is how this run was started: under make, the make target and
// the go run command it ran.
func commandLine() string {
	cmd := "go run ./bench"
	if len(os.Args) > 1 {
		cmd += " " + strings.Join(os.Args[1:], " ")
	}
	if os.Getenv("MAKELEVEL") != "" {
		return "make bench` → `" + cmd
	}
	return cmd
}

func moduleRoot() (string, error) {
	b, err := exec.Command("go", "env", "GOMOD").Output()
	gomod := strings.TrimSpace(string(b))
	if err != nil || gomod == "" || gomod == os.DevNull {
		return "", fmt.Errorf("cannot find the module root (run inside the module): %v", err)
	}
	return filepath.Dir(gomod), nil
}
