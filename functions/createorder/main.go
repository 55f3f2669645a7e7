// Command createorder is the order API's Lambda function: API Gateway HTTP
// API (payload format 2.0) events in, responses out. Build it with
// `make build` (or `sam build`, which calls make build-CreateOrderFunction).
//
// Everything per container (configuration, the DynamoDB client, the guard) is
// made once, at init, before the first event; nothing is made per request.
package main

import (
	"context"
	"log/slog"
	"os"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/parcelhq/orderservice/functions/createorder/app"
	"github.com/parcelhq/orderservice/internal/ddb"
)

func main() {
	ctx := context.Background()
	cfg, err := app.ConfigFromEnv()
	if err != nil {
		fatal(err)
	}
	logger := app.NewLogger(os.Stdout, cfg.LogLevel)
	client, err := ddb.NewClient(ctx)
	if err != nil {
		fatal(err)
	}
	h, err := app.New(ctx, cfg, client, logger)
	if err != nil {
		fatal(err)
	}
	// UseNumber: a Lambda authorizer's context is free-form JSON, and a
	// numeric principalId must reach idemhttp.APIGatewayV2Scope as its exact
	// digits (json.Number), not as a float64 that merges ids beyond 2^53.
	// httpadapter's ProxyWithContext hands the decoded request context on as
	// is, so nothing re-decodes it on the way.
	lambda.StartWithOptions(app.LambdaHandler(h), lambda.WithUseNumber(true))
}

// fatal reports an init failure; Lambda records it as the function's init
// error and retries the container.
func fatal(err error) {
	slog.New(slog.NewJSONHandler(os.Stderr, nil)).Error("init failed", "error", err.Error())
	os.Exit(1)
}
