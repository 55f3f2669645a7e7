// Package apitest runs the real order API for tests of its clients as a
// user of the deployed API meets it: the handler app.New returns in the
// default AuthMode (jwt), adapted to API Gateway events by app.LambdaHandler
// and invoked through local/apigw behind the local JWT authorizer
// (jwtauth.GatewayAuthorizer, with the route scopes of the repository's
// template.yaml) exactly as local/serve does, on an httptest server on
// 127.0.0.1, against DynamoDB Local with tables of its own. A request needs a
// bearer token from API.Token, as a request to `make local` needs one from
// `make token`.
package apitest

import (
	"context"
	"io"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/parcelhq/orderservice/functions/createorder/app"
	"github.com/parcelhq/orderservice/internal/ddbtest"
	"github.com/parcelhq/orderservice/local/apigw"
	"github.com/parcelhq/orderservice/local/jwtauth"
)

// API is a running order API.
type API struct {
	// URL is its base URL, http://127.0.0.1:PORT.
	URL string
	// OrdersTable is the DynamoDB table its orders are written to.
	OrdersTable string
	// FunctionTimeout is the emulated Lambda's timeout: an invocation's
	// context ends this long after it starts, and API Gateway's answer
	// then comes from what the function did by then.
	FunctionTimeout time.Duration

	key *jwtauth.Key
}

// DefaultScopes are the scopes of a token from API.Token when none are
// given: those of the default deployment's app client, every route's.
var DefaultScopes = []string{"orders/create", "orders/read"}

// DefaultFunctionTimeout is the function timeout of an API started without
// the FunctionTimeout option: template.yaml's.
const DefaultFunctionTimeout = 10 * time.Second

// Option changes how Start runs the API.
type Option func(*options)

type options struct {
	functionTimeout time.Duration
}

// FunctionTimeout sets the emulated Lambda's timeout (default
// DefaultFunctionTimeout). A client test whose attempt timeout is longer
// than it gets every invocation's own answer (the function's, or the 5xx
// of one that ran out of time) rather than abandoning invocations that
// still run and piling retries on top of them.
func FunctionTimeout(d time.Duration) Option {
	return func(o *options) { o.functionTimeout = d }
}

// Start runs the API until t ends, with a key pair of its own in
// t.TempDir(). It fails t when DynamoDB Local is not reachable (see
// ddbtest) or the template's route scopes cannot be read.
func Start(t testing.TB, opts ...Option) *API {
	t.Helper()
	o := options{functionTimeout: DefaultFunctionTimeout}
	for _, opt := range opts {
		opt(&o)
	}
	if o.functionTimeout <= 0 {
		t.Fatalf("apitest: FunctionTimeout %v is not positive", o.functionTimeout)
	}
	cfg := app.Config{OrdersTable: "orders", IdempotencyTable: "idempotency", Retention: 24 * time.Hour, AuthMode: app.AuthJWT}
	defs := cfg.Tables()
	cfg.OrdersTable = ddbtest.Table(t, defs[0]).Name
	cfg.IdempotencyTable = ddbtest.Table(t, defs[1]).Name
	logger := app.NewLogger(io.Discard, "ERROR")
	h, err := app.New(context.Background(), cfg, ddbtest.Client(t), logger)
	if err != nil {
		t.Fatal(err)
	}
	keyPath := filepath.Join(t.TempDir(), "jwt-signing-key.pem")
	key, err := jwtauth.LoadOrCreateKey(keyPath)
	if err != nil {
		t.Fatal(err)
	}
	authorize, err := jwtauth.GatewayAuthorizer(keyPath, "template.yaml", logger)
	if err != nil {
		t.Fatal(err)
	}
	a, err := apigw.New(app.LambdaHandler(h), apigw.Options{Routes: app.RouteKeys(), Logger: logger, Authorize: authorize, Timeout: o.functionTimeout})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(a) // 127.0.0.1
	t.Cleanup(srv.Close)
	return &API{URL: srv.URL, OrdersTable: cfg.OrdersTable, FunctionTimeout: o.functionTimeout, key: key}
}

// Token returns a bearer token (without "Bearer ") the API accepts for
// caller sub, with scopes, or DefaultScopes when none are given, valid for
// jwtauth.DefaultTTL. Two subs are two callers: their idempotency keys and
// orders are apart. It fails t on an empty sub.
func (a *API) Token(t testing.TB, sub string, scopes ...string) string {
	t.Helper()
	if len(scopes) == 0 {
		scopes = DefaultScopes
	}
	tok, err := a.key.Mint(sub, scopes, 0)
	if err != nil {
		t.Fatalf("apitest: %v", err)
	}
	return tok
}

// ExpiredToken returns a token as Token does, with DefaultScopes, whose
// expiry has passed: the API refuses it with API Gateway's 401, as it
// refuses a token that expired while its caller was retrying.
func (a *API) ExpiredToken(t testing.TB, sub string) string {
	t.Helper()
	past := time.Now().Add(-time.Hour)
	tok, err := a.key.Sign(map[string]any{
		"iss": jwtauth.Issuer, "sub": sub, "client_id": jwtauth.Audience, "token_use": "access",
		"scope": strings.Join(DefaultScopes, " "),
		"iat":   past.Add(-time.Hour).Unix(), "exp": past.Unix(),
	})
	if err != nil {
		t.Fatalf("apitest: %v", err)
	}
	return tok
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
