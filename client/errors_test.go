package client

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestErrorMessagesNameTheCase(t *testing.T) {
	reused := &Error{Status: 422, Type: TypeKeyReused, Title: "Idempotency-Key reused", Detail: "the key was first used with a different request"}
	for _, tc := range []struct {
		name string
		err  *CallError
		want []string
	}{
		{"a reused key of the caller says the key was used for a different request",
			&CallError{Op: "create order", Key: "k1", Attempts: 1, Reason: ErrNotRetryable, Err: reused},
			[]string{"create order (Idempotency-Key k1)", "not retryable", "already used for a different request", "a new order needs a new key", "422 idempotency-key-reused"}},
		{"a reused key the client made says so",
			&CallError{Op: "create order", Key: "k2", OwnKey: true, Attempts: 2, Reason: ErrNotRetryable, Err: reused},
			[]string{"not retryable", "the key this client made for this order was first used with a different request"}},
		{"giving up names the attempts, the last failure and how to resume",
			&CallError{Op: "create order", Key: "k3", Attempts: 8, Reason: ErrGaveUp, Stopped: "no attempts left",
				Err: &Error{Status: 503, Type: TypeIdempotencyStoreUnavailable, Title: "Idempotency store unavailable"}},
			[]string{"gave up after 8 attempts (no attempts left)", "503 idempotency-store-unavailable: Idempotency store unavailable", "retry with the same key"}},
		{"an invalid order lists its fields",
			&CallError{Op: "create order", Key: "k4", Attempts: 1, Reason: ErrNotRetryable,
				Err: &Error{Status: 400, Type: TypeInvalidOrder, Title: "Invalid order", Errors: []FieldError{{Pointer: "/sender/address/postcode", Detail: "must be 4 digits"}}}},
			[]string{"not retryable: 400 invalid-order: Invalid order (/sender/address/postcode: must be 4 digits)"}},
		{"a gateway answer without a problem type shows its status and message",
			&CallError{Op: "get order", Attempts: 1, Reason: ErrNotRetryable, Err: &Error{Status: 502, Title: "Bad Gateway", Detail: "Internal Server Error"}},
			[]string{"get order: not retryable: 502: Bad Gateway: Internal Server Error"}},
		{"the authorizer's 401 says the token was not accepted",
			&CallError{Op: "get order", Attempts: 1, Reason: ErrNotRetryable, Err: &Error{Status: 401, Title: "Unauthorized", Detail: "Unauthorized"}},
			[]string{"get order: not retryable: the API did not accept the bearer token", "get a new token", "401: Unauthorized: Unauthorized"}},
		{"the authorizer's 403 names the scope the token lacks",
			&CallError{Op: "create order", Key: "k5", Attempts: 1, Reason: ErrNotRetryable, Err: &Error{Status: 403, Title: "Forbidden", Detail: "Forbidden",
				Challenge: `Bearer scope="orders/create" error="insufficient_scope" error_description="the token does not have the required scope"`}},
			[]string{"not retryable: the bearer token lacks the scope this request needs (orders/create); use a token with it", "403: Forbidden: Forbidden"}},
		{"a refusal after an attempt that may have made the order says to resume with the key once fixed",
			&CallError{Op: "create order", Key: "k7", OwnKey: true, Attempts: 2, Reason: ErrGaveUp, fixFirst: true,
				Stopped: "attempt 2 was refused, and attempt 1 may have made the order", Err: &Error{Status: 401, Title: "Unauthorized", Detail: "Unauthorized"}},
			[]string{"create order (Idempotency-Key k7): gave up after 2 attempts (attempt 2 was refused, and attempt 1 may have made the order)",
				"the API did not accept the bearer token", "get a new token: 401: Unauthorized: Unauthorized",
				"the order may or may not exist: once that is fixed, resume with the same key"}},
		{"the function's own 403 is not taken for a scope",
			&CallError{Op: "create order", Key: "k6", Attempts: 1, Reason: ErrNotRetryable, Err: &Error{Status: 403, Type: TypeCallerUnknown, Title: "Caller unknown"}},
			[]string{"create order (Idempotency-Key k6): not retryable: 403 idempotency-caller-unknown: Caller unknown"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			msg := tc.err.Error()
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("message %q lacks %q", msg, w)
				}
			}
			if strings.Contains(msg, "\n") {
				t.Errorf("message %q is more than one line", msg)
			}
		})
	}
}

func TestSentinels(t *testing.T) {
	reused := &CallError{Reason: ErrNotRetryable, Err: &Error{Status: 422, Type: TypeKeyReused}}
	notFound := &CallError{Reason: ErrNotRetryable, Err: &Error{Status: 404, Type: TypeOrderNotFound}}
	noRoute := &CallError{Reason: ErrNotRetryable, Err: &Error{Status: 404, Type: TypeNotFound}}
	gaveUp := &CallError{Reason: ErrGaveUp, Err: &Error{Status: 503}}
	for _, tc := range []struct {
		name   string
		err    error
		target error
		want   bool
	}{
		{"a reused key is ErrKeyReused", reused, ErrKeyReused, true},
		{"a reused key is ErrNotRetryable", reused, ErrNotRetryable, true},
		{"a reused key is not ErrGaveUp", reused, ErrGaveUp, false},
		{"an unknown order is ErrNotFound", notFound, ErrNotFound, true},
		{"an unknown route is not ErrNotFound", noRoute, ErrNotFound, false},
		{"giving up is ErrGaveUp", gaveUp, ErrGaveUp, true},
		{"giving up is not ErrNotRetryable", gaveUp, ErrNotRetryable, false},
		{"a 422 of another type is not ErrKeyReused", &CallError{Reason: ErrNotRetryable, Err: &Error{Status: 422}}, ErrKeyReused, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := errors.Is(tc.err, tc.target); got != tc.want {
				t.Errorf("errors.Is = %v, want %v", got, tc.want)
			}
		})
	}
	var apiErr *Error
	if !errors.As(gaveUp, &apiErr) || apiErr.Status != 503 {
		t.Errorf("errors.As did not find the *Error of %v", gaveUp)
	}
}

func TestParseError(t *testing.T) {
	now := time.Date(2026, 11, 22, 13, 44, 39, 0, time.UTC)
	hdr := func(kv ...string) http.Header {
		h := http.Header{}
		for i := 0; i < len(kv); i += 2 {
			h.Set(kv[i], kv[i+1])
		}
		return h
	}
	for _, tc := range []struct {
		name string
		ans  answer
		want Error
	}{
		{"a problem document gives its members",
			answer{409, hdr("Content-Type", "application/problem+json", "Retry-After", "1"),
				[]byte(`{"type":"` + TypeKeyInUse + `","title":"Request in progress","status":409,"detail":"wait"}`)},
			Error{Status: 409, Type: TypeKeyInUse, Title: "Request in progress", Detail: "wait", RetryAfter: time.Second}},
		{"a replayed problem says so",
			answer{400, hdr("Content-Type", "application/problem+json", "Idempotent-Replayed", "true"),
				[]byte(`{"type":"` + TypeInvalidOrder + `","title":"Invalid order","status":400,"errors":[{"pointer":"/parcel","detail":"required"}]}`)},
			Error{Status: 400, Type: TypeInvalidOrder, Title: "Invalid order", Replayed: true, Errors: []FieldError{{Pointer: "/parcel", Detail: "required"}}}},
		{"API Gateway's message is the detail, with no type",
			answer{502, hdr("Content-Type", "application/json"), []byte(`{"message":"Internal Server Error"}`)},
			Error{Status: 502, Title: "Bad Gateway", Detail: "Internal Server Error"}},
		{"a type in a body that is not problem+json is not trusted",
			answer{400, hdr("Content-Type", "application/json"), []byte(`{"type":"` + TypeKeyReused + `"}`)},
			Error{Status: 400, Title: "Bad Request"}},
		{"an HTML page becomes a short one-line detail",
			answer{503, hdr("Content-Type", "text/html"), []byte("<html>\n<body>" + strings.Repeat("busy ", 100) + "</body></html>")},
			Error{Status: 503, Title: "Service Unavailable", Detail: "<html> <body>" + strings.Repeat("busy ", 21) + "bu..."}}, // 120 characters and "..."
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := parseError(tc.ans, now)
			if fmt.Sprintf("%+v", *got) != fmt.Sprintf("%+v", tc.want) {
				t.Errorf("parseError =\n%+v\nwant\n%+v", *got, tc.want)
			}
		})
	}
}
