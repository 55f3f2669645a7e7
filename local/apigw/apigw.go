// Package apigw stands in for API Gateway (HTTP API, payload format 2.0) and
// the Lambda runtime on a developer's machine: it turns an *http.Request into
// the events.APIGatewayV2HTTPRequest API Gateway would send, invokes a Lambda
// handler with a context shaped like the one Lambda gives it, and writes the
// handler's events.APIGatewayV2HTTPResponse back the way API Gateway would.
//
// It lets local/serve run the very handler the bootstrap registers with the
// Lambda runtime, without SAM or Docker. Authorization is a hook
// (Options.Authorize; local/serve plugs local/jwtauth's JWT authorizer in).
// What it does not emulate: CORS, stage variables, custom domains, API Gateway's own throttling, and
// Lambda's cold starts, memory limit and concurrency (local/rie's pool does those but the memory
// limit; a throttled invocation it reports is answered as API Gateway answers one).
package apigw

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambdacontext"
)

// Handler is a Lambda handler for API Gateway HTTP API events (payload format
// 2.0), the signature of app.LambdaHandler.
type Handler func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error)

// DefaultRouteKey is the route key of an HTTP API's catch-all route.
const DefaultRouteKey = "$default"

// Stage is the stage every event names: the template deploys the API's
// $default stage, whose URL has no stage prefix.
const Stage = "$default"

// MaxBodyBytes is API Gateway's limit on a request payload (10 MB). A larger
// request gets 413 without the handler being invoked.
const MaxBodyBytes = 10 << 20

// Responses API Gateway itself sends, as status and body.
var (
	// Sent when no route matches and the API has no $default route.
	notFoundBody = `{"message":"Not Found"}`
	// Sent when the handler returns an error or an invalid response: the
	// function failed, API Gateway never shows the client why.
	internalErrorBody = `{"message":"Internal Server Error"}`
	tooLargeBody      = `{"message":"Request Entity Too Large"}`
)

// StatusFunctionError is the status API Gateway answers with when the
// function returns an error or a response it cannot use (Bad Gateway).
const StatusFunctionError = http.StatusBadGateway

// StatusInvokeError is the status API Gateway answers with when the Lambda
// API refuses the invocation itself, e.g. 429 TooManyRequestsException for
// a function throttled at its concurrency limit: the function never ran.
// (AWS Lambda Developer Guide, "Handling Lambda errors with an API Gateway
// API": a rejected invocation request is a 500, a function error a 502;
// both with the internal error body.)
const StatusInvokeError = http.StatusInternalServerError

// invokeAPIError is how a handler reports that the Lambda API refused the
// invocation: an error in its chain with an AWS API error code, as the AWS
// SDK's errors (smithy.APIError) and local/rie's throttle have.
type invokeAPIError interface {
	error
	ErrorCode() string
}

// Options configures an Adapter. The zero value of each field but Routes
// has a sensible default.
type Options struct {
	// Routes are the API's route keys, "METHOD /path/{param}" (method ANY
	// matches every method, a last segment {name+} matches the rest of the
	// path) or "$default". A request that matches none gets API Gateway's
	// 404 {"message":"Not Found"}.
	Routes []string
	// Timeout is the function timeout: the handler's context has a deadline
	// this far after the invocation starts (default 10s, template.yaml's).
	Timeout time.Duration
	// FunctionName names the function in the Lambda context's ARN (default
	// "CreateOrderFunction").
	FunctionName string
	// AccountID and APIID fill requestContext (defaults 123456789012, "local").
	AccountID string
	APIID     string
	// Region is used in the function ARN (default us-east-1).
	Region string
	// Logger receives one record per handler error (default slog.Default()).
	Logger *slog.Logger
	// Now returns the current time (default time.Now); tests pin it.
	Now func() time.Time
	// Authorize, when set, is the API's authorizer. ServeHTTP calls it for
	// every request that matched a route, before the body is read, with the
	// matched route key. It returns what the event carries as
	// requestContext.authorizer (nil: nothing), or a non-nil
	// *GatewayResponse that is sent instead, without invoking the function,
	// as API Gateway answers a request its authorizer refuses (401/403).
	Authorize func(r *http.Request, routeKey string) (*events.APIGatewayV2HTTPRequestContextAuthorizerDescription, *GatewayResponse)
}

// GatewayResponse is an answer API Gateway gives itself, without invoking
// the function.
type GatewayResponse struct {
	Status  int
	Headers map[string]string
	Body    string
}

// Adapter is an http.Handler that invokes a Lambda handler the way API
// Gateway and the Lambda runtime would. It is safe for concurrent use.
type Adapter struct {
	h          Handler
	opts       Options
	arn        string // the function's ARN, in every invocation's LambdaContext
	routes     []route
	hasDefault bool
}

type route struct {
	key      string
	method   string   // upper case; "ANY" matches all
	segments []string // path split on "/", without the leading empty one
}

// New returns an Adapter that serves h. It fails on a route key that is not
// "$default" or "METHOD /path".
func New(h Handler, opts Options) (*Adapter, error) {
	if h == nil {
		return nil, errors.New("apigw: nil handler")
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 10 * time.Second
	}
	if opts.FunctionName == "" {
		opts.FunctionName = "CreateOrderFunction"
	}
	if opts.AccountID == "" {
		opts.AccountID = "123456789012"
	}
	if opts.APIID == "" {
		opts.APIID = "local"
	}
	if opts.Region == "" {
		opts.Region = "us-east-1"
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	a := &Adapter{h: h, opts: opts, arn: "arn:aws:lambda:" + opts.Region + ":" + opts.AccountID + ":function:" + opts.FunctionName}
	for _, k := range opts.Routes {
		if k == DefaultRouteKey {
			a.hasDefault = true
			continue
		}
		method, path, ok := strings.Cut(k, " ")
		if !ok || method == "" || !strings.HasPrefix(path, "/") {
			return nil, fmt.Errorf("apigw: route key %q is neither $default nor \"METHOD /path\"", k)
		}
		a.routes = append(a.routes, route{key: k, method: strings.ToUpper(method), segments: strings.Split(path[1:], "/")})
	}
	return a, nil
}

// Match returns the route key API Gateway would choose for method and path
// (an escaped request path) and the path parameters it extracts, or ok false
// when no route matches and there is no $default route.
//
// Like API Gateway it prefers the most specific route: a literal segment
// beats a {param}, which beats a greedy {param+}; a route for the method
// beats ANY. Parameter values are percent-decoded.
func (a *Adapter) Match(method, path string) (key string, params map[string]string, ok bool) {
	reqSegs := strings.Split(strings.TrimPrefix(path, "/"), "/")
	best, bestScore := -1, []int(nil)
	var bestParams map[string]string
	for i, r := range a.routes {
		if r.method != "ANY" && r.method != strings.ToUpper(method) {
			continue
		}
		p, score, matched := r.match(reqSegs)
		if !matched {
			continue
		}
		if r.method != "ANY" {
			score = append(score, 1)
		} else {
			score = append(score, 0)
		}
		if best < 0 || lexLess(bestScore, score) {
			best, bestScore, bestParams = i, score, p
		}
	}
	if best >= 0 {
		return a.routes[best].key, bestParams, true
	}
	if a.hasDefault {
		return DefaultRouteKey, nil, true
	}
	return "", nil, false
}

// match reports whether r matches the request's path segments, with the
// parameters and a specificity score (per segment: 3 literal, 2 {param},
// 1 greedy).
func (r route) match(req []string) (map[string]string, []int, bool) {
	params := map[string]string{}
	score := make([]int, 0, len(r.segments))
	for i, seg := range r.segments {
		if strings.HasPrefix(seg, "{") && strings.HasSuffix(seg, "+}") {
			if i >= len(req) || i != len(r.segments)-1 {
				return nil, nil, false
			}
			v, err := url.PathUnescape(strings.Join(req[i:], "/"))
			if err != nil || v == "" {
				return nil, nil, false
			}
			params[seg[1:len(seg)-2]] = v
			return params, append(score, 1), true
		}
		if i >= len(req) {
			return nil, nil, false
		}
		if strings.HasPrefix(seg, "{") && strings.HasSuffix(seg, "}") {
			v, err := url.PathUnescape(req[i])
			if err != nil || v == "" {
				return nil, nil, false
			}
			params[seg[1:len(seg)-1]] = v
			score = append(score, 2)
			continue
		}
		if seg != req[i] {
			return nil, nil, false
		}
		score = append(score, 3)
	}
	if len(req) != len(r.segments) {
		return nil, nil, false
	}
	if len(params) == 0 {
		params = nil
	}
	return params, score, true
}

func lexLess(a, b []int) bool {
	for i := 0; i < len(a) && i < len(b); i++ {
		if a[i] != b[i] {
			return a[i] < b[i]
		}
	}
	return len(a) < len(b)
}

// ServeHTTP builds the event for r, invokes the handler and writes its
// response. A request API Gateway would refuse itself (no route, body over
// MaxBodyBytes) gets API Gateway's answer without an invocation; a handler
// error or an unusable response gets StatusFunctionError with
// {"message":"Internal Server Error"}, and a handler error carrying an AWS
// API error code (the Lambda API refused the invocation: throttled) gets
// StatusInvokeError with the same body.
func (a *Adapter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	routeKey, params, ok := a.Match(r.Method, r.URL.EscapedPath())
	if !ok {
		writeGatewayError(w, http.StatusNotFound, notFoundBody)
		return
	}
	var authorizer *events.APIGatewayV2HTTPRequestContextAuthorizerDescription
	if a.opts.Authorize != nil {
		auth, deny := a.opts.Authorize(r, routeKey)
		if deny != nil {
			h := w.Header()
			for k, v := range deny.Headers {
				h.Set(k, v)
			}
			h.Set("Apigw-Requestid", newRequestID())
			writeGatewayError(w, deny.Status, deny.Body)
			return
		}
		authorizer = auth
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxBodyBytes+1))
	if err != nil {
		writeGatewayError(w, http.StatusBadRequest, `{"message":"Bad Request"}`)
		return
	}
	if len(body) > MaxBodyBytes {
		writeGatewayError(w, http.StatusRequestEntityTooLarge, tooLargeBody)
		return
	}
	ev := a.Event(r, body, routeKey, params)
	ev.RequestContext.Authorizer = authorizer

	// Lambda runs an invocation to completion (or its deadline) whatever the
	// client does: the client going away must not cancel the handler, or a
	// local run would behave differently from production (the idempotency
	// guard would give its key back and answer 503). The request's values
	// are kept, its cancellation is not.
	ctx, cancel := a.invocationContext(context.WithoutCancel(r.Context()))
	defer cancel()
	resp, err := a.invoke(ctx, ev)
	if err != nil {
		var refused invokeAPIError
		if errors.As(err, &refused) {
			a.opts.Logger.Error("invocation refused", "route", routeKey, "request_id", ev.RequestContext.RequestID, "error_code", refused.ErrorCode(), "err", err)
			writeGatewayError(w, StatusInvokeError, internalErrorBody)
			return
		}
		a.opts.Logger.Error("function error", "route", routeKey, "request_id", ev.RequestContext.RequestID, "err", err)
		writeGatewayError(w, StatusFunctionError, internalErrorBody)
		return
	}
	w.Header().Set("Apigw-Requestid", ev.RequestContext.RequestID)
	if err := WriteResponse(w, resp); err != nil {
		w.Header().Del("Apigw-Requestid")
		a.opts.Logger.Error("invalid function response", "route", routeKey, "request_id", ev.RequestContext.RequestID, "err", err)
		writeGatewayError(w, StatusFunctionError, internalErrorBody)
	}
}

// invoke calls the handler, turning a panic into an error as the Lambda
// runtime does.
func (a *Adapter) invoke(ctx context.Context, ev events.APIGatewayV2HTTPRequest) (resp events.APIGatewayV2HTTPResponse, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("handler panicked: %v", p)
		}
	}()
	return a.h(ctx, ev)
}

// invocationContext returns what Lambda gives a handler: a context with a
// LambdaContext (a fresh AwsRequestID, the function ARN) and the function
// timeout as its deadline. parent should not be cancelled by the client
// (ServeHTTP passes context.WithoutCancel of the request's context): only the
// deadline ends an invocation.
func (a *Adapter) invocationContext(parent context.Context) (context.Context, context.CancelFunc) {
	lc := &lambdacontext.LambdaContext{
		AwsRequestID:       newUUID(),
		InvokedFunctionArn: a.arn,
	}
	ctx := lambdacontext.NewContext(parent, lc)
	return context.WithDeadline(ctx, a.opts.Now().Add(a.opts.Timeout))
}

// Event returns the event API Gateway sends for r, whose body has already
// been read into body, when r matched the route routeKey with path
// parameters params.
func (a *Adapter) Event(r *http.Request, body []byte, routeKey string, params map[string]string) events.APIGatewayV2HTTPRequest {
	now := a.opts.Now().UTC()
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	sourceIP := r.RemoteAddr
	if h, _, err := net.SplitHostPort(sourceIP); err == nil {
		sourceIP = h
	}

	headers := make(map[string]string, len(r.Header)+4) // and host, x-forwarded-*, x-amzn-trace-id
	names := make([]string, 0, len(r.Header))
	for name := range r.Header {
		names = append(names, name)
	}
	sort.Strings(names)
	var cookies []string
	for _, name := range names {
		lower := strings.ToLower(name)
		values := r.Header[name]
		if lower == "cookie" {
			for _, v := range values {
				for _, c := range strings.Split(v, ";") {
					if c = strings.TrimSpace(c); c != "" {
						cookies = append(cookies, c)
					}
				}
			}
			continue
		}
		if prev, ok := headers[lower]; ok {
			headers[lower] = prev + "," + strings.Join(values, ",")
		} else {
			headers[lower] = strings.Join(values, ",")
		}
	}
	if r.Host != "" {
		headers["host"] = r.Host
	}
	if _, ok := headers["content-length"]; !ok && len(body) > 0 {
		headers["content-length"] = strconv.Itoa(len(body))
	}
	if prev, ok := headers["x-forwarded-for"]; ok {
		headers["x-forwarded-for"] = prev + ", " + sourceIP
	} else {
		headers["x-forwarded-for"] = sourceIP
	}
	proto, port := "http", "80"
	if r.TLS != nil {
		proto, port = "https", "443"
	}
	if _, p, err := net.SplitHostPort(r.Host); err == nil {
		port = p
	}
	headers["x-forwarded-proto"] = proto
	headers["x-forwarded-port"] = port
	if _, ok := headers["x-amzn-trace-id"]; !ok {
		headers["x-amzn-trace-id"] = traceID(now)
	}

	var query map[string]string
	if r.URL.RawQuery != "" {
		// ParseQuery keeps the pairs it can decode when others are malformed.
		vals, _ := url.ParseQuery(r.URL.RawQuery)
		for k, v := range vals {
			if query == nil {
				query = make(map[string]string, len(vals))
			}
			query[k] = strings.Join(v, ",")
		}
	}

	ev := events.APIGatewayV2HTTPRequest{
		Version:               "2.0",
		RouteKey:              routeKey,
		RawPath:               r.URL.EscapedPath(),
		RawQueryString:        r.URL.RawQuery,
		Cookies:               cookies,
		Headers:               headers,
		QueryStringParameters: query,
		PathParameters:        params,
		RequestContext: events.APIGatewayV2HTTPRequestContext{
			RouteKey:     routeKey,
			AccountID:    a.opts.AccountID,
			Stage:        Stage,
			RequestID:    newRequestID(),
			APIID:        a.opts.APIID,
			DomainName:   host,
			DomainPrefix: strings.SplitN(host, ".", 2)[0],
			Time:         now.Format("02/Jan/2006:15:04:05 -0700"),
			TimeEpoch:    now.UnixMilli(),
			HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{
				Method:    r.Method,
				Path:      r.URL.EscapedPath(),
				Protocol:  r.Proto,
				SourceIP:  sourceIP,
				UserAgent: r.UserAgent(),
			},
		},
	}
	if len(body) > 0 {
		if IsText(r.Header.Get("Content-Type")) {
			ev.Body = string(body)
		} else {
			ev.Body = base64.StdEncoding.EncodeToString(body)
			ev.IsBase64Encoded = true
		}
	}
	return ev
}

// IsText reports whether API Gateway passes a body of this content type to
// the function as text rather than base64: text/*, JSON, XML, JavaScript,
// form data, and the +json / +xml structured suffixes. A body without a
// content type is treated as binary.
func IsText(contentType string) bool {
	if contentType == "" {
		return false
	}
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return false
	}
	switch {
	case strings.HasPrefix(mt, "text/"),
		strings.HasSuffix(mt, "+json"), strings.HasSuffix(mt, "+xml"),
		mt == "application/json", mt == "application/xml", mt == "application/javascript",
		mt == "application/x-www-form-urlencoded", mt == "application/graphql":
		return true
	}
	return false
}

// WriteResponse writes resp to w as API Gateway would: the status code;
// headers, then multiValueHeaders (which API Gateway merges, repeating the
// header); each cookie as a Set-Cookie header; the body, base64-decoded when
// isBase64Encoded. It writes nothing and returns an error when resp is not a
// response API Gateway accepts (status outside 100-599, undecodable body).
func WriteResponse(w http.ResponseWriter, resp events.APIGatewayV2HTTPResponse) error {
	if resp.StatusCode < 100 || resp.StatusCode > 599 {
		return fmt.Errorf("apigw: status code %d", resp.StatusCode)
	}
	body := []byte(resp.Body)
	if resp.IsBase64Encoded {
		b, err := base64.StdEncoding.DecodeString(resp.Body)
		if err != nil {
			return fmt.Errorf("apigw: isBase64Encoded body is not base64: %w", err)
		}
		body = b
	}
	h := w.Header()
	for k, v := range resp.Headers {
		h.Set(k, v)
	}
	for k, vs := range resp.MultiValueHeaders {
		ck := http.CanonicalHeaderKey(k)
		if _, single := resp.Headers[k]; single {
			h.Del(ck)
		}
		for _, v := range vs {
			h.Add(ck, v)
		}
	}
	for _, c := range resp.Cookies {
		h.Add("Set-Cookie", c)
	}
	if h.Get("Content-Type") == "" && len(body) > 0 {
		// API Gateway's default for a 2.0 response without one.
		h.Set("Content-Type", "application/json")
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(resp.StatusCode)
	_, _ = w.Write(body)
	return nil
}

func writeGatewayError(w http.ResponseWriter, status int, body string) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body)
}

// newRequestID returns an id shaped like API Gateway's ("JKJaXmPLvHcESHA=").
func newRequestID() string {
	var b [10]byte
	_, _ = rand.Read(b[:])
	return base64.StdEncoding.EncodeToString(b[:])
}

// newUUID returns a random (version 4) UUID, the shape of Lambda's request ids.
func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	s := hex.EncodeToString(b[:])
	return s[0:8] + "-" + s[8:12] + "-" + s[12:16] + "-" + s[16:20] + "-" + s[20:]
}

// traceID returns a new X-Ray trace header for a request received at now:
// Root=1-{8 hex digits of the epoch second}-{24 random hex digits}.
func traceID(now time.Time) string {
	var r [12]byte
	_, _ = rand.Read(r[:])
	b := make([]byte, 0, len("Root=1-")+8+1+24)
	b = append(b, "Root=1-"...)
	epoch := strconv.FormatUint(uint64(now.Unix()), 16)
	for range 8 - len(epoch) {
		b = append(b, '0')
	}
	b = append(b, epoch...)
	b = append(b, '-')
	return string(hex.AppendEncode(b, r[:]))
}
