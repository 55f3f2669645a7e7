// Package app wires the order API: configuration, the DynamoDB client, the
// orders store and handlers, and the idempotency guard around POST /orders.
// The Lambda entry point (functions/createorder) and the local runner
// (local/serve) both serve what New returns, so they cannot drift apart.
package app

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/awslabs/aws-lambda-go-api-proxy/httpadapter"

	"github.com/parcelhq/orderservice/internal/problem"
)

// New returns the order API as an http.Handler. (Interim: the orders and
// idempotency packages are being written; until they are wired every request
// gets 501.)
func New(ctx context.Context, cfg Config, client *dynamodb.Client, logger *slog.Logger) (http.Handler, error) {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		problem.Write(w, problem.Problem{Type: problem.Type("not-implemented"), Title: "Not implemented yet", Status: http.StatusNotImplemented})
	}), nil
}

// LambdaHandler adapts h to API Gateway HTTP API (payload format 2.0)
// events, the handler the bootstrap registers with the Lambda runtime.
func LambdaHandler(h http.Handler) func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	return httpadapter.NewV2(h).ProxyWithContext
}
