// Command serve runs the order API on this machine without SAM or Docker:
// the same handler the Lambda bootstrap registers (app.LambdaHandler around
// app.New), invoked through local/apigw, which builds the API Gateway HTTP
// API events and Lambda contexts the function gets in AWS.
//
//	make local    # starts DynamoDB Local, then this, and stops both on Ctrl-C
//
// Environment: DYNAMODB_ENDPOINT (required: serve never talks to AWS's
// DynamoDB), API_ADDR (default 127.0.0.1:3000; port 0 picks a free one), and
// the function's own variables (ORDERS_TABLE, IDEMPOTENCY_TABLE,
// IDEMPOTENCY_TTL, IDEMPOTENCY_MODE, LOG_LEVEL, AUTH_MODE; see
// app.ConfigFromEnv). The
// tables are created if missing.
//
// When the server is ready it prints one line to stderr,
// "serve: listening on http://ADDR". SIGINT or SIGTERM shuts it down
// gracefully (requests in flight finish, for up to 5 s) and it exits 0.
//
// With -hold DURATION every POST /orders is held that long after its key is
// taken (a demonstration aid for the README's conflict step; the Lambda
// bootstrap has no such option).
//
// With -tables-only it creates the tables and exits: the set-up step for
// `sam local start-api`, whose container does not create tables.
//
// Like the deployed API (AUTH_MODE=jwt, the default), every route requires a
// bearer token: the gateway checks it as API Gateway's JWT authorizer does
// (local/jwtauth), with the scopes template.yaml gives each route, and
// answers 401/403 itself without invoking the function. Tokens come from
// `make -s token SUB=<name>`, signed with the key pair in -jwt-key
// (LOCAL_JWT_KEY, default .local/jwt-signing-key.pem; made if missing).
// AUTH_MODE=none serves without an authorizer, as a stack deployed with
// AuthMode=none does.
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/parcelhq/orderservice/functions/createorder/app"
	"github.com/parcelhq/orderservice/internal/ddb"
	"github.com/parcelhq/orderservice/local/apigw"
	"github.com/parcelhq/orderservice/local/jwtauth"
)

// AddrEnv names the variable holding the address to listen on.
const AddrEnv = "API_ADDR"

const defaultAddr = "127.0.0.1:3000"

func main() {
	tablesOnly := flag.Bool("tables-only", false, "create the tables and exit")
	timeout := flag.Duration("timeout", 10*time.Second, "function timeout: each invocation's context deadline (template.yaml's Timeout)")
	hold := flag.Duration("hold", 0, "demonstration aid: hold every POST /orders this long after its key is taken, so a second request with the same key meets it in progress (409)")
	keyPath := flag.String("jwt-key", jwtauth.KeyFile(), "the local identity provider's key pair, shared with `make token` (env "+jwtauth.KeyFileEnv+")")
	templatePath := flag.String("template", "template.yaml", "the SAM template whose routes' scopes the gateway requires (relative: to the repository root)")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *tablesOnly, *timeout, *hold, *keyPath, *templatePath); err != nil {
		fmt.Fprintln(os.Stderr, "serve:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, tablesOnly bool, timeout, hold time.Duration, keyPath, templatePath string) error {
	if os.Getenv(ddb.EndpointEnv) == "" {
		return fmt.Errorf("%s is not set; run `make local` (it starts DynamoDB Local), or set it to a DynamoDB Local endpoint such as http://127.0.0.1:8000 — serve never uses AWS's DynamoDB", ddb.EndpointEnv)
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
			return fmt.Errorf("%w (is DynamoDB Local running at %s?)", err, os.Getenv(ddb.EndpointEnv))
		}
	}
	if tablesOnly {
		fmt.Fprintf(os.Stderr, "serve: tables %s and %s ready at %s\n", cfg.OrdersTable, cfg.IdempotencyTable, os.Getenv(ddb.EndpointEnv))
		return nil
	}

	var opts []app.Option
	if hold > 0 {
		opts = append(opts, app.WithCreateMiddleware(holdFor(hold)))
	}
	h, err := app.New(ctx, cfg, client, logger, opts...)
	if err != nil {
		return err
	}
	gw := apigw.Options{Routes: app.RouteKeys(), Timeout: timeout, Logger: logger}
	if cfg.AuthMode == app.AuthJWT {
		if gw.Authorize, err = jwtauth.GatewayAuthorizer(keyPath, templatePath, logger); err != nil {
			return err
		}
	}
	adapter, err := apigw.New(app.LambdaHandler(h), gw)
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
	if gw.Authorize != nil {
		fmt.Fprintf(os.Stderr, "serve: every route needs a bearer token: TOKEN=$(make -s token SUB=<name>) (key pair %s)\n", keyPath)
	} else {
		fmt.Fprintf(os.Stderr, "serve: %s=%s: no authorizer, every caller is the one anonymous caller\n", app.EnvAuthMode, cfg.AuthMode)
	}
	fmt.Fprintf(os.Stderr, "serve: listening on http://%s (DynamoDB %s, tables %s and %s)\n",
		ln.Addr(), os.Getenv(ddb.EndpointEnv), cfg.OrdersTable, cfg.IdempotencyTable)
	err = adapter.Serve(ctx, ln)
	fmt.Fprintln(os.Stderr, "serve: stopped")
	return err
}

// holdFor delays each request by d (or until it is cancelled) before handing
// it on: the -hold flag, which makes an in-progress key easy to see by hand.
func holdFor(d time.Duration) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-time.After(d):
			case <-r.Context().Done():
			}
			next.ServeHTTP(w, r)
		})
	}
}
