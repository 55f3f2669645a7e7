package idemhttp

import (
	"net/http"
	"strconv"
	"time"

	"github.com/parcelhq/orderservice/internal/problem"
)

// Problem type slugs of the errors the middleware answers with; the type URI
// is problem.Type(slug). Each names one kind of error, so a client can act on
// it without reading titles, and each has one status and one answer to "was
// this stored under the key?": none of the middleware's own answers is ever
// stored (a replay is the stored answer of an earlier request, of whatever
// type that was). A request that none of these refused reaches the guard and
// the handler; Options.Keep decides whether the handler's answer is stored.
const (
	// TypeKeyMissing: 400. The route requires an Idempotency-Key and the
	// request has none. Nothing ran.
	TypeKeyMissing = "idempotency-key-missing"
	// TypeKeyInvalid: 400. The Idempotency-Key is not a valid key (see
	// ParseKey) or the request has several. Nothing ran; the errors member
	// names the header.
	TypeKeyInvalid = "idempotency-key-invalid"
	// TypeBodyMalformed, TypeBodyTooLarge and TypeUnsupportedMediaType are
	// the slugs internal/orders uses for the same kinds of error, so that a
	// client sees one type per kind whichever layer answers. They mean "the
	// request was not understood, so nothing ran and nothing was stored":
	// DefaultKeep releases a handler's answer of these types too, so the same
	// key may always be sent again with the request corrected.
	//
	// TypeBodyMalformed: 400. A JSON body is not valid JSON, not UTF-8, has a
	// duplicate member name or is nested too deep, is not an object where
	// Options.RequireObject asks for one, or the body could not be read.
	// Nothing ran and nothing was stored.
	TypeBodyMalformed = "malformed-body"
	// TypeUnsupportedMediaType: 415, with Accept-Post. The Content-Type is
	// not one of Options.MediaTypes (or is a JSON type labelled with a
	// charset other than utf-8). Nothing ran and nothing was stored.
	TypeUnsupportedMediaType = "unsupported-media-type"
	// TypeBodyTooLarge: 413. The body is longer than Options.MaxBodyBytes.
	// Nothing ran and nothing was stored.
	TypeBodyTooLarge = "body-too-large"
	// TypeCallerUnknown: 403. The request was authorized but the caller
	// could not be told apart from others (Options.Scope failed), so its key
	// cannot be scoped safely. Nothing ran.
	TypeCallerUnknown = "idempotency-caller-unknown"
	// TypeKeyReused: 422. The key was first used with a different request
	// (another body, media type, method or route). Nothing ran. Use a new key for a new
	// request.
	TypeKeyReused = "idempotency-key-reused"
	// TypeKeyInUse: 409 (or 425 with Options.ConflictStatus), with
	// Retry-After. Another request with this key is still running. Nothing
	// ran; retry the exact same request later to get its outcome.
	TypeKeyInUse = "idempotency-key-in-use"
	// TypeCommitLost: 409, with Retry-After. This attempt ran too long and
	// another attempt with the same key took over before it finished; none
	// of its effects were kept. Retry the exact same request to get the
	// outcome of the attempt that won.
	TypeCommitLost = "idempotency-commit-lost"
	// TypeWriteConflict: 409, with Retry-After. A write the request made
	// conflicted with the current state when it was committed (a condition
	// failed); nothing was changed and nothing was stored, so the key may be
	// used again and retrying the same request is safe.
	TypeWriteConflict = "idempotent-write-conflict"
	// TypeResponseTooLarge: 500. The response was too large to remember;
	// nothing was changed or stored and the request can be retried with the
	// same key (it will fail the same way until the service is fixed).
	TypeResponseTooLarge = "idempotent-response-too-large"
	// TypeTooManyWrites: 500. The request made more writes than one DynamoDB
	// transaction holds; nothing was changed or stored.
	TypeTooManyWrites = "idempotent-request-too-many-writes"
	// TypeStoreUnavailable: 503, with Retry-After. The idempotency store
	// failed, or the request ran out of time (its context ended) before its
	// outcome was committed. The request may or may not have taken effect;
	// retrying with the same key is safe and either replays the outcome or
	// runs it.
	TypeStoreUnavailable = "idempotency-store-unavailable"
	// TypeInternal: 500. The handler panicked or another unexpected error
	// occurred. Nothing was sent before this response and nothing was
	// stored, so a retry with the same key runs afresh.
	TypeInternal = "internal-error"
)

// inProgressRetryAfter caps the Retry-After of a key in use. The guard's
// hint is when the holder's lease could be taken over, an upper bound that
// can be many seconds; a create usually finishes well within a second, so the
// client is told to look again soon rather than to wait out the lease.
const inProgressRetryAfter = time.Second

// storeRetryAfter is the Retry-After sent with 503, with a lost commit and
// with a write conflict.
const storeRetryAfter = time.Second

func setRetryAfter(w http.ResponseWriter, d time.Duration) {
	secs := int64((d + time.Second - 1) / time.Second)
	if secs < 1 {
		secs = 1
	}
	w.Header().Set("Retry-After", strconv.FormatInt(secs, 10))
}

func writeProblem(w http.ResponseWriter, status int, slug, title, detail string, errs ...problem.FieldError) {
	problem.Write(w, problem.Problem{
		Type:   problem.Type(slug),
		Title:  title,
		Status: status,
		Detail: detail,
		Errors: errs,
	})
}
