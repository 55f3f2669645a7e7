package app

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/parcelhq/orderservice/internal/ddbtest"
	"github.com/parcelhq/orderservice/internal/idem/idemhttp"
	"github.com/parcelhq/orderservice/internal/orders/orderstest"
	"github.com/parcelhq/orderservice/internal/problem"
)

// lambdaApp is the service as the bootstrap serves it (LambdaHandler around
// New) in the given auth mode, with tables of its own.
func lambdaApp(t *testing.T, authMode string) (func(events.APIGatewayV2HTTPRequest) events.APIGatewayV2HTTPResponse, Config) {
	t.Helper()
	cfg := Config{OrdersTable: "orders", IdempotencyTable: "idempotency", Retention: 24 * time.Hour, AuthMode: authMode}
	tables := cfg.Tables()
	cfg.OrdersTable = ddbtest.Table(t, tables[0]).Name
	cfg.IdempotencyTable = ddbtest.Table(t, tables[1]).Name
	h, err := New(context.Background(), cfg, ddbtest.Client(t), NewLogger(&syncBuffer{}, "ERROR"))
	if err != nil {
		t.Fatal(err)
	}
	lh := LambdaHandler(h)
	return func(ev events.APIGatewayV2HTTPRequest) events.APIGatewayV2HTTPResponse {
		t.Helper()
		resp, err := lh(context.Background(), ev)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}, cfg
}

// jwtCaller is the authorizer context API Gateway's JWT authorizer gives a
// token of sub at the local issuer; nil means no authorizer.
func jwtCaller(sub string) *events.APIGatewayV2HTTPRequestContextAuthorizerDescription {
	return &events.APIGatewayV2HTTPRequestContextAuthorizerDescription{JWT: &events.APIGatewayV2HTTPRequestContextAuthorizerJWTDescription{
		Claims: map[string]string{"iss": "https://id.example/", "sub": sub}, Scopes: []string{"orders/create", "orders/read"}}}
}

func createEvent(auth *events.APIGatewayV2HTTPRequestContextAuthorizerDescription, key string) events.APIGatewayV2HTTPRequest {
	return events.APIGatewayV2HTTPRequest{
		Version: "2.0", RouteKey: RouteCreateOrder.Key(), RawPath: "/orders", Body: orderstest.JSON,
		Headers: map[string]string{"content-type": "application/json", "idempotency-key": key},
		RequestContext: events.APIGatewayV2HTTPRequestContext{RouteKey: RouteCreateOrder.Key(), Authorizer: auth,
			HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: "POST", Path: "/orders"}},
	}
}

func getEvent(auth *events.APIGatewayV2HTTPRequestContextAuthorizerDescription, id string) events.APIGatewayV2HTTPRequest {
	return events.APIGatewayV2HTTPRequest{
		Version: "2.0", RouteKey: RouteGetOrder.Key(), RawPath: "/orders/" + id, PathParameters: map[string]string{"order_id": id},
		RequestContext: events.APIGatewayV2HTTPRequestContext{RouteKey: RouteGetOrder.Key(), Authorizer: auth,
			HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: "GET", Path: "/orders/" + id}},
	}
}

func itemCount(t *testing.T, table string) int32 {
	t.Helper()
	out, err := ddbtest.Client(t).Scan(context.Background(), &dynamodb.ScanInput{TableName: aws.String(table), ConsistentRead: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	return out.Count
}

func orderIDOf(t *testing.T, r events.APIGatewayV2HTTPResponse) string {
	t.Helper()
	var o struct {
		ID string `json:"order_id"`
	}
	if err := json.Unmarshal([]byte(r.Body), &o); err != nil || o.ID == "" {
		t.Fatalf("no order_id in %d %s", r.StatusCode, r.Body)
	}
	return o.ID
}

func TestCallers(t *testing.T) {
	t.Parallel()
	call, cfg := lambdaApp(t, AuthJWT)

	t.Run("without an identified caller nothing runs: 403 caller-unknown, nothing stored", func(t *testing.T) {
		for _, ev := range []events.APIGatewayV2HTTPRequest{createEvent(nil, "anon-key"), getEvent(nil, "ord_x")} {
			r := call(ev)
			var p problem.Problem
			_ = json.Unmarshal([]byte(r.Body), &p)
			if r.StatusCode != http.StatusForbidden || p.Type != problem.Type(idemhttp.TypeCallerUnknown) {
				t.Fatalf("%s: %d %s, want 403 %s", ev.RouteKey, r.StatusCode, r.Body, idemhttp.TypeCallerUnknown)
			}
		}
		if n, m := itemCount(t, cfg.OrdersTable), itemCount(t, cfg.IdempotencyTable); n != 0 || m != 0 {
			t.Fatalf("%d orders and %d idempotency records stored, want none", n, m)
		}
	})

	const key = "shared-key-1"
	alice := call(createEvent(jwtCaller("alice"), key))
	bob := call(createEvent(jwtCaller("bob"), key))
	t.Run("two callers using the same key for the same body get two orders", func(t *testing.T) {
		if alice.StatusCode != http.StatusCreated || bob.StatusCode != http.StatusCreated {
			t.Fatalf("alice %d %s; bob %d %s", alice.StatusCode, alice.Body, bob.StatusCode, bob.Body)
		}
		if orderIDOf(t, alice) == orderIDOf(t, bob) {
			t.Fatal("both callers got one order")
		}
		if n := itemCount(t, cfg.OrdersTable); n != 2 {
			t.Fatalf("%d orders stored, want 2", n)
		}
	})
	t.Run("each caller's retry replays its own order, never the other's", func(t *testing.T) {
		for _, c := range []struct {
			sub   string
			first events.APIGatewayV2HTTPResponse
		}{{"alice", alice}, {"bob", bob}} {
			r := call(createEvent(jwtCaller(c.sub), key))
			if r.StatusCode != http.StatusCreated || r.Body != c.first.Body || r.Headers[idemhttp.HeaderReplayed] != "true" {
				t.Fatalf("%s's replay: %d %v %s\nwant %s", c.sub, r.StatusCode, r.Headers, r.Body, c.first.Body)
			}
		}
	})
	t.Run("a caller reads its own order and gets 404 for the other's, exactly as for a missing one", func(t *testing.T) {
		if r := call(getEvent(jwtCaller("alice"), orderIDOf(t, alice))); r.StatusCode != http.StatusOK || r.Body != alice.Body {
			t.Fatalf("alice's GET of her order: %d %s", r.StatusCode, r.Body)
		}
		theirs := call(getEvent(jwtCaller("bob"), orderIDOf(t, alice)))
		missing := call(getEvent(jwtCaller("bob"), "ord_aaaaaaaaaaaaaaaaaaaaaaaaaa"))
		if theirs.StatusCode != http.StatusNotFound || theirs.Body != missing.Body || strings.Contains(theirs.Body, orderIDOf(t, alice)) {
			t.Fatalf("bob's GET of alice's order: %d %s; of a missing one: %d %s", theirs.StatusCode, theirs.Body, missing.StatusCode, missing.Body)
		}
	})

	t.Run("with AuthMode none an anonymous caller is served", func(t *testing.T) {
		open, _ := lambdaApp(t, AuthNone)
		r := call(createEvent(nil, "x")) // the jwt deployment still refuses
		if r.StatusCode != http.StatusForbidden {
			t.Fatalf("jwt mode, anonymous: %d", r.StatusCode)
		}
		created := open(createEvent(nil, "anon-key"))
		if created.StatusCode != http.StatusCreated {
			t.Fatalf("none mode, anonymous create: %d %s", created.StatusCode, created.Body)
		}
		if got := open(getEvent(nil, orderIDOf(t, created))); got.StatusCode != http.StatusOK {
			t.Fatalf("none mode, anonymous GET: %d %s", got.StatusCode, got.Body)
		}
	})
}
