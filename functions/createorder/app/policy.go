package app

import (
	"net/http"
	"strings"

	"github.com/parcelhq/orderservice/internal/idem/idemhttp"
	"github.com/parcelhq/orderservice/internal/orders"
	"github.com/parcelhq/orderservice/internal/problem"
)

// Answer is one kind of answer to POST /orders: a status and a problem type,
// and whether the answer is stored under the Idempotency-Key.
type Answer struct {
	Status int
	// Type is the problem type slug (problem.Type(Type) is the URI); "" for
	// the success.
	Type string
	// Stored: the answer is stored under the key and replayed, byte for
	// byte, to every retry with the same request, and the key is bound to
	// that request (another request with it is 422). Not stored: this
	// request bound nothing, and the key is as it was before it (free,
	// unless an earlier request with it was stored or is still running).
	Stored bool
}

// Policy is the idempotency policy of POST /orders as a client reads it:
// every answer the route gives, each with one status and one stored-ness, so
// that "may I send this key again with a corrected request?" is answered by
// the status and type alone. It is the source of truth: keep stores the
// handler's answers by it, README.md and api/openapi.yaml publish it (tests
// in internal/deploytest check that they agree), and the reliability
// suite's bad-input corpus checks that the running service follows it.
//
// The rule behind it: a request is stored once the order was read, valid
// or not (201, invalid-order), so that a retry gets the same answer and a
// corrected order needs a new key; a request refused before the order was
// read (key, Content-Type, size, a body that is not one JSON object) is
// refused by the idempotency middleware before the guard and binds nothing,
// the same way in either guard mode; and failures (409 conflicts, 5xx) bind
// nothing, so the same request can be retried.
var Policy = []Answer{
	{Status: http.StatusCreated, Stored: true},
	{Status: http.StatusBadRequest, Type: orders.SlugInvalidOrder, Stored: true},
	{Status: http.StatusBadRequest, Type: idemhttp.TypeKeyMissing},
	{Status: http.StatusBadRequest, Type: idemhttp.TypeKeyInvalid},
	{Status: http.StatusBadRequest, Type: idemhttp.TypeBodyMalformed},
	{Status: http.StatusForbidden, Type: idemhttp.TypeCallerUnknown},
	{Status: http.StatusConflict, Type: idemhttp.TypeKeyInUse},
	{Status: http.StatusConflict, Type: idemhttp.TypeCommitLost},
	{Status: http.StatusConflict, Type: idemhttp.TypeWriteConflict},
	{Status: http.StatusRequestEntityTooLarge, Type: idemhttp.TypeBodyTooLarge},
	{Status: http.StatusUnsupportedMediaType, Type: idemhttp.TypeUnsupportedMediaType},
	{Status: http.StatusUnprocessableEntity, Type: idemhttp.TypeKeyReused},
	{Status: http.StatusInternalServerError, Type: idemhttp.TypeInternal},
	{Status: http.StatusInternalServerError, Type: idemhttp.TypeResponseTooLarge},
	{Status: http.StatusInternalServerError, Type: idemhttp.TypeTooManyWrites},
	{Status: http.StatusServiceUnavailable, Type: idemhttp.TypeStoreUnavailable},
	{Status: http.StatusServiceUnavailable, Type: orders.SlugStoreUnavailable},
}

// PolicyFor returns the row of Policy for an answer of the given status and
// problem type slug, and false when Policy has none.
func PolicyFor(status int, slug string) (Answer, bool) {
	for _, a := range Policy {
		if a.Status == status && a.Type == slug {
			return a, true
		}
	}
	return Answer{}, false
}

// keep is the outcome policy of POST /orders (idemhttp.Options.Keep): an
// answer Policy lists is stored as Policy says; any other as
// idemhttp.DefaultKeep says (a handler answer Policy does not foresee).
func keep(status int, problemType string) bool {
	slug := problemType
	if s, ok := strings.CutPrefix(problemType, problem.TypeBase); ok {
		slug = s
	}
	if a, ok := PolicyFor(status, slug); ok {
		return a.Stored
	}
	return idemhttp.DefaultKeep(status, problemType)
}
