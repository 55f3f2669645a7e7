package main_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/parcelhq/orderservice/functions/createorder/app"
	"github.com/parcelhq/orderservice/internal/ddb"
	"github.com/parcelhq/orderservice/internal/ddbtest"
	"github.com/parcelhq/orderservice/internal/idem"
	"github.com/parcelhq/orderservice/internal/lambdatest"
	"github.com/parcelhq/orderservice/internal/orders/orderstest"
	"github.com/parcelhq/orderservice/local/rie"
)

// caller is the JWT authorizer context of a client-credentials token of
// client id (nil auth in an event: no authorizer).
func caller(id string) *events.APIGatewayV2HTTPRequestContextAuthorizerDescription {
	return &events.APIGatewayV2HTTPRequestContextAuthorizerDescription{JWT: &events.APIGatewayV2HTTPRequestContextAuthorizerJWTDescription{
		Claims: map[string]string{"iss": "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_EXAMPLE", "sub": id, "client_id": id,
			"token_use": "access", "scope": "orders/create orders/read"},
		Scopes: []string{"orders/create", "orders/read"}}}
}

// count returns the number of items in table.
func count(t *testing.T, table string) int32 {
	t.Helper()
	out, err := ddbtest.Client(t).Scan(context.Background(), &dynamodb.ScanInput{TableName: aws.String(table), ConsistentRead: aws.Bool(true), Select: types.SelectCount})
	if err != nil {
		t.Fatal(err)
	}
	return out.Count
}

// defaultCaller is the caller of the session's events.
var defaultCaller = caller("bootstrap-client")

// event builds an API Gateway HTTP API (payload 2.0) event the way API
// Gateway does for the route routeKey, from the default caller.
func event(method, path, routeKey string, headers map[string]string, body string, pathParams map[string]string) []byte {
	return eventAs(defaultCaller, method, path, routeKey, headers, body, pathParams)
}

// eventAs is event with the authorizer context auth (nil: none).
func eventAs(auth *events.APIGatewayV2HTTPRequestContextAuthorizerDescription, method, path, routeKey string, headers map[string]string, body string, pathParams map[string]string) []byte {
	h := map[string]string{"content-type": "application/json", "user-agent": "bootstrap-test"}
	for k, v := range headers {
		h[strings.ToLower(k)] = v
	}
	now := time.Now().UTC()
	e := events.APIGatewayV2HTTPRequest{
		Version: "2.0", RouteKey: routeKey, RawPath: path, Headers: h, Body: body, PathParameters: pathParams,
		RequestContext: events.APIGatewayV2HTTPRequestContext{
			AccountID: "123456789012", APIID: "local", DomainName: "local.execute-api.us-east-1.amazonaws.com",
			DomainPrefix: "local", Stage: "$default", RouteKey: routeKey, RequestID: "req-" + now.Format("150405.000000000"),
			Time: now.Format("02/Jan/2006:15:04:05 -0700"), TimeEpoch: now.UnixMilli(),
			HTTP:       events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: method, Path: path, Protocol: "HTTP/1.1", SourceIP: "127.0.0.1", UserAgent: "bootstrap-test"},
			Authorizer: auth,
		},
	}
	b, _ := json.Marshal(e)
	return b
}

// TestBootstrap runs the binary a user deploys (linux, static, -tags
// lambda.norpc; for this machine's architecture) under the real AWS Lambda
// Runtime Interface Emulator, and feeds it the events of a client's session.
func TestBootstrap(t *testing.T) {
	t.Parallel()
	cfg := app.Config{OrdersTable: "orders", IdempotencyTable: "idempotency"}
	var tableEnv []string
	var idemTable, ordersTable string
	for _, tbl := range cfg.Tables() {
		made := ddbtest.Table(t, tbl)
		switch tbl.Name {
		case cfg.OrdersTable:
			ordersTable = made.Name
			tableEnv = append(tableEnv, app.EnvOrdersTable+"="+made.Name)
		case cfg.IdempotencyTable:
			idemTable = made.Name
			tableEnv = append(tableEnv, app.EnvIdempotencyTable+"="+made.Name)
		}
	}

	bin := lambdatest.Build(t, "./functions/createorder")
	if fi, err := os.Stat(bin); err == nil {
		t.Logf("bootstrap size (GOARCH of this machine): %d bytes", fi.Size())
	}
	// One execution environment: the real Lambda Runtime Interface Emulator
	// running the binary, as Lambda's provided.al2023 runtime does.
	logs := &lineBuffer{}
	pool, err := rie.NewPool(rie.Options{
		RIE: lambdatest.RIE(t), Bootstrap: bin, FunctionName: "CreateOrderFunction",
		Timeout: 10 * time.Second, MemoryMB: 256, Max: 1,
		Env:    append(tableEnv, ddb.EndpointEnv+"="+ddbtest.Endpoint(), app.EnvLogLevel+"=INFO"),
		Logger: slog.New(slog.NewJSONHandler(io.Discard, nil)), Output: logs,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pool.Close() })
	started := time.Now()

	var requestIDs []string
	invoke := func(t *testing.T, ev []byte) events.APIGatewayV2HTTPResponse {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		id := fmt.Sprintf("00000000-0000-4000-8000-%012d", len(requestIDs)+1)
		requestIDs = append(requestIDs, id)
		out, err := pool.Invoke(ctx, id, ev)
		if err != nil {
			t.Fatalf("invoke: %v", err)
		}
		var resp events.APIGatewayV2HTTPResponse
		if err := json.Unmarshal(out, &resp); err != nil {
			t.Fatalf("response is not an API Gateway v2 response: %v\n%s", err, out)
		}
		return resp
	}
	header := func(r events.APIGatewayV2HTTPResponse, name string) string {
		for k, v := range r.Headers {
			if strings.EqualFold(k, name) {
				return v
			}
		}
		return ""
	}
	problemType := func(t *testing.T, r events.APIGatewayV2HTTPResponse) string {
		t.Helper()
		if ct := header(r, "Content-Type"); ct != "application/problem+json" {
			t.Fatalf("Content-Type = %q, want application/problem+json; body %s", ct, r.Body)
		}
		var p struct{ Type string }
		if err := json.Unmarshal([]byte(r.Body), &p); err != nil {
			t.Fatal(err)
		}
		return p.Type
	}

	key := map[string]string{"Idempotency-Key": "bootstrap-" + time.Now().Format("150405.000000000")}
	var created events.APIGatewayV2HTTPResponse
	var orderID string

	t.Run("a create is answered 201 with the order", func(t *testing.T) {
		created = invoke(t, event("POST", "/orders", "POST /orders", key, orderstest.JSON, nil))
		t.Logf("environment start (emulator, then the bootstrap's init) to first response: %s", time.Since(started))
		if created.StatusCode != http.StatusCreated {
			t.Fatalf("status %d, body %s", created.StatusCode, created.Body)
		}
		var o struct {
			OrderID string `json:"order_id"`
		}
		if err := json.Unmarshal([]byte(created.Body), &o); err != nil || o.OrderID == "" {
			t.Fatalf("body has no order_id: %s", created.Body)
		}
		orderID = o.OrderID
		if loc := header(created, "Location"); loc != "/orders/"+orderID {
			t.Fatalf("Location = %q", loc)
		}
		if header(created, "Idempotent-Replayed") != "" {
			t.Fatal("first response carries Idempotent-Replayed")
		}
	})
	if orderID == "" {
		t.FailNow()
	}

	t.Run("a retry with the same key replays the same order byte for byte", func(t *testing.T) {
		replay := invoke(t, event("POST", "/orders", "POST /orders", key, orderstest.JSON, nil))
		if replay.StatusCode != created.StatusCode || replay.Body != created.Body {
			t.Fatalf("replay %d %s\nfirst  %d %s", replay.StatusCode, replay.Body, created.StatusCode, created.Body)
		}
		if header(replay, "Idempotent-Replayed") != "true" {
			t.Fatalf("replay headers %v lack Idempotent-Replayed: true", replay.Headers)
		}
	})

	t.Run("the same key with another body is 422", func(t *testing.T) {
		other := strings.Replace(orderstest.JSON, `"weight_kg":2.5`, `"weight_kg":3`, 1)
		r := invoke(t, event("POST", "/orders", "POST /orders", key, other, nil))
		if r.StatusCode != http.StatusUnprocessableEntity || !strings.HasSuffix(problemType(t, r), "/idempotency-key-reused") {
			t.Fatalf("status %d, body %s", r.StatusCode, r.Body)
		}
	})

	t.Run("a create without a key is 400", func(t *testing.T) {
		r := invoke(t, event("POST", "/orders", "POST /orders", nil, orderstest.JSON, nil))
		if r.StatusCode != http.StatusBadRequest || !strings.HasSuffix(problemType(t, r), "/idempotency-key-missing") {
			t.Fatalf("status %d, body %s", r.StatusCode, r.Body)
		}
	})

	t.Run("the order can be read back as created", func(t *testing.T) {
		r := invoke(t, event("GET", "/orders/"+orderID, "GET /orders/{order_id}", nil, "", map[string]string{"order_id": orderID}))
		if r.StatusCode != http.StatusOK || r.Body != created.Body {
			t.Fatalf("get: %d %s\nwant %s", r.StatusCode, r.Body, created.Body)
		}
	})

	// Callers, as the bootstrap sees them: what the authorizers put in the
	// event's JSON, decoded by the real runtime client (lambda.WithUseNumber).
	orderOf := func(t *testing.T, r events.APIGatewayV2HTTPResponse) string {
		t.Helper()
		var o struct {
			OrderID string `json:"order_id"`
		}
		if r.StatusCode != http.StatusCreated || json.Unmarshal([]byte(r.Body), &o) != nil || o.OrderID == "" {
			t.Fatalf("want a 201 with an order, got %d %s", r.StatusCode, r.Body)
		}
		return o.OrderID
	}
	createAs := func(t *testing.T, auth *events.APIGatewayV2HTTPRequestContextAuthorizerDescription, key string) events.APIGatewayV2HTTPResponse {
		t.Helper()
		return invoke(t, eventAs(auth, "POST", "/orders", "POST /orders", map[string]string{"Idempotency-Key": key}, orderstest.JSON, nil))
	}
	suffix := time.Now().Format("150405.000000000")

	t.Run("an event without an authorizer is refused with 403 and stores nothing", func(t *testing.T) {
		k := "anon-" + suffix
		before := count(t, ordersTable)
		r := createAs(t, nil, k)
		if r.StatusCode != http.StatusForbidden || !strings.HasSuffix(problemType(t, r), "/idempotency-caller-unknown") {
			t.Fatalf("status %d, body %s", r.StatusCode, r.Body)
		}
		out, err := ddbtest.Client(t).GetItem(t.Context(), &dynamodb.GetItemInput{TableName: aws.String(idemTable), ConsistentRead: aws.Bool(true),
			Key: map[string]types.AttributeValue{idem.AttrID: &types.AttributeValueMemberS{Value: idem.RecordID("", k)}}})
		if err != nil || out.Item != nil {
			t.Fatalf("the refused request left a record behind (%v)", err)
		}
		if after := count(t, ordersTable); after != before {
			t.Fatalf("%d orders before, %d after", before, after)
		}
	})
	t.Run("two callers with the same key and body get two orders; each replay is its own; neither reads the other's", func(t *testing.T) {
		k := "shared-" + suffix
		a, b := createAs(t, caller("client-a"), k), createAs(t, caller("client-b"), k)
		ra, rb := createAs(t, caller("client-a"), k), createAs(t, caller("client-b"), k)
		if orderOf(t, a) == orderOf(t, b) {
			t.Fatal("one order for two callers")
		}
		if ra.Body != a.Body || rb.Body != b.Body || header(ra, "Idempotent-Replayed") != "true" || header(rb, "Idempotent-Replayed") != "true" {
			t.Fatalf("replays:\na %s\n  %s\nb %s\n  %s", a.Body, ra.Body, b.Body, rb.Body)
		}
		id := orderOf(t, a)
		theirs := invoke(t, eventAs(caller("client-b"), "GET", "/orders/"+id, "GET /orders/{order_id}", nil, "", map[string]string{"order_id": id}))
		mine := invoke(t, eventAs(caller("client-a"), "GET", "/orders/"+id, "GET /orders/{order_id}", nil, "", map[string]string{"order_id": id}))
		if theirs.StatusCode != http.StatusNotFound || !strings.HasSuffix(problemType(t, theirs), "/order-not-found") || mine.StatusCode != http.StatusOK {
			t.Fatalf("b's GET of a's order: %d %s; a's: %d", theirs.StatusCode, theirs.Body, mine.StatusCode)
		}
	})
	t.Run("numeric Lambda authorizer principalIds that differ beyond float64 precision are two callers", func(t *testing.T) {
		k := "numeric-" + suffix
		lambdaCaller := func(id string) *events.APIGatewayV2HTTPRequestContextAuthorizerDescription {
			return &events.APIGatewayV2HTTPRequestContextAuthorizerDescription{Lambda: map[string]any{"principalId": json.Number(id)}}
		}
		// 2^53+1 and 2^53+2 are one float64 but two snowflake-style user ids.
		a := createAs(t, lambdaCaller("9007199254740993"), k)
		b := createAs(t, lambdaCaller("9007199254740994"), k)
		if orderOf(t, a) == orderOf(t, b) || header(b, "Idempotent-Replayed") != "" {
			t.Fatalf("caller b got caller a's order: %s / %s (replayed %q)", a.Body, b.Body, header(b, "Idempotent-Replayed"))
		}
	})
	// An assumed role as API Gateway's IAM authorizer reports it: the ARN
	// names the role and session, userId is the role's unique id and the
	// session.
	roleSession := func(roleID, name string) *events.APIGatewayV2HTTPRequestContextAuthorizerDescription {
		return &events.APIGatewayV2HTTPRequestContextAuthorizerDescription{IAM: &events.APIGatewayV2HTTPRequestContextAuthorizerIAMDescription{
			AccountID: "123456789012", UserARN: "arn:aws:sts::123456789012:assumed-role/OrderWriter/" + name, UserID: roleID + ":" + name}}
	}
	t.Run("two sessions of one assumed role are one caller: the retry after a restart replays", func(t *testing.T) {
		k := "role-" + suffix
		first := createAs(t, roleSession("AROAORDERWRITER1", "aws-go-sdk-1764680000000000001"), k)
		retry := createAs(t, roleSession("AROAORDERWRITER1", "aws-go-sdk-1764680000999999999"), k)
		if orderOf(t, retry) != orderOf(t, first) || header(retry, "Idempotent-Replayed") != "true" {
			t.Fatalf("the restarted client's retry made another order: %s / %s", first.Body, retry.Body)
		}
	})
	t.Run("a role deleted and recreated under the same name is another caller: it neither replays nor reads the old role's order", func(t *testing.T) {
		k := "recreated-role-" + suffix
		old := createAs(t, roleSession("AROAORDERWRITER1", "s"), k)
		recreated := createAs(t, roleSession("AROAORDERWRITER2", "s"), k)
		if orderOf(t, recreated) == orderOf(t, old) || header(recreated, "Idempotent-Replayed") != "" {
			t.Fatalf("the recreated role got the old role's order: %s / %s", old.Body, recreated.Body)
		}
		id := orderOf(t, old)
		r := invoke(t, eventAs(roleSession("AROAORDERWRITER2", "s"), "GET", "/orders/"+id, "GET /orders/{order_id}", nil, "", map[string]string{"order_id": id}))
		if r.StatusCode != http.StatusNotFound {
			t.Fatalf("the recreated role's GET of the old role's order: %d %s", r.StatusCode, r.Body)
		}
	})

	t.Run("it logs one JSON line per request, with the Lambda request id", func(t *testing.T) {
		deadline := time.Now().Add(5 * time.Second)
		for {
			seen := map[string]bool{}
			for _, line := range logs.lines() {
				var rec map[string]any
				if json.Unmarshal([]byte(line), &rec) != nil {
					t.Fatalf("log line is not JSON: %s", line)
				}
				if rec["message"] == "request" {
					id, _ := rec["request_id"].(string)
					if id == "" || seen[id] {
						t.Fatalf("request line without a request_id of its own: %s", line)
					}
					seen[id] = true
				}
			}
			missing := 0
			for _, id := range requestIDs {
				if !seen[id] {
					missing++
				}
			}
			if missing == 0 && len(seen) == len(requestIDs) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("request lines for %d request ids, want one for each of the %d invocations %v:\n%s", len(seen), len(requestIDs), requestIDs, strings.Join(logs.lines(), "\n"))
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
}

// lineBuffer collects the function's output lines.
type lineBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *lineBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *lineBuffer) lines() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Split(strings.TrimSpace(l.buf.String()), "\n")
}
