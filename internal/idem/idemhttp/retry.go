package idemhttp

import (
	"net/http"
	"strings"
)

// HeaderRetry is the request header in which a client says that this
// request, with its Idempotency-Key, may have reached the service before: a
// retry after a timeout or an error, or a resume with a stored key. Its
// value is the RFC 8941 Structured Field Boolean true, "?1".
//
// It is a hint, read only as idem.Request.Retry: the guard then looks for
// the stored outcome before it runs the handler, so an answered request is
// replayed from a read of the store instead of a run of the handler and a
// conditional write. It never changes which outcome the key is bound to; a
// request with the hint and none stored runs as without it. The one answer
// it can change is a failure: a retry whose handler run would fail (a 5xx,
// not stored) gets the stored outcome instead. Any value other
// than ?1 (?0, a malformed one, several fields) is no hint and no error: a
// hint has nothing to refuse.
const HeaderRetry = "Idempotency-Retry"

// retried reports whether r carries the retry hint: exactly one
// Idempotency-Retry field whose value, spaces and tabs around it discarded,
// is ?1.
func retried(r *http.Request) bool {
	v := r.Header.Values(HeaderRetry)
	return len(v) == 1 && strings.Trim(v[0], " \t") == "?1"
}
