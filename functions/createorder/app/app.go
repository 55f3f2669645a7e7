// Package app wires the order API: configuration, the orders store and
// handlers, and the idempotency guard around POST /orders. The Lambda entry
// point (functions/createorder) and the local runner (local/serve) both serve
// what New returns, so they cannot drift apart.
package app

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/awslabs/aws-lambda-go-api-proxy/httpadapter"

	"github.com/parcelhq/orderservice/internal/idem"
	"github.com/parcelhq/orderservice/internal/idem/idemhttp"
	"github.com/parcelhq/orderservice/internal/orders"
)

// Replay cache bounds: the container's memory for COMPLETED records, so that
// a storm of retries of one request costs no DynamoDB round trip.
const (
	cacheEntries = 4096
	cacheBytes   = 16 << 20
)

// New returns the order API: every request first identified by its caller
// scope (idemhttp.APIGatewayV2Scope; the anonymous scope only when
// cfg.AuthMode is AuthNone, else 403), which is also the owner of the orders
// it books and the only owner whose orders it can read; POST /orders guarded
// by the idempotency middleware (key required, in the caller's scope),
// GET /orders/{order_id} unguarded, anything else a problem+json 404/405,
// every request logged as one JSON line that also carries its CloudWatch
// Embedded Metric Format metrics (through logger's handler, with no caller
// PC: a handler with AddSource logs an empty source for it). It makes
// nothing per request and never calls DynamoDB itself; ctx is unused today
// and kept for future initialisation that needs it.
func New(_ context.Context, cfg Config, client *dynamodb.Client, logger *slog.Logger, opts ...Option) (http.Handler, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	icfg := idem.Config{
		Table:     cfg.IdempotencyTable,
		Mode:      cfg.Mode,
		Retention: cfg.Retention,
		Cache:     idem.NewCache(cacheEntries, cacheBytes),
		Observer:  countEvent,
	}
	if cfg.Mode == idem.Item {
		// The order is the one new item the create handler writes; its id
		// comes from orders.NewIDFrom on ddb.KeyRand, which the guard seeds.
		icfg.Item = idem.ItemConfig{Table: cfg.Tables()[0], NewKey: orders.NewIDFrom}
	}
	if o.guardConfig != nil {
		o.guardConfig(&icfg)
	}
	guard := idem.New(client, icfg)
	h := orders.NewHandler(orders.NewStore(client, cfg.OrdersTable), orders.WithLogger(logger))
	var inner http.Handler = h.Create()
	if o.createMiddleware != nil {
		inner = o.createMiddleware(inner)
	}
	scope := callerScope(cfg.AuthMode == AuthNone)
	create := idemhttp.Middleware(guard, idemhttp.Options{
		Route: RouteCreateOrder.Key(),
		Scope: scope,
		// What the create handler refuses before it reads the order is
		// refused in front of the guard (see Policy).
		MaxBodyBytes:  orders.MaxBodyBytes,
		MediaTypes:    []string{"application/json"},
		RequireObject: true,
		Keep:          keep,
		OnOutcome:     noteOutcome,
	})(inner)
	return logRequests(logger, recoverPanics(logger, identifyCaller(scope, orders.NewRouter(create, h.Get())))), nil
}

// Option adjusts what New wires. Options are code, not configuration: no
// environment variable reaches them, so a deployment cannot flip one. They
// exist for tests that need an extension point (the reliability suite's
// crashtest-built server); the Lambda bootstrap and local/serve pass none.
type Option func(*options)

type options struct {
	createMiddleware func(http.Handler) http.Handler
	guardConfig      func(*idem.Config)
}

// WithCreateMiddleware wraps the POST /orders handler in mw INSIDE the
// idempotency middleware: mw runs after the key is acquired (Lease mode) and
// before the guard commits, with the request whose context carries the
// guard's unit of work, and its response is the one the guard stores.
func WithCreateMiddleware(mw func(http.Handler) http.Handler) Option {
	return func(o *options) { o.createMiddleware = mw }
}

// WithGuardConfig lets fn adjust the idempotency guard's configuration
// (for example a short Lease and ClockSkew in tests) after New has filled it
// in from cfg and before the guard is made.
func WithGuardConfig(fn func(*idem.Config)) Option {
	return func(o *options) { o.guardConfig = fn }
}

// LambdaHandler adapts h to API Gateway HTTP API (payload format 2.0)
// events, the handler the bootstrap registers with the Lambda runtime.
func LambdaHandler(h http.Handler) func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	return httpadapter.NewV2(h).ProxyWithContext
}
