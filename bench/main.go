// Command bench measures the order service in one run and writes the results
// as a Markdown report (BENCHMARKS.md): the DynamoDB calls each kind of
// request makes, counted by an SDK middleware; the latency of a guarded
// create-order miss and hit next to a bare conditional PutItem and an
// unguarded order write; throughput through the real local/serve binary at
// several concurrencies; the bootstrap's size, start-to-first-response time
// and peak memory, and local/serve's peak memory.
//
//	make bench                    # starts DynamoDB Local if needed, runs this
//	go run ./bench -out FILE      # with DYNAMODB_ENDPOINT set
//
// It needs DYNAMODB_ENDPOINT (a DynamoDB Local; never AWS), go and make on
// PATH, and runs from anywhere inside the module. Every table it uses is
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
	"github.com/parcelhq/orderservice/internal/idem"
)

type options struct {
	out         string
	warmup      int
	iters       int
	latencyDur  time.Duration
	levels      []int
	levelDur    time.Duration
	levelMax    int
	coldStarts  int
	invocations int
}

func main() {
	var o options
	var levels string
	flag.StringVar(&o.out, "out", "", "also write the report to this file (e.g. BENCHMARKS.md)")
	flag.IntVar(&o.warmup, "warmup", 30, "in-process warm-up iterations (not recorded)")
	flag.IntVar(&o.iters, "iters", 3000, "in-process iterations at most (one request of each kind each)")
	flag.DurationVar(&o.latencyDur, "latency-time", 40*time.Second, "in-process iterations for at most this long")
	flag.StringVar(&levels, "concurrency", "1,8,64", "throughput concurrency levels")
	flag.DurationVar(&o.levelDur, "level-time", 5*time.Second, "each throughput level runs at most this long")
	flag.IntVar(&o.levelMax, "level-requests", 20000, "each throughput level sends at most this many requests")
	flag.IntVar(&o.coldStarts, "cold-starts", 7, "bootstrap cold starts to time")
	flag.IntVar(&o.invocations, "invocations", 500, "invocations of the last bootstrap before its memory is read")
	flag.Parse()
	for _, f := range strings.Split(levels, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 || n > 1024 {
			fmt.Fprintf(os.Stderr, "bench: -concurrency: %q is not a level from 1 to 1024\n", f)
			os.Exit(2)
		}
		o.levels = append(o.levels, n)
	}
	if o.iters < 1 || o.coldStarts < 1 || o.invocations < 0 || o.levelMax < 1 || o.warmup < 0 {
		fmt.Fprintln(os.Stderr, "bench: -iters, -cold-starts and -level-requests must be positive; -warmup and -invocations not negative")
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

	for _, mode := range []idem.Mode{idem.Lease, idem.Optimistic} {
		logf("throughput through local/serve, %s mode: concurrency %v, %s or %d requests each", mode, o.levels, o.levelDur, o.levelMax)
		s, err := serveLoad(ctx, serveBin, endpoint, tables.serve[mode], mode, o.levels, o.levelDur, o.levelMax, 50)
		if err != nil {
			return fmt.Errorf("local/serve, %s mode: %w", mode, err)
		}
		rep.serve = append(rep.serve, s)
	}
	phase("throughput")

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
	for _, l := range o.levels {
		lv = append(lv, strconv.Itoa(l))
	}
	return fmt.Sprintf("in-process: %d warm-up + up to %d iterations or %s; throughput: concurrency %s, each %s or %d requests; %d cold starts, %d invocations",
		o.warmup, o.iters, o.latencyDur, strings.Join(lv, "/"), o.levelDur, o.levelMax, o.coldStarts, o.invocations)
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
