package deploytest_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/parcelhq/orderservice/functions/createorder/app"
	"github.com/parcelhq/orderservice/internal/ddbtest"
	"github.com/parcelhq/orderservice/internal/deploytest"
	"github.com/parcelhq/orderservice/internal/idem/idemhttp"
	"github.com/parcelhq/orderservice/internal/orders"
	"github.com/parcelhq/orderservice/internal/problem"
	"github.com/parcelhq/orderservice/local/apigw"
)

func loadEvent(t *testing.T, name string) events.APIGatewayV2HTTPRequest {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(deploytest.RepoRoot(), "events", name))
	if err != nil {
		t.Fatal(err)
	}
	var ev events.APIGatewayV2HTTPRequest
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&ev); err != nil {
		t.Fatalf("events/%s: %v", name, err)
	}
	return ev
}

// header returns the response header name, wherever the adapter put it.
func header(resp events.APIGatewayV2HTTPResponse, name string) string {
	for k, v := range resp.Headers {
		if strings.EqualFold(k, name) {
			return v
		}
	}
	for k, v := range resp.MultiValueHeaders {
		if strings.EqualFold(k, name) && len(v) > 0 {
			return v[0]
		}
	}
	return ""
}

func problemType(t *testing.T, resp events.APIGatewayV2HTTPResponse) string {
	t.Helper()
	if ct := header(resp, "Content-Type"); !strings.HasPrefix(ct, problem.ContentType) {
		t.Errorf("Content-Type = %q, want %s", ct, problem.ContentType)
	}
	var p problem.Problem
	if err := json.Unmarshal([]byte(resp.Body), &p); err != nil {
		t.Fatalf("body is not a problem: %v: %s", err, resp.Body)
	}
	if p.Status != resp.StatusCode {
		t.Errorf("problem status %d, response status %d", p.Status, resp.StatusCode)
	}
	return p.Type
}

// eventFiles are the files in events/, each with what it demonstrates. A
// file that is not listed here fails TestEventFilesAreWellFormed.
var eventFiles = []string{
	"create-order.json",
	"create-order-replay.json",
	"create-order-key-reused.json",
	"create-order-missing-key.json",
	"create-order-invalid-postcode.json",
	"get-order.json",
}

func TestEventFilesAreWellFormed(t *testing.T) {
	t.Parallel()
	entries, err := os.ReadDir(filepath.Join(deploytest.RepoRoot(), "events"))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".json") {
			got = append(got, e.Name())
		}
	}
	want := append([]string(nil), eventFiles...)
	sort.Strings(got)
	sort.Strings(want)
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("events/ holds %v, the test exercises %v", got, want)
	}

	router, err := apigw.New(func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
		return events.APIGatewayV2HTTPResponse{}, nil
	}, apigw.Options{Routes: app.RouteKeys()})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range eventFiles {
		t.Run(name+" is a payload 2.0 event for the route its path matches", func(t *testing.T) {
			ev := loadEvent(t, name)
			if ev.Version != "2.0" || ev.RequestContext.Stage != "$default" {
				t.Errorf("version %q stage %q", ev.Version, ev.RequestContext.Stage)
			}
			key, params, _ := router.Match(ev.RequestContext.HTTP.Method, ev.RawPath)
			if ev.RouteKey != key || ev.RequestContext.RouteKey != key {
				t.Errorf("routeKey %q / %q, but API Gateway would choose %q", ev.RouteKey, ev.RequestContext.RouteKey, key)
			}
			if len(params) != len(ev.PathParameters) {
				t.Errorf("pathParameters %v, want %v", ev.PathParameters, params)
			}
			for k, v := range params {
				if ev.PathParameters[k] != v {
					t.Errorf("pathParameters[%s] = %q, want %q", k, ev.PathParameters[k], v)
				}
			}
			if ev.RequestContext.HTTP.Path != ev.RawPath {
				t.Errorf("http.path %q, rawPath %q", ev.RequestContext.HTTP.Path, ev.RawPath)
			}
			for k := range ev.Headers {
				if k != strings.ToLower(k) {
					t.Errorf("header %q is not lower case, as API Gateway sends it", k)
				}
			}
			// The stack's default: a JWT authorizer, whose verified claims and
			// scopes API Gateway passes on; one of them the route requires.
			if a := ev.RequestContext.Authorizer; a == nil || a.JWT == nil || a.JWT.Claims["iss"] == "" || a.JWT.Claims["sub"] == "" {
				t.Errorf("requestContext.authorizer = %+v, want a JWT authorizer's claims with iss and sub", a)
			} else if req := app.RouteScopes()[key]; len(req) > 0 && !slices.ContainsFunc(req, func(s string) bool { return slices.Contains(a.JWT.Scopes, s) }) {
				t.Errorf("authorizer scopes %v, but route %s requires one of %v", a.JWT.Scopes, key, req)
			}
			if ts, err := time.Parse("02/Jan/2006:15:04:05 -0700", ev.RequestContext.Time); err != nil || ts.UnixMilli()/1000 != ev.RequestContext.TimeEpoch/1000 {
				t.Errorf("time %q and timeEpoch %d disagree (%v)", ev.RequestContext.Time, ev.RequestContext.TimeEpoch, err)
			}
		})
	}
}

// TestEventsThroughTheLambdaHandler feeds the files in events/, in order, to
// the function's real handler (app.LambdaHandler(app.New(...))) against
// DynamoDB Local, as `sam local invoke -e` would, and checks each outcome.
func TestEventsThroughTheLambdaHandler(t *testing.T) {
	t.Parallel()
	client := ddbtest.Client(t)
	tables := app.Config{OrdersTable: "events-orders", IdempotencyTable: "events-idem"}.Tables()
	cfg := app.Config{
		OrdersTable:      ddbtest.Table(t, tables[0]).Name,
		IdempotencyTable: ddbtest.Table(t, tables[1]).Name,
		Retention:        24 * time.Hour,
		LogLevel:         "ERROR",
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	h, err := app.New(context.Background(), cfg, client, logger)
	if err != nil {
		t.Fatal(err)
	}
	invoke := app.LambdaHandler(h)
	call := func(t *testing.T, ev events.APIGatewayV2HTTPRequest) events.APIGatewayV2HTTPResponse {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		resp, err := invoke(ctx, ev)
		if err != nil {
			t.Fatalf("handler error: %v", err)
		}
		return resp
	}

	var created events.APIGatewayV2HTTPResponse
	var orderID string
	steps := []struct {
		name  string
		file  string
		check func(t *testing.T, resp events.APIGatewayV2HTTPResponse)
	}{
		{"a new key creates the order", "create-order.json", func(t *testing.T, resp events.APIGatewayV2HTTPResponse) {
			if resp.StatusCode != http.StatusCreated {
				t.Fatalf("status %d: %s", resp.StatusCode, resp.Body)
			}
			var o struct {
				OrderID   string          `json:"order_id"`
				Status    string          `json:"status"`
				Sender    json.RawMessage `json:"sender"`
				Receiver  json.RawMessage `json:"receiver"`
				Parcel    json.RawMessage `json:"parcel"`
				CreatedAt string          `json:"created_at"`
				Price     struct {
					Amount   string `json:"amount"`
					Currency string `json:"currency"`
				} `json:"price"`
			}
			if err := json.Unmarshal([]byte(resp.Body), &o); err != nil {
				t.Fatal(err)
			}
			if !orders.ValidID(o.OrderID) || o.Status != "booked" || o.Price.Currency != "AUD" || o.Price.Amount == "" ||
				o.CreatedAt == "" || len(o.Sender) == 0 || len(o.Receiver) == 0 || len(o.Parcel) == 0 {
				t.Errorf("order %s", resp.Body)
			}
			if loc := header(resp, "Location"); loc != "/orders/"+o.OrderID {
				t.Errorf("Location = %q", loc)
			}
			if header(resp, idemhttp.HeaderReplayed) != "" {
				t.Error("a first request is marked replayed")
			}
			created, orderID = resp, o.OrderID
		}},
		{"the same key and body replays the first response", "create-order-replay.json", func(t *testing.T, resp events.APIGatewayV2HTTPResponse) {
			if resp.StatusCode != http.StatusCreated || resp.Body != created.Body {
				t.Errorf("got %d %s, want the first response %s", resp.StatusCode, resp.Body, created.Body)
			}
			if got := header(resp, idemhttp.HeaderReplayed); got != "true" {
				t.Errorf("%s = %q, want true", idemhttp.HeaderReplayed, got)
			}
			if header(resp, "Location") != header(created, "Location") {
				t.Errorf("Location %q, first %q", header(resp, "Location"), header(created, "Location"))
			}
		}},
		{"the same key with another body is refused with 422", "create-order-key-reused.json", func(t *testing.T, resp events.APIGatewayV2HTTPResponse) {
			if resp.StatusCode != http.StatusUnprocessableEntity {
				t.Fatalf("status %d: %s", resp.StatusCode, resp.Body)
			}
			if typ := problemType(t, resp); typ != problem.Type(idemhttp.TypeKeyReused) {
				t.Errorf("type %q", typ)
			}
		}},
		{"a create without a key is refused with 400", "create-order-missing-key.json", func(t *testing.T, resp events.APIGatewayV2HTTPResponse) {
			if resp.StatusCode != http.StatusBadRequest {
				t.Fatalf("status %d: %s", resp.StatusCode, resp.Body)
			}
			if typ := problemType(t, resp); typ != problem.Type(idemhttp.TypeKeyMissing) {
				t.Errorf("type %q", typ)
			}
		}},
		{"an invalid postcode is refused with 400 naming the field", "create-order-invalid-postcode.json", func(t *testing.T, resp events.APIGatewayV2HTTPResponse) {
			if resp.StatusCode != http.StatusBadRequest {
				t.Fatalf("status %d: %s", resp.StatusCode, resp.Body)
			}
			if typ := problemType(t, resp); typ != problem.Type(orders.SlugInvalidOrder) {
				t.Errorf("type %q", typ)
			}
			if !strings.Contains(resp.Body, `"/receiver/address/postcode"`) {
				t.Errorf("errors do not name /receiver/address/postcode: %s", resp.Body)
			}
		}},
		{"the get event's fixed order id does not exist, so 404", "get-order.json", func(t *testing.T, resp events.APIGatewayV2HTTPResponse) {
			if resp.StatusCode != http.StatusNotFound {
				t.Fatalf("status %d: %s", resp.StatusCode, resp.Body)
			}
			if typ := problemType(t, resp); typ != problem.Type(orders.SlugOrderNotFound) {
				t.Errorf("type %q", typ)
			}
		}},
	}
	for _, s := range steps {
		if !t.Run(s.name, func(t *testing.T) { s.check(t, call(t, loadEvent(t, s.file))) }) {
			if s.file == "create-order.json" {
				t.Fatal("the create failed; the later steps depend on it")
			}
		}
	}

	t.Run("the get event with the created order's id returns that order", func(t *testing.T) {
		ev := loadEvent(t, "get-order.json")
		ev.RawPath = "/orders/" + orderID
		ev.RequestContext.HTTP.Path = ev.RawPath
		ev.PathParameters = map[string]string{"order_id": orderID}
		resp := call(t, ev)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d: %s", resp.StatusCode, resp.Body)
		}
		var o struct {
			OrderID string `json:"order_id"`
		}
		if err := json.Unmarshal([]byte(resp.Body), &o); err != nil || o.OrderID != orderID {
			t.Errorf("body %s (%v), want order %s", resp.Body, err, orderID)
		}
	})
}
