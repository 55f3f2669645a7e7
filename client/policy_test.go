package client

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"testing"
	"time"
)

// The answers the API and API Gateway in front of it send, each with what the
// client must do. TestPolicyForEveryStatus checks these first and every
// other status by its class.
var namedStatuses = map[int]verdict{
	http.StatusOK: succeed, http.StatusCreated: succeed, http.StatusAccepted: succeed, http.StatusNoContent: succeed,
	http.StatusMovedPermanently: fail, http.StatusFound: fail, http.StatusSeeOther: fail, http.StatusNotModified: fail,
	http.StatusTemporaryRedirect: fail, http.StatusPermanentRedirect: fail,
	http.StatusBadRequest:                    fail, // idempotency-key-missing/invalid, malformed-body, invalid-order
	http.StatusUnauthorized:                  fail, // the gateway's JWT authorizer: {"message":"Unauthorized"}
	http.StatusForbidden:                     fail, // idempotency-caller-unknown, the gateway's {"message":"Forbidden"}
	http.StatusNotFound:                      fail, // order-not-found, not-found
	http.StatusMethodNotAllowed:              fail,
	http.StatusNotAcceptable:                 fail,
	http.StatusRequestTimeout:                retry,
	http.StatusConflict:                      retry, // key in use, commit lost, write conflict
	http.StatusGone:                          fail,
	http.StatusRequestEntityTooLarge:         fail,
	http.StatusUnsupportedMediaType:          fail,
	http.StatusUnprocessableEntity:           fail, // idempotency-key-reused
	http.StatusTooEarly:                      retry,
	http.StatusTooManyRequests:               retry, // the gateway's throttling
	http.StatusInternalServerError:           retry,
	http.StatusNotImplemented:                fail,
	http.StatusBadGateway:                    retry, // the gateway: the function failed
	http.StatusServiceUnavailable:            retry,
	http.StatusGatewayTimeout:                retry, // the gateway: "Endpoint request timed out"
	http.StatusHTTPVersionNotSupported:       fail,
	http.StatusVariantAlsoNegotiates:         fail,
	http.StatusInsufficientStorage:           retry,
	http.StatusLoopDetected:                  fail,
	http.StatusNotExtended:                   fail,
	http.StatusNetworkAuthenticationRequired: fail,
}

func TestPolicyForEveryStatus(t *testing.T) {
	for status := 100; status <= 599; status++ {
		want, named := namedStatuses[status]
		if !named {
			switch {
			case status >= 200 && status <= 299:
				want = succeed
			case status >= 500:
				want = retry
			default:
				want = fail // 1xx, 3xx, 4xx
			}
		}
		name := fmt.Sprintf("%d %s is %v", status, http.StatusText(status), want)
		t.Run(name, func(t *testing.T) {
			for _, typ := range []string{"", "about:blank", ProblemBase + "some-future-type"} {
				if got := policy(status, typ); got != want {
					t.Errorf("policy(%d, %q) = %v, want %v", status, typ, got, want)
				}
			}
		})
	}
}

func TestPolicyForEveryProblemType(t *testing.T) {
	for _, tc := range []struct {
		typ    string
		status int
		want   verdict
	}{
		{TypeKeyMissing, 400, fail},
		{TypeKeyInvalid, 400, fail},
		{TypeMalformedBody, 400, fail},
		{TypeInvalidOrder, 400, fail},
		{TypeCallerUnknown, 403, fail},
		{TypeOrderNotFound, 404, fail},
		{TypeNotFound, 404, fail},
		{TypeMethodNotAllowed, 405, fail},
		{TypeKeyInUse, 409, retry},
		{TypeKeyInUse, 425, retry}, // the guard's ConflictStatus option
		{TypeCommitLost, 409, retry},
		{TypeWriteConflict, 409, retry},
		{TypeBodyTooLarge, 413, fail},
		{TypeUnsupportedMediaType, 415, fail},
		{TypeKeyReused, 422, fail},
		{TypeInternal, 500, retry},
		{TypeResponseTooLarge, 500, fail},
		{TypeTooManyWrites, 500, fail},
		{TypeIdempotencyStoreUnavailable, 503, retry},
		{TypeStoreUnavailable, 503, retry},
	} {
		t.Run(fmt.Sprintf("%d %s is %v", tc.status, tc.typ[len(ProblemBase):], tc.want), func(t *testing.T) {
			if got := policy(tc.status, tc.typ); got != tc.want {
				t.Errorf("policy(%d, %s) = %v, want %v", tc.status, tc.typ, got, tc.want)
			}
		})
	}
}

// maxRnd and zeroRnd stand in for the jitter source at its extremes.
func maxRnd(n int64) int64  { return n - 1 }
func zeroRnd(n int64) int64 { return 0 }

func TestBackoff(t *testing.T) {
	const base, max = 100 * time.Millisecond, 2 * time.Second
	for _, tc := range []struct {
		attempt int
		ceiling time.Duration
	}{
		{0, base}, {1, base}, {2, 2 * base}, {3, 4 * base}, {4, 8 * base}, {5, 16 * base},
		{6, max}, {7, max}, {40, max}, {63, max}, {64, max}, {1000, max}, {math.MaxInt, max},
	} {
		t.Run(fmt.Sprintf("after attempt %d the pause is at most %v", tc.attempt, tc.ceiling), func(t *testing.T) {
			if got := backoff(tc.attempt, base, max, maxRnd); got != tc.ceiling {
				t.Errorf("longest pause = %v, want %v", got, tc.ceiling)
			}
			if got := backoff(tc.attempt, base, max, zeroRnd); got != 0 {
				t.Errorf("shortest pause = %v, want 0 (full jitter)", got)
			}
			var asked int64
			backoff(tc.attempt, base, max, func(n int64) int64 { asked = n; return 0 })
			if asked != int64(tc.ceiling)+1 {
				t.Errorf("jitter drawn from [0, %v), want [0, %v]", time.Duration(asked), tc.ceiling)
			}
		})
	}
	t.Run("a real jitter source stays within the ceiling", func(t *testing.T) {
		c, _ := New("http://127.0.0.1:1", Options{})
		for i := 0; i < 1000; i++ {
			if d := backoff(3, base, max, c.rnd); d < 0 || d > 4*base {
				t.Fatalf("pause %v outside [0, %v]", d, 4*base)
			}
		}
	})
}

func TestPauseHonoursRetryAfter(t *testing.T) {
	const base, max = 100 * time.Millisecond, 2 * time.Second
	for _, tc := range []struct {
		name       string
		retryAfter time.Duration
		rnd        func(int64) int64
		want       time.Duration
	}{
		{"Retry-After above the backoff is waited out", 3 * time.Second, maxRnd, 3 * time.Second},
		{"Retry-After is a floor under a short jitter", time.Second, zeroRnd, time.Second},
		{"Retry-After below the backoff leaves the backoff", 50 * time.Millisecond, maxRnd, 4 * base},
		{"Retry-After: 0 leaves the backoff", 0, maxRnd, 4 * base},
		{"no Retry-After is the backoff", 0, maxRnd, 4 * base},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := pause(3, tc.retryAfter, base, max, tc.rnd); got != tc.want {
				t.Errorf("pause = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 22, 13, 44, 39, 0, time.UTC)
	for _, tc := range []struct {
		v      string
		want   time.Duration
		wantOK bool
	}{
		{"1", time.Second, true},
		{"0", 0, true},
		{" 2 ", 2 * time.Second, true},
		{"120", 2 * time.Minute, true},
		{"99999999999999999999", time.Duration(math.MaxInt64), true},
		{"9223372037", time.Duration(math.MaxInt64), true},
		{now.Add(3 * time.Second).Format(http.TimeFormat), 3 * time.Second, true},
		{"Sunday, 22-Nov-26 13:44:41 GMT", 2 * time.Second, true}, // RFC 850
		{"Sun Nov 22 13:44:44 2026", 5 * time.Second, true},       // asctime
		{now.Add(-time.Hour).Format(http.TimeFormat), 0, true},
		{"", 0, false},
		{"-1", 0, false},
		{"1.5", 0, false},
		{"1s", 0, false},
		{"soon", 0, false},
	} {
		t.Run(fmt.Sprintf("%q", tc.v), func(t *testing.T) {
			got, ok := parseRetryAfter(tc.v, now)
			if got != tc.want || ok != tc.wantOK {
				t.Errorf("parseRetryAfter(%q) = %v, %v; want %v, %v", tc.v, got, ok, tc.want, tc.wantOK)
			}
		})
	}
}

func TestBeforeSending(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	_, refused := http.Get("http://" + addr + "/")
	if refused == nil {
		t.Fatalf("a GET of %s, where nothing listens, succeeded", addr)
	}
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"a refused connection fails before sending", refused, true},
		{"a name that does not resolve fails before sending", &url.Error{Op: "Post", Err: &net.OpError{Op: "dial", Err: &net.DNSError{Err: "no such host", Name: "api.invalid", IsNotFound: true}}}, true},
		{"a failed proxy CONNECT fails before sending", &url.Error{Op: "Post", Err: &net.OpError{Op: "proxyconnect", Err: errors.New("refused")}}, true},
		{"a certificate that does not verify fails before sending", &url.Error{Op: "Post", Err: &tls.CertificateVerificationError{Err: x509.UnknownAuthorityError{}}}, true},
		{"a connection reset may come after sending", &url.Error{Op: "Post", Err: &net.OpError{Op: "read", Err: errors.New("connection reset by peer")}}, false},
		{"an answer that ends early comes after sending", &url.Error{Op: "Post", Err: io.ErrUnexpectedEOF}, false},
		{"an unknown error may come after sending", errors.New("something else"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := beforeSending(tc.err); got != tc.want {
				t.Errorf("beforeSending(%v) = %v, want %v", tc.err, got, tc.want)
			}
		})
	}
}

func TestKeyOutcome(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"an invalid order is the key's outcome", &Error{Status: 400, Type: TypeInvalidOrder}, true},
		{"a replayed answer is the key's outcome", &Error{Status: 400, Type: TypeInvalidOrder, Replayed: true}, true},
		{"a reused key is the key's outcome", &Error{Status: 422, Type: TypeKeyReused}, true},
		{"API Gateway's 401 is not", &Error{Status: 401, Title: "Unauthorized", Detail: "Unauthorized"}, false},
		{"API Gateway's 403 is not", &Error{Status: 403}, false},
		{"a caller the API cannot scope is not", &Error{Status: 403, Type: TypeCallerUnknown}, false},
		{"a malformed body is not (refused before the key is read)", &Error{Status: 400, Type: TypeMalformedBody}, false},
		{"an invalid key is not", &Error{Status: 400, Type: TypeKeyInvalid}, false},
		{"a 400 without the type is not", &Error{Status: 400}, false},
		{"a redirect is not", &Error{Status: 302}, false},
		{"a local error is not", localError{errors.New("no token")}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := keyOutcome(tc.err); got != tc.want {
				t.Errorf("keyOutcome(%v) = %v, want %v", tc.err, got, tc.want)
			}
		})
	}
}
