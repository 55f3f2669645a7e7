// Command serve runs the order API on this machine without SAM or Docker,
// behind local/apigw, which stands in for API Gateway (HTTP API): it builds
// the events the function gets in AWS and maps its responses back. The
// routes, the function and its timeout and memory come from template.yaml
// itself (internal/samtemplate), so a route added there is served here with
// no code change.
//
//	make local    # starts DynamoDB Local, then this, and stops both on Ctrl-C
//
// Two runners:
//
//   - With -bootstrap PATH (what `make local` passes on Linux): the function's
//     real bootstrap binary, built as `sam build` builds it but for this
//     machine's architecture, runs under the AWS Lambda Runtime Interface
//     Emulator (-rie PATH) in a pool of execution environments (local/rie):
//     one invocation at a time per environment, a new one started when all
//     are busy, up to -max-environments, idle ones reused warm, each its own
//     process with its own memory (the limit: the template's
//     ReservedConcurrentExecutions, else 4). Cold starts and each
//     invocation's environment are logged. A request that finds every
//     environment busy waits for one for up to -queue-wait and is then
//     throttled, answered as API Gateway answers for a throttled function:
//     500 {"message":"Internal Server Error"}. By default it waits not at
//     all when the limit is the template's ReservedConcurrentExecutions (as
//     Lambda throttles at once) and up to the function timeout when the limit
//     is this machine's default or -max-environments (AWS would have scaled
//     out).
//   - Without it, or where the emulator cannot run (not Linux), the
//     in-process runner: the handler the bootstrap registers
//     (app.LambdaHandler around app.New) called directly.
//
// Environment: DYNAMODB_ENDPOINT (required: serve never talks to AWS's
// DynamoDB), API_ADDR (default 127.0.0.1:3000; port 0 picks a free one), and
// the function's own variables (ORDERS_TABLE, IDEMPOTENCY_TABLE,
// IDEMPOTENCY_TTL, IDEMPOTENCY_MODE, LOG_LEVEL, AUTH_MODE; see
// app.ConfigFromEnv), which
// are all of this process's environment the function sees. The tables are
// created if missing.
//
// When the server is ready it prints one line to stderr, "serve: listening
// on http://ADDR", followed by the function, the runner (the emulator and
// the pool's size, or the in-process runner and why) and the tables. SIGINT
// or SIGTERM shuts it down gracefully (requests in flight finish, for up to
// 5 s; then the environments are stopped) and it exits 0.
//
// With -hold DURATION every create's commit (its DynamoDB transaction) is
// held that long after its key is taken, so that a retry meets it in
// progress: a demonstration aid for the README's conflict step. It works the
// same with either runner and without any code in the function: the function
// is pointed at a proxy in front of DynamoDB Local that delays
// TransactWriteItems. A deployed function has no such proxy.
//
// With -tables-only it creates the tables and exits: the set-up step for
// `sam local start-api`, whose container does not create tables.
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/parcelhq/orderservice/functions/createorder/app"
	"github.com/parcelhq/orderservice/internal/ddb"
	"github.com/parcelhq/orderservice/local/apigw"
	"github.com/parcelhq/orderservice/local/jwtauth"
	"github.com/parcelhq/orderservice/local/rie"
)

// AddrEnv names the variable holding the address to listen on.
const AddrEnv = "API_ADDR"

const defaultAddr = "127.0.0.1:3000"

type options struct {
	tablesOnly bool
	template   string
	timeout    time.Duration
	hold       time.Duration
	bootstrap  string
	rie        string
	maxEnvs    int
	queueWait  *time.Duration // nil: the default (see rieRunner)
	jwtKey     string
}

func main() {
	var o options
	flag.BoolVar(&o.tablesOnly, "tables-only", false, "create the tables and exit")
	flag.StringVar(&o.template, "template", "", "the SAM template whose HTTP API routes, function, timeout and memory are served (default: template.yaml in this directory or the nearest parent that has one)")
	flag.DurationVar(&o.timeout, "timeout", 0, "function timeout: each invocation's deadline (default: the template's Timeout)")
	flag.DurationVar(&o.hold, "hold", 0, "demonstration aid: hold every create's commit this long after its key is taken, so a second request with the same key meets it in progress (409)")
	flag.StringVar(&o.bootstrap, "bootstrap", "", "run this bootstrap binary (linux, this machine's architecture) under the Lambda Runtime Interface Emulator instead of calling the handler in-process")
	flag.StringVar(&o.rie, "rie", "", "the aws-lambda-rie binary (default: bin/aws-lambda-rie beside the template, which `make deps` installs)")
	flag.StringVar(&o.jwtKey, "jwt-key", jwtauth.KeyFile(), "the local identity provider's key pair, shared with `make token` (env "+jwtauth.KeyFileEnv+")")
	flag.IntVar(&o.maxEnvs, "max-environments", 0, fmt.Sprintf("with -bootstrap: the most execution environments the pool starts, the function's concurrency (default: the template's ReservedConcurrentExecutions, else %d)", rie.DefaultMax))
	flag.Func("queue-wait", "with -bootstrap: how long a request that finds every environment busy waits for one before it is throttled (500, as API Gateway answers for a throttled function); 0: throttled at once (default: 0 when the limit is the template's ReservedConcurrentExecutions, as Lambda does; else up to the function timeout)", func(v string) error {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			return fmt.Errorf("want a duration of 0 or more, such as 0, 500ms or 5s")
		}
		o.queueWait = &d
		return nil
	})
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "serve:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, o options) error {
	endpoint := os.Getenv(ddb.EndpointEnv)
	if endpoint == "" {
		return fmt.Errorf("%s is not set; run `make local` (it starts DynamoDB Local), or set it to a DynamoDB Local endpoint such as http://127.0.0.1:8000 — serve never uses AWS's DynamoDB", ddb.EndpointEnv)
	}
	if o.maxEnvs < 0 {
		return fmt.Errorf("-max-environments %d: want at least 1 (0 or unset: the default)", o.maxEnvs)
	}
	cfg, err := app.ConfigFromEnv()
	if err != nil {
		return err
	}
	logger := app.NewLogger(os.Stdout, cfg.LogLevel)
	client, err := ddb.NewClient(ctx)
	if err != nil {
		return err
	}
	setup, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	for _, t := range cfg.Tables() {
		if err := ddb.EnsureTable(setup, client, t); err != nil {
			return fmt.Errorf("%w (is DynamoDB Local running at %s?)", err, endpoint)
		}
	}
	if o.tablesOnly {
		fmt.Fprintf(os.Stderr, "serve: tables %s and %s ready at %s\n", cfg.OrdersTable, cfg.IdempotencyTable, endpoint)
		return nil
	}

	fn, tplPath, err := loadFunction(o.template)
	if err != nil {
		return err
	}
	if o.timeout > 0 {
		fn.Timeout = o.timeout
	}
	reserved := false // the pool's limit is the function's reserved concurrency
	if o.maxEnvs == 0 {
		o.maxEnvs = rie.DefaultMax
		if fn.ReservedConcurrency > 0 {
			o.maxEnvs, reserved = fn.ReservedConcurrency, true
		}
	}
	if o.queueWait == nil {
		var d time.Duration // up to the invocation's deadline, the function timeout
		if reserved {
			d = -1 // Lambda throttles beyond a reserved concurrency at once
		}
		o.queueWait = &d
	} else if *o.queueWait == 0 {
		d := time.Duration(-1) // the flag's 0 is rie's "not at all"
		o.queueWait = &d
	}

	// The DynamoDB endpoint the function uses: DynamoDB Local, or with -hold
	// the proxy in front of it that holds each commit.
	fnEndpoint := endpoint
	if o.hold > 0 {
		proxy, err := startHoldProxy(endpoint, o.hold)
		if err != nil {
			return err
		}
		defer proxy.Close()
		fnEndpoint = proxy.URL
	}

	var r *runner
	if o.bootstrap != "" && rie.Supported() {
		r, err = rieRunner(fn, tplPath, o, fnEndpoint, logger)
	} else {
		why := "no -bootstrap given"
		if o.bootstrap != "" {
			why = fmt.Sprintf("the Lambda Runtime Interface Emulator runs on Linux only, this is %s", goos)
		}
		fnClient := client
		if fnEndpoint != endpoint {
			fnClient, err = ddb.NewClient(ctx, func(opt *dynamodb.Options) { opt.BaseEndpoint = aws.String(fnEndpoint) })
			if err != nil {
				return err
			}
		}
		r, err = inProcessRunner(ctx, cfg, fnClient, logger, why)
	}
	if err != nil {
		return err
	}
	defer r.close()

	gw := apigw.Options{Routes: fn.Routes, Timeout: fn.Timeout, FunctionName: fn.ID, Logger: logger}
	if cfg.AuthMode == app.AuthJWT {
		if gw.Authorize, err = jwtauth.GatewayAuthorizer(o.jwtKey, tplPath, logger); err != nil {
			return err
		}
	}
	adapter, err := apigw.New(r.handler, gw)
	if err != nil {
		return err
	}

	addr := os.Getenv(AddrEnv)
	if addr == "" {
		addr = defaultAddr
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w (set %s to another address)", addr, err, AddrEnv)
	}
	hold := ""
	if o.hold > 0 {
		hold = fmt.Sprintf("; every create's commit held %s", o.hold)
	}
	if gw.Authorize != nil {
		fmt.Fprintf(os.Stderr, "serve: every route needs a bearer token: TOKEN=$(make -s token SUB=<name>) (key pair %s)\n", o.jwtKey)
	} else {
		fmt.Fprintf(os.Stderr, "serve: %s=%s: no authorizer, every caller is the one anonymous caller\n", app.EnvAuthMode, cfg.AuthMode)
	}
	fmt.Fprintf(os.Stderr, "serve: listening on http://%s — %s from %s (%d routes, timeout %s, %d MB), %s (DynamoDB %s, tables %s and %s%s)\n",
		ln.Addr(), fn.ID, tplPath, len(fn.Routes), fn.Timeout, fn.MemoryMB, r.description,
		endpoint, cfg.OrdersTable, cfg.IdempotencyTable, hold)
	err = adapter.Serve(ctx, ln)
	fmt.Fprintln(os.Stderr, "serve: stopped")
	return err
}
