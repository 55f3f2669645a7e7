//go:build crashtest

// Command crashserve is local/serve for the reliability suite: the order API
// (app.New, app.LambdaHandler, the local/apigw emulation) on 127.0.0.1, built
// only with the crashtest tag, with knobs a deployment never has:
//
//   - CRASH_AT=acquired|handler|handled|committed: the process SIGKILLs
//     itself at that point of the first POST /orders that reaches it —
//     after the lease is acquired (idem.StepAcquired), inside the create
//     handler after it enlisted its write (app.WithCreateMiddleware), after
//     the handler returned and before the commit (idem.StepHandled), or after
//     the commit and before the response is written (idem.StepCommitted).
//   - CRASHSERVE_LEASE, CRASHSERVE_CLOCK_SKEW: the guard's Lease and
//     ClockSkew (Go durations), so a dead attempt's lease lapses quickly.
//   - CRASHSERVE_DDB_TIMEOUT: the DynamoDB client's HTTP timeout per attempt
//     (a Go duration), so a fault proxy's delays exceed it.
//   - CRASHSERVE_TIMEOUT: the function timeout (each invocation's deadline);
//     default 10s.
//
// Otherwise it reads the function's variables (app.ConfigFromEnv),
// DYNAMODB_ENDPOINT, API_ADDR, AUTH_MODE and LOCAL_JWT_KEY (bearer tokens
// checked as local/serve checks them) like local/serve, prints
// "crashserve: listening on http://ADDR" to stderr when ready, and expects the
// tables to exist. SIGINT/SIGTERM stop it.
package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/parcelhq/orderservice/functions/createorder/app"
	"github.com/parcelhq/orderservice/internal/ddb"
	"github.com/parcelhq/orderservice/internal/idem"
	"github.com/parcelhq/orderservice/local/apigw"
	"github.com/parcelhq/orderservice/local/jwtauth"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "crashserve:", err)
		os.Exit(1)
	}
}

func duration(name string, def time.Duration) (time.Duration, error) {
	v := os.Getenv(name)
	if v == "" {
		return def, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%s=%q is not a positive duration", name, v)
	}
	return d, nil
}

func die() {
	_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
	select {} // never returns: the signal is fatal
}

func run(ctx context.Context) error {
	if os.Getenv(ddb.EndpointEnv) == "" {
		return fmt.Errorf("%s is not set", ddb.EndpointEnv)
	}
	cfg, err := app.ConfigFromEnv()
	if err != nil {
		return err
	}
	lease, err := duration("CRASHSERVE_LEASE", 0)
	if err != nil {
		return err
	}
	skew, err := duration("CRASHSERVE_CLOCK_SKEW", 0)
	if err != nil {
		return err
	}
	ddbTimeout, err := duration("CRASHSERVE_DDB_TIMEOUT", 0)
	if err != nil {
		return err
	}
	timeout, err := duration("CRASHSERVE_TIMEOUT", 10*time.Second)
	if err != nil {
		return err
	}
	var clientOpts []func(*dynamodb.Options)
	if ddbTimeout > 0 {
		clientOpts = append(clientOpts, func(o *dynamodb.Options) {
			o.HTTPClient = &http.Client{Timeout: ddbTimeout}
		})
	}
	client, err := ddb.NewClient(ctx, clientOpts...)
	if err != nil {
		return err
	}

	opts := []app.Option{app.WithGuardConfig(func(c *idem.Config) {
		c.Lease, c.ClockSkew = lease, skew
	})}
	switch at := os.Getenv("CRASH_AT"); at {
	case "":
	case "handler":
		opts = append(opts, app.WithCreateMiddleware(func(next http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				next.ServeHTTP(w, r) // the order write is enlisted, not committed
				die()
			})
		}))
	case "acquired", "handled", "committed":
		idem.SetStepHook(func(_ context.Context, s idem.Step) {
			if s.String() == at {
				die()
			}
		})
	default:
		return fmt.Errorf("CRASH_AT=%q: want acquired, handler, handled or committed", at)
	}

	logger := app.NewLogger(os.Stdout, cfg.LogLevel)
	h, err := app.New(ctx, cfg, client, logger, opts...)
	if err != nil {
		return err
	}
	gw := apigw.Options{Routes: app.RouteKeys(), Timeout: timeout, Logger: logger}
	if cfg.AuthMode == app.AuthJWT {
		// local/serve's gateway authorizer, with the same key pair file.
		authz, err := jwtauth.LocalAuthorizer(jwtauth.KeyFile(), "template.yaml")
		if err != nil {
			return err
		}
		gw.Authorize = func(r *http.Request, routeKey string) (*events.APIGatewayV2HTTPRequestContextAuthorizerDescription, *apigw.GatewayResponse) {
			auth, d := authz.Authorize(r, routeKey)
			if d != nil {
				return nil, &apigw.GatewayResponse{Status: d.Status, Headers: d.Header(), Body: d.Body}
			}
			return auth, nil
		}
	}
	adapter, err := apigw.New(app.LambdaHandler(h), gw)
	if err != nil {
		return err
	}
	addr := os.Getenv("API_ADDR")
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "crashserve: listening on http://%s\n", ln.Addr())
	return adapter.Serve(ctx, ln)
}
