// Package apitest runs the real order API for tests of its clients: the
// handler app.New returns, adapted to API Gateway events by app.LambdaHandler
// and invoked through local/apigw exactly as local/serve does, on an
// httptest server on 127.0.0.1, against DynamoDB Local with tables of its own.
package apitest

import (
	"context"
	"io"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/parcelhq/orderservice/functions/createorder/app"
	"github.com/parcelhq/orderservice/internal/ddbtest"
	"github.com/parcelhq/orderservice/local/apigw"
)

// API is a running order API.
type API struct {
	// URL is its base URL, http://127.0.0.1:PORT.
	URL string
	// OrdersTable is the DynamoDB table its orders are written to.
	OrdersTable string
}

// Start runs the API until t ends. It fails t when DynamoDB Local is not
// reachable (see ddbtest).
func Start(t testing.TB) *API {
	t.Helper()
	cfg := app.Config{OrdersTable: "orders", IdempotencyTable: "idempotency", Retention: 24 * time.Hour, AuthMode: app.AuthNone}
	defs := cfg.Tables()
	cfg.OrdersTable = ddbtest.Table(t, defs[0]).Name
	cfg.IdempotencyTable = ddbtest.Table(t, defs[1]).Name
	logger := app.NewLogger(io.Discard, "ERROR")
	h, err := app.New(context.Background(), cfg, ddbtest.Client(t), logger)
	if err != nil {
		t.Fatal(err)
	}
	a, err := apigw.New(app.LambdaHandler(h), apigw.Options{Routes: app.RouteKeys(), Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(a) // 127.0.0.1
	t.Cleanup(srv.Close)
	return &API{URL: srv.URL, OrdersTable: cfg.OrdersTable}
}

// Orders returns every order in the API's table as order_id -> parcel
// description, read with a consistent scan.
func (a *API) Orders(t testing.TB) map[string]string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out := map[string]string{}
	p := dynamodb.NewScanPaginator(ddbtest.Client(t), &dynamodb.ScanInput{TableName: aws.String(a.OrdersTable), ConsistentRead: aws.Bool(true)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatalf("apitest: scan %s: %v", a.OrdersTable, err)
		}
		for _, item := range page.Items {
			var o struct {
				ID     string `dynamodbav:"order_id"`
				Parcel struct {
					Description string `dynamodbav:"description"`
				} `dynamodbav:"parcel"`
			}
			if err := attributevalue.UnmarshalMap(item, &o); err != nil {
				t.Fatalf("apitest: %v", err)
			}
			out[o.ID] = o.Parcel.Description
		}
	}
	return out
}
