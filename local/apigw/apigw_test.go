package apigw_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/parcelhq/orderservice/functions/createorder/app"
	"github.com/parcelhq/orderservice/local/apigw"
)

// recorder is a Lambda handler that remembers what it was invoked with and
// answers with a fixed response or error.
type recorder struct {
	mu       sync.Mutex
	events   []events.APIGatewayV2HTTPRequest
	ctxs     []context.Context
	response events.APIGatewayV2HTTPResponse
	err      error
	panicV   any
}

func (rc *recorder) handle(ctx context.Context, ev events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	rc.mu.Lock()
	rc.events = append(rc.events, ev)
	rc.ctxs = append(rc.ctxs, ctx)
	rc.mu.Unlock()
	if rc.panicV != nil {
		panic(rc.panicV)
	}
	if rc.response.StatusCode == 0 && rc.err == nil {
		return events.APIGatewayV2HTTPResponse{StatusCode: 204}, nil
	}
	return rc.response, rc.err
}

var pinned = time.Date(2025, time.March, 4, 5, 6, 7, 890_000_000, time.UTC)

var orderRoutes = app.RouteKeys()

func newAdapter(t *testing.T, rc *recorder, routes []string) *apigw.Adapter {
	t.Helper()
	a, err := apigw.New(rc.handle, apigw.Options{Routes: routes, Timeout: 7 * time.Second, Now: func() time.Time { return pinned }})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// serve sends req through a fresh adapter and returns the recorded event
// (if any) and the response.
func serve(t *testing.T, rc *recorder, routes []string, req *http.Request) *httptest.ResponseRecorder {
	t.Helper()
	w := httptest.NewRecorder()
	newAdapter(t, rc, routes).ServeHTTP(w, req)
	return w
}

func TestEventMatchesWhatAPIGatewaySends(t *testing.T) {
	t.Parallel()
	body := `{"sender":{"name":"Ann Lee"}}`
	req := httptest.NewRequest("POST", "http://127.0.0.1:3000/orders?x=1&x=2&y=a%20b", strings.NewReader(body))
	req.RemoteAddr = "192.0.2.7:54321"
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", "k-1")
	req.Header.Set("User-Agent", "curl/8.5.0")
	req.Header.Add("X-Multi", "v1")
	req.Header.Add("X-Multi", "v2")
	req.Header.Add("Cookie", "a=1; b=2")
	req.Header.Add("Cookie", "c=3")

	rc := &recorder{}
	serve(t, rc, orderRoutes, req)
	if len(rc.events) != 1 {
		t.Fatalf("handler invoked %d times, want 1", len(rc.events))
	}
	ev := rc.events[0]

	str := []struct{ name, got, want string }{
		{"version is 2.0", ev.Version, "2.0"},
		{"routeKey is the matched route", ev.RouteKey, "POST /orders"},
		{"requestContext.routeKey is the matched route", ev.RequestContext.RouteKey, "POST /orders"},
		{"rawPath is the request path", ev.RawPath, "/orders"},
		{"rawQueryString is the query as sent", ev.RawQueryString, "x=1&x=2&y=a%20b"},
		{"headers are lower-cased", ev.Headers["idempotency-key"], "k-1"},
		{"repeated headers are joined with commas", ev.Headers["x-multi"], "v1,v2"},
		{"host is a header", ev.Headers["host"], "127.0.0.1:3000"},
		{"x-forwarded-for is the client address", ev.Headers["x-forwarded-for"], "192.0.2.7"},
		{"x-forwarded-proto is the scheme", ev.Headers["x-forwarded-proto"], "http"},
		{"x-forwarded-port is the port", ev.Headers["x-forwarded-port"], "3000"},
		{"content-length is the body length", ev.Headers["content-length"], "29"},
		{"repeated query parameters are joined with commas", ev.QueryStringParameters["x"], "1,2"},
		{"query parameters are decoded", ev.QueryStringParameters["y"], "a b"},
		{"a text body is passed as is", ev.Body, body},
		{"accountId is set", ev.RequestContext.AccountID, "123456789012"},
		{"apiId is set", ev.RequestContext.APIID, "local"},
		{"domainName is the host without port", ev.RequestContext.DomainName, "127.0.0.1"},
		{"domainPrefix is the first label", ev.RequestContext.DomainPrefix, "127"},
		{"stage is $default", ev.RequestContext.Stage, "$default"},
		{"time is in API Gateway's format", ev.RequestContext.Time, "04/Mar/2025:05:06:07 +0000"},
		{"http.method is the method", ev.RequestContext.HTTP.Method, "POST"},
		{"http.path is the path", ev.RequestContext.HTTP.Path, "/orders"},
		{"http.protocol is the protocol", ev.RequestContext.HTTP.Protocol, "HTTP/1.1"},
		{"http.sourceIp is the client address", ev.RequestContext.HTTP.SourceIP, "192.0.2.7"},
		{"http.userAgent is the user agent", ev.RequestContext.HTTP.UserAgent, "curl/8.5.0"},
	}
	for _, c := range str {
		t.Run(c.name, func(t *testing.T) {
			if c.got != c.want {
				t.Errorf("got %q, want %q", c.got, c.want)
			}
		})
	}
	t.Run("cookies are split out of the Cookie headers", func(t *testing.T) {
		if got := strings.Join(ev.Cookies, "|"); got != "a=1|b=2|c=3" {
			t.Errorf("cookies = %q, want a=1|b=2|c=3", ev.Cookies)
		}
		if _, ok := ev.Headers["cookie"]; ok {
			t.Errorf("cookie header kept in headers: %q", ev.Headers["cookie"])
		}
	})
	t.Run("no header name has an upper-case letter", func(t *testing.T) {
		for k := range ev.Headers {
			if k != strings.ToLower(k) {
				t.Errorf("header %q is not lower case", k)
			}
		}
	})
	t.Run("the body is not marked base64", func(t *testing.T) {
		if ev.IsBase64Encoded {
			t.Error("isBase64Encoded = true for application/json")
		}
	})
	t.Run("x-amzn-trace-id is an X-Ray root of the request's epoch second and 24 random hex digits", func(t *testing.T) {
		want := regexp.MustCompile(fmt.Sprintf(`^Root=1-%08x-[0-9a-f]{24}$`, pinned.Unix()))
		if got := ev.Headers["x-amzn-trace-id"]; !want.MatchString(got) {
			t.Errorf("x-amzn-trace-id = %q, want it to match %s", got, want)
		}
	})
	t.Run("timeEpoch is the request time in milliseconds", func(t *testing.T) {
		if ev.RequestContext.TimeEpoch != pinned.UnixMilli() {
			t.Errorf("timeEpoch = %d, want %d", ev.RequestContext.TimeEpoch, pinned.UnixMilli())
		}
	})
	t.Run("a POST to /orders has no path parameters", func(t *testing.T) {
		if ev.PathParameters != nil {
			t.Errorf("pathParameters = %v, want none", ev.PathParameters)
		}
	})
	t.Run("the event serialises with API Gateway's field names", func(t *testing.T) {
		b, err := json.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		for _, field := range []string{`"routeKey"`, `"rawPath"`, `"rawQueryString"`, `"requestContext"`, `"timeEpoch"`, `"sourceIp"`, `"isBase64Encoded"`} {
			if !bytes.Contains(b, []byte(field)) {
				t.Errorf("event JSON lacks %s: %s", field, b)
			}
		}
	})
}

func TestRouting(t *testing.T) {
	t.Parallel()
	routes := append([]string{"GET /orders/special", "ANY /files/{path+}"}, orderRoutes...)
	cases := []struct {
		name, method, target string
		routeKey             string
		params               map[string]string
	}{
		{"a GET of an order id matches the parameterised route", "GET", "/orders/ord_123", "GET /orders/{order_id}", map[string]string{"order_id": "ord_123"}},
		{"a path parameter is percent-decoded", "GET", "/orders/a%20b", "GET /orders/{order_id}", map[string]string{"order_id": "a b"}},
		{"an encoded slash stays inside one path parameter", "GET", "/orders/a%2Fb", "GET /orders/{order_id}", map[string]string{"order_id": "a/b"}},
		{"a literal segment beats a parameter", "GET", "/orders/special", "GET /orders/special", nil},
		{"a greedy parameter takes the rest of the path", "PUT", "/files/x/y/z", "ANY /files/{path+}", map[string]string{"path": "x/y/z"}},
		{"an unknown path goes to $default", "GET", "/nope", "$default", nil},
		{"a known path with another method goes to $default", "DELETE", "/orders", "$default", nil},
		{"a trailing slash is another path", "POST", "/orders/", "$default", nil},
		{"an empty order id does not match the parameter", "GET", "/orders/", "$default", nil},
		{"a deeper path does not match the parameter", "GET", "/orders/a/b", "$default", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rc := &recorder{}
			serve(t, rc, routes, httptest.NewRequest(c.method, "http://127.0.0.1:3000"+c.target, nil))
			if len(rc.events) != 1 {
				t.Fatalf("handler invoked %d times, want 1", len(rc.events))
			}
			ev := rc.events[0]
			if ev.RouteKey != c.routeKey || ev.RequestContext.RouteKey != c.routeKey {
				t.Errorf("routeKey = %q / %q, want %q", ev.RouteKey, ev.RequestContext.RouteKey, c.routeKey)
			}
			if len(ev.PathParameters) != len(c.params) {
				t.Fatalf("pathParameters = %v, want %v", ev.PathParameters, c.params)
			}
			for k, v := range c.params {
				if ev.PathParameters[k] != v {
					t.Errorf("pathParameters[%q] = %q, want %q", k, ev.PathParameters[k], v)
				}
			}
		})
	}

	t.Run("without a $default route an unknown path gets API Gateway's 404 and no invocation", func(t *testing.T) {
		rc := &recorder{}
		w := serve(t, rc, []string{"POST /orders"}, httptest.NewRequest("GET", "/orders", nil))
		if w.Code != http.StatusNotFound || strings.TrimSpace(w.Body.String()) != `{"message":"Not Found"}` {
			t.Errorf("got %d %s, want 404 {\"message\":\"Not Found\"}", w.Code, w.Body)
		}
		if len(rc.events) != 0 {
			t.Errorf("handler invoked %d times", len(rc.events))
		}
	})

	t.Run("a malformed route key is refused", func(t *testing.T) {
		if _, err := apigw.New((&recorder{}).handle, apigw.Options{Routes: []string{"/orders"}}); err == nil {
			t.Error("New accepted route key /orders")
		}
	})
}

func TestBodies(t *testing.T) {
	t.Parallel()
	binary := []byte{0x00, 0xff, 0x10, 'a'}
	cases := []struct {
		name        string
		contentType string
		body        []byte
		wantBase64  bool
	}{
		{"JSON is passed as text", "application/json; charset=utf-8", []byte(`{"a":1}`), false},
		{"problem+json is passed as text", "application/problem+json", []byte(`{"a":1}`), false},
		{"text/plain is passed as text", "text/plain", []byte("hello"), false},
		{"a form is passed as text", "application/x-www-form-urlencoded", []byte("a=1&b=2"), false},
		{"octet-stream is base64-encoded", "application/octet-stream", binary, true},
		{"an image is base64-encoded", "image/png", binary, true},
		{"a body without a content type is base64-encoded", "", []byte("hello"), true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req := httptest.NewRequest("POST", "/orders", bytes.NewReader(c.body))
			if c.contentType != "" {
				req.Header.Set("Content-Type", c.contentType)
			}
			rc := &recorder{}
			serve(t, rc, orderRoutes, req)
			ev := rc.events[0]
			if ev.IsBase64Encoded != c.wantBase64 {
				t.Fatalf("isBase64Encoded = %v, want %v", ev.IsBase64Encoded, c.wantBase64)
			}
			got := []byte(ev.Body)
			if ev.IsBase64Encoded {
				var err error
				if got, err = base64.StdEncoding.DecodeString(ev.Body); err != nil {
					t.Fatalf("body is not base64: %v", err)
				}
			}
			if !bytes.Equal(got, c.body) {
				t.Errorf("body = %q, want %q", got, c.body)
			}
		})
	}

	t.Run("a request without a body has an empty, unencoded body", func(t *testing.T) {
		rc := &recorder{}
		serve(t, rc, orderRoutes, httptest.NewRequest("GET", "/orders/x", nil))
		ev := rc.events[0]
		if ev.Body != "" || ev.IsBase64Encoded {
			t.Errorf("body = %q, isBase64Encoded = %v", ev.Body, ev.IsBase64Encoded)
		}
		if _, ok := ev.Headers["content-length"]; ok {
			t.Errorf("content-length = %q for a request without body", ev.Headers["content-length"])
		}
	})

	t.Run("a body over 10 MB gets 413 and no invocation", func(t *testing.T) {
		rc := &recorder{}
		req := httptest.NewRequest("POST", "/orders", bytes.NewReader(make([]byte, apigw.MaxBodyBytes+1)))
		req.Header.Set("Content-Type", "application/json")
		w := serve(t, rc, orderRoutes, req)
		if w.Code != http.StatusRequestEntityTooLarge {
			t.Errorf("status = %d, want 413", w.Code)
		}
		if len(rc.events) != 0 {
			t.Errorf("handler invoked %d times", len(rc.events))
		}
	})
}

func TestResponses(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name       string
		resp       events.APIGatewayV2HTTPResponse
		wantStatus int
		wantBody   string
		check      func(t *testing.T, h http.Header)
	}{
		{
			name:       "status, headers and body are written as returned",
			resp:       events.APIGatewayV2HTTPResponse{StatusCode: 201, Headers: map[string]string{"Location": "/orders/o1", "content-type": "application/json"}, Body: `{"order_id":"o1"}`},
			wantStatus: 201, wantBody: `{"order_id":"o1"}`,
			check: func(t *testing.T, h http.Header) {
				if h.Get("Location") != "/orders/o1" || h.Get("Content-Type") != "application/json" {
					t.Errorf("headers = %v", h)
				}
				if h.Get("Content-Length") != "17" {
					t.Errorf("Content-Length = %q, want 17", h.Get("Content-Length"))
				}
				if h.Get("Apigw-Requestid") == "" {
					t.Error("no apigw-requestid header")
				}
			},
		},
		{
			name:       "multi-value headers are all written",
			resp:       events.APIGatewayV2HTTPResponse{StatusCode: 200, MultiValueHeaders: map[string][]string{"X-Many": {"1", "2"}}},
			wantStatus: 200,
			check: func(t *testing.T, h http.Header) {
				if got := strings.Join(h.Values("X-Many"), ","); got != "1,2" {
					t.Errorf("X-Many = %q, want 1,2", got)
				}
			},
		},
		{
			name:       "cookies become Set-Cookie headers",
			resp:       events.APIGatewayV2HTTPResponse{StatusCode: 200, Cookies: []string{"a=1; Path=/", "b=2; HttpOnly"}},
			wantStatus: 200,
			check: func(t *testing.T, h http.Header) {
				if got := strings.Join(h.Values("Set-Cookie"), "|"); got != "a=1; Path=/|b=2; HttpOnly" {
					t.Errorf("Set-Cookie = %q", got)
				}
			},
		},
		{
			name:       "a base64 body is decoded",
			resp:       events.APIGatewayV2HTTPResponse{StatusCode: 200, Headers: map[string]string{"Content-Type": "application/octet-stream"}, Body: base64.StdEncoding.EncodeToString([]byte{0, 1, 2}), IsBase64Encoded: true},
			wantStatus: 200, wantBody: "\x00\x01\x02",
		},
		{
			name:       "a status outside 100-599 is a function error",
			resp:       events.APIGatewayV2HTTPResponse{StatusCode: 1000},
			wantStatus: apigw.StatusFunctionError, wantBody: `{"message":"Internal Server Error"}`,
		},
		{
			name:       "a body marked base64 that is not is a function error",
			resp:       events.APIGatewayV2HTTPResponse{StatusCode: 200, Body: "not base64!", IsBase64Encoded: true},
			wantStatus: apigw.StatusFunctionError, wantBody: `{"message":"Internal Server Error"}`,
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rc := &recorder{response: c.resp}
			w := serve(t, rc, orderRoutes, httptest.NewRequest("GET", "/orders/x", nil))
			if w.Code != c.wantStatus {
				t.Errorf("status = %d, want %d", w.Code, c.wantStatus)
			}
			if w.Body.String() != c.wantBody {
				t.Errorf("body = %q, want %q", w.Body.String(), c.wantBody)
			}
			if c.check != nil {
				c.check(t, w.Result().Header)
			}
		})
	}

	failures := []struct {
		name       string
		rc         *recorder
		wantStatus int
	}{
		{"a handler error becomes API Gateway's internal error", &recorder{err: errors.New("boom")}, apigw.StatusFunctionError},
		{"a handler panic becomes API Gateway's internal error", &recorder{panicV: "boom"}, apigw.StatusFunctionError},
		{"an invocation the Lambda API refused (throttled) is API Gateway's 500", &recorder{err: fmt.Errorf("invoke: %w", lambdaAPIError("TooManyRequestsException"))}, apigw.StatusInvokeError},
	}
	for _, c := range failures {
		t.Run(c.name, func(t *testing.T) {
			w := serve(t, c.rc, orderRoutes, httptest.NewRequest("GET", "/orders/x", nil))
			if w.Code != c.wantStatus || w.Body.String() != `{"message":"Internal Server Error"}` {
				t.Errorf("got %d %q, want %d with API Gateway's internal error", w.Code, w.Body.String(), c.wantStatus)
			}
			if ct := w.Result().Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q", ct)
			}
		})
	}
}

// lambdaAPIError is an error of the Lambda Invoke API, shaped as the AWS
// SDK's (smithy) API errors are.
type lambdaAPIError string

func (e lambdaAPIError) Error() string     { return string(e) }
func (e lambdaAPIError) ErrorCode() string { return string(e) }

func TestInvocationContext(t *testing.T) {
	t.Parallel()
	rc := &recorder{}
	start := time.Now()
	a, err := apigw.New(rc.handle, apigw.Options{Routes: orderRoutes, Timeout: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		a.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/orders/x", nil))
	}
	uuid := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

	t.Run("the handler's context carries a Lambda context with a UUID request id", func(t *testing.T) {
		for _, ctx := range rc.ctxs {
			lc, ok := lambdacontext.FromContext(ctx)
			if !ok {
				t.Fatal("no LambdaContext on the handler's context")
			}
			if !uuid.MatchString(lc.AwsRequestID) {
				t.Errorf("AwsRequestID = %q, not a UUID", lc.AwsRequestID)
			}
			if want := "arn:aws:lambda:us-east-1:123456789012:function:CreateOrderFunction"; lc.InvokedFunctionArn != want {
				t.Errorf("InvokedFunctionArn = %q", lc.InvokedFunctionArn)
			}
		}
	})
	t.Run("each invocation has its own Lambda and API Gateway request ids", func(t *testing.T) {
		l0, _ := lambdacontext.FromContext(rc.ctxs[0])
		l1, _ := lambdacontext.FromContext(rc.ctxs[1])
		if l0.AwsRequestID == l1.AwsRequestID {
			t.Errorf("two invocations share AwsRequestID %q", l0.AwsRequestID)
		}
		if rc.events[0].RequestContext.RequestID == rc.events[1].RequestContext.RequestID || rc.events[0].RequestContext.RequestID == "" {
			t.Errorf("requestIds %q and %q are not unique", rc.events[0].RequestContext.RequestID, rc.events[1].RequestContext.RequestID)
		}
	})
	t.Run("the handler's context has the function timeout as deadline", func(t *testing.T) {
		dl, ok := rc.ctxs[0].Deadline()
		if !ok {
			t.Fatal("no deadline")
		}
		if d := dl.Sub(start); d < 3*time.Second || d > 4*time.Second {
			t.Errorf("deadline %v after start, want about 3s", d)
		}
	})
}

// TestRoundTripThroughTheLambdaAdapter checks that the events this package
// makes are read by app.LambdaHandler (the adapter the function itself uses)
// as the request the client sent, and that its responses come back intact.
func TestRoundTripThroughTheLambdaAdapter(t *testing.T) {
	t.Parallel()
	echo := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var cookies []string
		for _, c := range r.Cookies() {
			cookies = append(cookies, c.Name+"="+c.Value)
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Add("X-Echo", "1")
		w.Header().Add("X-Echo", "2")
		http.SetCookie(w, &http.Cookie{Name: "s", Value: "v"})
		w.WriteHeader(http.StatusAccepted)
		_ = json.NewEncoder(w).Encode(map[string]any{
			"method": r.Method, "path": r.URL.Path, "query": r.URL.Query(), "key": r.Header.Get("Idempotency-Key"),
			"cookies": cookies, "body": string(body),
		})
	})
	a, err := apigw.New(app.LambdaHandler(echo), apigw.Options{Routes: orderRoutes})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(a) // listens on 127.0.0.1
	t.Cleanup(srv.Close)

	req, _ := http.NewRequest("POST", srv.URL+"/orders?q=1&q=2", strings.NewReader(`{"x":1}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", `"abc"`)
	req.AddCookie(&http.Cookie{Name: "a", Value: "1"})
	req.AddCookie(&http.Cookie{Name: "b", Value: "2"})
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	var got struct {
		Method, Path, Key, Body string
		Query                   map[string][]string
		Cookies                 []string
	}
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
		t.Fatal(err)
	}
	checks := []struct{ name, got, want string }{
		{"the status comes back", http.StatusText(resp.StatusCode), http.StatusText(http.StatusAccepted)},
		{"the method arrives", got.Method, "POST"},
		{"the path arrives", got.Path, "/orders"},
		{"the header arrives unchanged", got.Key, `"abc"`},
		{"the body arrives", got.Body, `{"x":1}`},
		{"repeated query parameters arrive", strings.Join(got.Query["q"], ","), "1,2"},
		{"cookies arrive", strings.Join(got.Cookies, ";"), "a=1;b=2"},
		{"multi-value response headers come back", strings.Join(resp.Header.Values("X-Echo"), ","), "1,2"},
		{"response cookies come back", strings.Join(resp.Header.Values("Set-Cookie"), ","), "s=v"},
	}
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) {
			if c.got != c.want {
				t.Errorf("got %q, want %q", c.got, c.want)
			}
		})
	}
}

// TestInvocationOutlivesTheClient checks that, as under Lambda, an invocation
// runs on when the HTTP client gives up: the handler's context is not
// cancelled by the client's disconnect and keeps the function timeout as its
// deadline.
func TestInvocationOutlivesTheClient(t *testing.T) {
	t.Parallel()
	const timeout = 5 * time.Minute // far beyond the test's life: only a disconnect could end the context
	entered := make(chan context.Context, 1)
	release := make(chan struct{})
	var handlerErr error // the handler's ctx.Err() when it was let go; read after served is closed
	handler := func(ctx context.Context, _ events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
		entered <- ctx
		select {
		case <-release:
		case <-ctx.Done():
		}
		handlerErr = ctx.Err()
		return events.APIGatewayV2HTTPResponse{StatusCode: 204}, nil
	}
	a, err := apigw.New(handler, apigw.Options{Routes: orderRoutes, Timeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	// clientGone is closed once the server has seen the client disconnect
	// (the request's own context is cancelled while the handler still runs);
	// served once the adapter has returned.
	clientGone := make(chan struct{})
	served := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer close(served)
		go func() {
			<-r.Context().Done()
			close(clientGone)
		}()
		a.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	var once sync.Once
	letGo := func() { once.Do(func() { close(release) }) }
	t.Cleanup(letGo)

	bound := func(ch <-chan struct{}, what string) {
		t.Helper()
		select {
		case <-ch:
		case <-time.After(30 * time.Second):
			t.Fatalf("timed out waiting for %s", what)
		}
	}

	start := time.Now()
	clientCtx, cancelClient := context.WithCancel(context.Background())
	defer cancelClient()
	req, _ := http.NewRequestWithContext(clientCtx, "GET", srv.URL+"/orders/x", nil)
	clientDone := make(chan error, 1)
	go func() {
		resp, err := srv.Client().Do(req)
		if err == nil {
			resp.Body.Close()
		}
		clientDone <- err
	}()

	var ctx context.Context
	select {
	case ctx = <-entered:
	case <-time.After(30 * time.Second):
		t.Fatal("timed out waiting for the handler to be invoked")
	}
	cancelClient()
	if err := <-clientDone; err == nil {
		t.Fatal("the client's request succeeded although it was cancelled")
	}
	bound(clientGone, "the server to see the client disconnect")

	t.Run("the handler's context is not cancelled when the client disconnects", func(t *testing.T) {
		if err := ctx.Err(); err != nil {
			t.Errorf("handler's ctx.Err() = %v after the client disconnected, want nil", err)
		}
	})
	t.Run("the handler's context keeps the function timeout as deadline", func(t *testing.T) {
		dl, ok := ctx.Deadline()
		if !ok {
			t.Fatal("no deadline")
		}
		if d := dl.Sub(start); d < timeout || d > timeout+30*time.Second {
			t.Errorf("deadline %v after start, want about %v", d, timeout)
		}
	})
	t.Run("the handler runs to completion with a live context", func(t *testing.T) {
		letGo()
		bound(served, "the invocation to finish")
		if handlerErr != nil {
			t.Errorf("handler's ctx.Err() = %v when it was let finish, want nil", handlerErr)
		}
	})
}

func TestAuthorizeHook(t *testing.T) {
	t.Parallel()
	var seenRoutes []string
	var mu sync.Mutex
	authorize := func(r *http.Request, routeKey string) (*events.APIGatewayV2HTTPRequestContextAuthorizerDescription, *apigw.GatewayResponse) {
		mu.Lock()
		seenRoutes = append(seenRoutes, routeKey)
		mu.Unlock()
		if r.Header.Get("Authorization") != "Bearer ok" {
			return nil, &apigw.GatewayResponse{Status: http.StatusUnauthorized, Headers: map[string]string{"Www-Authenticate": "Bearer"}, Body: `{"message":"Unauthorized"}`}
		}
		return &events.APIGatewayV2HTTPRequestContextAuthorizerDescription{JWT: &events.APIGatewayV2HTTPRequestContextAuthorizerJWTDescription{
			Claims: map[string]string{"sub": "alice"}, Scopes: []string{"orders/read"}}}, nil
	}
	rc := &recorder{}
	a, err := apigw.New(rc.handle, apigw.Options{Routes: orderRoutes, Authorize: authorize})
	if err != nil {
		t.Fatal(err)
	}

	t.Run("a refused request gets the authorizer's answer and never reaches the function", func(t *testing.T) {
		w := httptest.NewRecorder()
		a.ServeHTTP(w, httptest.NewRequest("POST", "/orders", strings.NewReader(`{}`)))
		if w.Code != http.StatusUnauthorized || w.Body.String() != `{"message":"Unauthorized"}` ||
			w.Header().Get("Www-Authenticate") != "Bearer" || w.Header().Get("Content-Type") != "application/json" ||
			w.Header().Get("Content-Length") != "26" || w.Header().Get("Apigw-Requestid") == "" {
			t.Fatalf("got %d %v %s", w.Code, w.Header(), w.Body)
		}
		if len(rc.events) != 0 {
			t.Fatalf("the function was invoked %d times", len(rc.events))
		}
	})
	t.Run("an authorized request carries the authorizer's description in its event", func(t *testing.T) {
		req := httptest.NewRequest("GET", "/orders/ord_1", nil)
		req.Header.Set("Authorization", "Bearer ok")
		a.ServeHTTP(httptest.NewRecorder(), req)
		if len(rc.events) != 1 {
			t.Fatalf("function invoked %d times, want 1", len(rc.events))
		}
		got := rc.events[0].RequestContext.Authorizer
		if got == nil || got.JWT == nil || got.JWT.Claims["sub"] != "alice" || rc.events[0].Headers["authorization"] != "Bearer ok" {
			t.Fatalf("event authorizer %+v, headers %v", got, rc.events[0].Headers)
		}
	})
	t.Run("the authorizer is asked with the matched route key", func(t *testing.T) {
		a.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/elsewhere", nil))
		mu.Lock()
		defer mu.Unlock()
		if strings.Join(seenRoutes, ",") != "POST /orders,GET /orders/{order_id},$default" {
			t.Fatalf("route keys %q", seenRoutes)
		}
	})
}
