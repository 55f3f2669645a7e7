package client

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// Sentinels for errors.Is. Every error Create, CreateWithKey and Get return
// is a *CallError that matches exactly one of ErrNotRetryable and ErrGaveUp.
// For a create they tell apart the two things a caller must know: whether
// the order can exist (ErrGaveUp: keep the key, and resume with it) or
// certainly was not made (ErrNotRetryable: fix the request; a new order
// needs a new key).
var (
	// ErrNotRetryable: the request failed in a way that resending it
	// unchanged cannot fix, and for a create no order was made with its
	// key: the API refused it (400, 401, 403, 404, 413, 415, 422, ...) or
	// it could not be made at all (no token, a certificate that does not
	// verify), and no attempt can have made the order. That is, every
	// attempt before the failing one got an answer that made nothing, or
	// never reached the API; and for CreateWithKey, whose key may have been
	// used before, the failing answer is the API's outcome for the key
	// itself (400 invalid-order, 422 idempotency-key-reused), which it gives
	// only when no order was made with the key. Fix the request, and send
	// a corrected order with a new key (a new Create).
	ErrNotRetryable = errors.New("not retryable")
	// ErrGaveUp: for a create, the order may or may not exist, and the
	// client stopped. Either every attempt failed in a way that might pass
	// on a retry (network error, timeout, 408, 409, 425, 429, 5xx, a 2xx
	// that is not an order) and attempts ran out, the context ended, or
	// the server asked to wait longer than the client may; or an attempt
	// failed in a way a retry cannot fix (a 401 for a token that expired, a
	// 403, a failing token source, a certificate that does not verify, an
	// answer over 1 MiB) after an earlier attempt, or, with CreateWithKey,
	// an earlier use of the key, may have made the order. Err is the last
	// failure; fix what it names if need be (CallError.Error says so), then
	// resume with the same key and request (CreateWithKey with
	// CallError.Key): that is safe, and returns the order if it was made and
	// makes it if not. Never send the order under a new key: that could
	// book it twice. For Get: every attempt failed in a way that might pass
	// on a retry.
	ErrGaveUp = errors.New("gave up")
	// ErrKeyReused: 422 idempotency-key-reused. The key was first used with
	// a different request; this request was not run. A new order needs a
	// new key. Matched by the *Error of such an answer (with ErrNotRetryable
	// on the *CallError around it).
	ErrKeyReused = errors.New("idempotency key reused for a different request")
	// ErrNotFound: 404 order-not-found, no order has the id Get was given.
	ErrNotFound = errors.New("order not found")
)

// The problem types of the API (api/openapi.yaml lists them with their
// statuses): the Type of an *Error. Branch on these, never on Title or Detail.
const (
	ProblemBase = "https://api.parcelhq.example/problems/"

	TypeKeyMissing                  = ProblemBase + "idempotency-key-missing"            // 400
	TypeKeyInvalid                  = ProblemBase + "idempotency-key-invalid"            // 400
	TypeMalformedBody               = ProblemBase + "malformed-body"                     // 400
	TypeInvalidOrder                = ProblemBase + "invalid-order"                      // 400, with Errors
	TypeCallerUnknown               = ProblemBase + "idempotency-caller-unknown"         // 403
	TypeOrderNotFound               = ProblemBase + "order-not-found"                    // 404
	TypeNotFound                    = ProblemBase + "not-found"                          // 404
	TypeMethodNotAllowed            = ProblemBase + "method-not-allowed"                 // 405
	TypeKeyInUse                    = ProblemBase + "idempotency-key-in-use"             // 409, retried
	TypeCommitLost                  = ProblemBase + "idempotency-commit-lost"            // 409, retried
	TypeWriteConflict               = ProblemBase + "idempotent-write-conflict"          // 409, retried
	TypeBodyTooLarge                = ProblemBase + "body-too-large"                     // 413
	TypeUnsupportedMediaType        = ProblemBase + "unsupported-media-type"             // 415
	TypeKeyReused                   = ProblemBase + "idempotency-key-reused"             // 422
	TypeInternal                    = ProblemBase + "internal-error"                     // 500, retried
	TypeResponseTooLarge            = ProblemBase + "idempotent-response-too-large"      // 500, not retried
	TypeTooManyWrites               = ProblemBase + "idempotent-request-too-many-writes" // 500, not retried
	TypeIdempotencyStoreUnavailable = ProblemBase + "idempotency-store-unavailable"      // 503, retried
	TypeStoreUnavailable            = ProblemBase + "store-unavailable"                  // 503, retried
)

// Error is an answer of the API that is not a success: its status and, when
// the body is an RFC 9457 problem+json document, its members. For an answer
// that is not problem+json (API Gateway's own, such as 502
// {"message":"Internal Server Error"} or 401 {"message":"Unauthorized"}),
// Type is empty, Title is the status text and Detail is the message.
type Error struct {
	Status   int
	Type     string
	Title    string
	Detail   string
	Instance string
	// Errors lists each invalid part of the request (invalid-order,
	// idempotency-key-invalid).
	Errors []FieldError
	// Replayed: the answer carried Idempotent-Replayed: true, the stored
	// outcome of an earlier request with the same key (an invalid order
	// stays bound to its key).
	Replayed bool
	// RetryAfter is the Retry-After of the answer, 0 when it had none.
	RetryAfter time.Duration
	// Challenge is the WWW-Authenticate of a 401 or 403 (API Gateway's JWT
	// authorizer names the scope a token lacks there), empty otherwise.
	Challenge string
}

// RequiredScope returns the scope="..." of e's Challenge: the scopes the
// route requires that the token did not have. Empty when it names none.
func (e *Error) RequiredScope() string {
	_, after, ok := strings.Cut(e.Challenge, `scope="`)
	if !ok {
		return ""
	}
	scope, _, _ := strings.Cut(after, `"`)
	return scope
}

// FieldError names one invalid part of a request: Pointer is an RFC 6901
// JSON Pointer into the request body, Header the name of an invalid header.
type FieldError struct {
	Pointer string `json:"pointer,omitempty"`
	Header  string `json:"header,omitempty"`
	Detail  string `json:"detail"`
}

// Error returns "STATUS slug: title: detail" and the field errors, e.g.
// `400 invalid-order: Invalid order: ... (/receiver/address/postcode: ...)`.
func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d", e.Status)
	if slug := strings.TrimPrefix(e.Type, ProblemBase); slug != "" {
		b.WriteString(" " + slug)
	}
	title := e.Title
	if title == "" {
		title = http.StatusText(e.Status)
	}
	if title != "" {
		b.WriteString(": " + title)
	}
	if e.Detail != "" {
		b.WriteString(": " + e.Detail)
	}
	if len(e.Errors) > 0 {
		parts := make([]string, len(e.Errors))
		for i, f := range e.Errors {
			where := f.Pointer
			if where == "" {
				where = f.Header
			}
			parts[i] = strings.TrimPrefix(where+": "+f.Detail, ": ")
		}
		b.WriteString(" (" + strings.Join(parts, "; ") + ")")
	}
	return b.String()
}

// Is reports whether e is the answer ErrKeyReused or ErrNotFound stands for.
func (e *Error) Is(target error) bool {
	switch target {
	case ErrKeyReused:
		return e.Status == http.StatusUnprocessableEntity && e.Type == TypeKeyReused
	case ErrNotFound:
		return e.Status == http.StatusNotFound && e.Type == TypeOrderNotFound
	}
	return false
}

// CallError is the error of a Create, CreateWithKey or Get that did not
// succeed. errors.Is matches Reason (ErrNotRetryable or ErrGaveUp), the
// last failure Err (errors.As finds an *Error there when the API answered),
// and, when the context ended, its error (context.Canceled,
// context.DeadlineExceeded).
type CallError struct {
	// Op is "create order" or "get order".
	Op string
	// Key is the Idempotency-Key every attempt of a create carried: pass it
	// to CreateWithKey to resume. Empty for Get.
	Key string
	// OwnKey: Key was made by Create, not given by the caller.
	OwnKey bool
	// Attempts is how many requests were sent (0 when none could be).
	Attempts int
	// Reason is ErrNotRetryable or ErrGaveUp.
	Reason error
	// Err is the last failure: an *Error when the API answered, else a
	// transport or local error.
	Err error
	// Stopped says why the client gave up ("no attempts left", "the
	// context ended", "the server asked to wait 2m0s, longer than 1m0s",
	// "attempt 2 was refused, and attempt 1 may have made the order");
	// empty for ErrNotRetryable.
	Stopped string

	ctxErr error
	// fixFirst: ErrGaveUp because an attempt failed in a way a retry cannot
	// fix: Err must be fixed before the create is resumed.
	fixFirst bool
}

func (e *CallError) Error() string {
	var b strings.Builder
	b.WriteString(e.Op)
	if e.Key != "" {
		fmt.Fprintf(&b, " (Idempotency-Key %s)", e.Key)
	}
	if e.Reason == ErrGaveUp {
		plural := "s"
		if e.Attempts == 1 {
			plural = ""
		}
		fmt.Fprintf(&b, ": gave up after %d attempt%s (%s)", e.Attempts, plural, e.Stopped)
	} else {
		b.WriteString(": not retryable")
	}
	switch status := gatewayStatus(e.Err); {
	case errors.Is(e.Err, ErrKeyReused) && e.OwnKey:
		b.WriteString(": the server says the key this client made for this order was first used with a different request, and did not run this one")
	case errors.Is(e.Err, ErrKeyReused):
		b.WriteString(": the key was already used for a different request, and this one was not run; a new order needs a new key")
	case status == http.StatusUnauthorized:
		b.WriteString(": the API did not accept the bearer token (none was sent, or it is invalid or expired); get a new token")
	case status == http.StatusForbidden:
		b.WriteString(": the bearer token lacks the scope this request needs")
		var apiErr *Error
		if errors.As(e.Err, &apiErr) && apiErr.RequiredScope() != "" {
			b.WriteString(" (" + apiErr.RequiredScope() + ")")
		}
		b.WriteString("; use a token with it")
	}
	if e.Err != nil {
		b.WriteString(": " + strings.TrimSuffix(e.Err.Error(), "."))
	}
	switch {
	case e.Reason != ErrGaveUp || e.Key == "":
	case e.fixFirst:
		b.WriteString("; the order may or may not exist: once that is fixed, resume with the same key, which returns the order if it was made and makes it if not (a new key could book it twice)")
	default:
		b.WriteString("; the order may or may not exist: retry with the same key to find out")
	}
	return b.String()
}

// gatewayStatus returns the status of err's *Error when it is an answer of
// the gateway itself (no problem type), such as its authorizer's 401 and
// 403; 0 otherwise.
func gatewayStatus(err error) int {
	var apiErr *Error
	if errors.As(err, &apiErr) && apiErr.Type == "" {
		return apiErr.Status
	}
	return 0
}

// Unwrap returns Reason, Err and, when the context ended, its error.
func (e *CallError) Unwrap() []error {
	errs := []error{e.Reason}
	if e.Err != nil {
		errs = append(errs, e.Err)
	}
	if e.ctxErr != nil {
		errs = append(errs, e.ctxErr)
	}
	return errs
}
