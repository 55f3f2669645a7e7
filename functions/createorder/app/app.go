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

// New returns the order API: POST /orders guarded by the idempotency
// middleware (key required, scoped by the API Gateway authorizer's caller),
// GET /orders/{order_id} unguarded, anything else a problem+json 404/405,
// every request logged as one JSON line that also carries its CloudWatch
// Embedded Metric Format metrics. It makes nothing per request and never
// calls DynamoDB itself; ctx is unused today and kept for future
// initialisation that needs it.
func New(_ context.Context, cfg Config, client *dynamodb.Client, logger *slog.Logger) (http.Handler, error) {
	guard := idem.New(client, idem.Config{
		Table:     cfg.IdempotencyTable,
		Mode:      cfg.Mode,
		Retention: cfg.Retention,
		Cache:     idem.NewCache(cacheEntries, cacheBytes),
		Observer:  countEvent,
	})
	h := orders.NewHandler(orders.NewStore(client, cfg.OrdersTable))
	create := idemhttp.Middleware(guard, idemhttp.Options{
		Route:        RouteCreateOrder.Key(),
		Scope:        idemhttp.APIGatewayV2Scope,
		MaxBodyBytes: orders.MaxBodyBytes,
		OnOutcome:    noteOutcome,
	})(h.Create())
	return logRequests(logger, recoverPanics(logger, orders.NewRouter(create, h.Get()))), nil
}

// LambdaHandler adapts h to API Gateway HTTP API (payload format 2.0)
// events, the handler the bootstrap registers with the Lambda runtime.
func LambdaHandler(h http.Handler) func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	return httpadapter.NewV2(h).ProxyWithContext
}
