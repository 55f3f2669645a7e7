package idemhttp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/parcelhq/orderservice/internal/idem"
	"github.com/parcelhq/orderservice/internal/problem"
)

// DefaultMaxBodyBytes is the body limit when Options.MaxBodyBytes is 0.
const DefaultMaxBodyBytes = 1 << 20

// Options configures Middleware.
type Options struct {
	// Route is the route template the middleware guards, as API Gateway
	// names it ("POST /orders"). It is part of the fingerprint, so a key
	// used on one route and reused on another is a mismatch (422). Routes
	// whose path has parameters must use the template, not the path.
	Route string
	// Optional lets requests without an Idempotency-Key through to the
	// handler unguarded. By default the key is required: without it the
	// answer is 400 TypeKeyMissing. A present but invalid key is 400 either
	// way.
	Optional bool
	// Scope returns the caller scope the key lives in (see
	// APIGatewayV2Scope); nil gives every request the scope "". An error
	// is answered with 403 TypeCallerUnknown.
	Scope func(*http.Request) (string, error)
	// ConflictStatus is the status for a key whose first request is still
	// running: http.StatusConflict (409, the default) or
	// http.StatusTooEarly (425).
	ConflictStatus int
	// Keep says whether the handler's response is stored and replayed, or
	// released (nothing stored; the handler's writes are discarded and a
	// retry runs afresh), from its status and its problem type: the RFC 9457
	// type URI when the response is application/problem+json with a type
	// member, else "". It is asked about the handler's answers only: none of
	// the middleware's own answers is ever stored. Default DefaultKeep.
	Keep func(status int, problemType string) bool
	// MaxBodyBytes is the longest request body accepted; a longer one is
	// answered with 413 TypeBodyTooLarge before the idempotency store is
	// consulted. 0 means DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// MediaTypes, when set, lists the media types (type/subtype, such as
	// "application/json") the route accepts. A request with another
	// Content-Type, with none, with one that does not parse, or with a JSON
	// type labelled with a charset other than utf-8, is answered with 415
	// TypeUnsupportedMediaType (and Accept-Post) before the idempotency store
	// is consulted, so the answer does not depend on the guard's mode or on
	// what the key was used for before. Parameters are allowed and are part
	// of the fingerprint. Nil accepts any Content-Type.
	MediaTypes []string
	// RequireObject answers a JSON body that is valid JSON but not an object
	// ([], null, "x", 1) with 400 TypeBodyMalformed before the idempotency
	// store is consulted, like invalid JSON. Bodies of non-JSON media types
	// are not affected.
	RequireObject bool
	// OnOutcome, when set, is called once per request, after the response
	// was written, with what the middleware did and the error behind it
	// (nil for OutcomeUnkeyed, OutcomeStored, OutcomeReleased and
	// OutcomeReplayed). For logs and metrics; it must not write to the
	// response.
	OnOutcome func(r *http.Request, o Outcome, err error)
}

// DefaultKeep is the default Options.Keep: every final response below 500 is
// kept (success, redirects, and client errors such as failed validation, so
// that a corrected request needs a new key), except the answers that say
// "try again" (408, 425, 429) and those that say "not understood, nothing
// ran" (413, 415, and a problem of type TypeBodyMalformed, TypeBodyTooLarge
// or TypeUnsupportedMediaType whatever its status), so that the key stays
// free for the corrected request; 5xx responses are released.
func DefaultKeep(status int, problemType string) bool {
	switch status {
	case http.StatusRequestTimeout, http.StatusTooEarly, http.StatusTooManyRequests,
		http.StatusRequestEntityTooLarge, http.StatusUnsupportedMediaType:
		return false
	}
	switch problemType {
	case problem.Type(TypeBodyMalformed), problem.Type(TypeBodyTooLarge), problem.Type(TypeUnsupportedMediaType):
		return false
	}
	return status < 500
}

// Middleware makes the wrapped handler idempotent under the Idempotency-Key
// header, using g to run it at most once per (scope, key).
//
// For each request, in this order and before g touches DynamoDB, it
// validates the key (ParseKey; a request with several Idempotency-Key
// fields is invalid), checks the Content-Type against Options.MediaTypes,
// reads the body up to Options.MaxBodyBytes, computes the Fingerprint of
// method, Options.Route, Content-Type and body (which validates a JSON
// body; see also Options.RequireObject), and derives the scope. A request
// refused by any of these checks is answered at once, the same way in
// either guard mode and whatever the key was used for before, and binds
// nothing to its key. It then runs the handler through g.Do with a buffered
// response writer and a request whose context is the guard's (so the
// handler's ddb.Write calls join the guard's unit of work) and whose body
// is the bytes read.
//
// The first response is the handler's, as it wrote it, with Content-Length
// set. A replay repeats the stored status, headers and body byte for byte,
// plus "Idempotent-Replayed: true"; the stored headers are the handler's
// except hop-by-hop headers, Date, Content-Length and Set-Cookie (see
// HeaderReplayed). Every error is an application/problem+json document
// whose type is one of the Type constants; their statuses are documented
// there. A panic in the handler is answered with 500 TypeInternal after the
// guard released the key, except http.ErrAbortHandler, which is re-raised.
//
// Middleware panics when ConflictStatus is neither 0, 409 nor 425, or when
// an entry of MediaTypes is not a media type without parameters.
func Middleware(g *idem.Guard, opts Options) func(http.Handler) http.Handler {
	switch opts.ConflictStatus {
	case 0:
		opts.ConflictStatus = http.StatusConflict
	case http.StatusConflict, http.StatusTooEarly:
	default:
		panic(fmt.Sprintf("idemhttp: ConflictStatus %d is neither 409 nor 425", opts.ConflictStatus))
	}
	if opts.Keep == nil {
		opts.Keep = DefaultKeep
	}
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = DefaultMaxBodyBytes
	}
	accept := map[string]bool{}
	var essences []string
	for _, t := range opts.MediaTypes {
		mt := parseMediaType(t)
		if !mt.parsed || mt.norm != mt.essence {
			panic(fmt.Sprintf("idemhttp: MediaTypes entry %q is not a media type without parameters", t))
		}
		accept[mt.essence] = true
		essences = append(essences, mt.essence)
	}
	acceptPost := strings.Join(essences, ", ")
	return func(next http.Handler) http.Handler {
		return &middleware{g: g, opts: opts, next: next, accept: accept, acceptPost: acceptPost}
	}
}

type middleware struct {
	g          *idem.Guard
	opts       Options
	next       http.Handler
	accept     map[string]bool // Options.MediaTypes; empty accepts any
	acceptPost string          // the Accept-Post header of a 415
}

func (m *middleware) report(r *http.Request, o Outcome, err error) {
	if m.opts.OnOutcome != nil {
		m.opts.OnOutcome(r, o, err)
	}
}

func (m *middleware) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	values := r.Header.Values(HeaderKey)
	if len(values) == 0 {
		if m.opts.Optional {
			m.next.ServeHTTP(w, r)
			m.report(r, OutcomeUnkeyed, nil)
			return
		}
		writeProblem(w, http.StatusBadRequest, TypeKeyMissing, "Idempotency-Key missing",
			"This request must carry an Idempotency-Key header: a unique value, such as a UUID, that the client reuses only to retry the same request.",
			problem.FieldError{Header: HeaderKey, Detail: "the header is missing"})
		m.report(r, OutcomeKeyMissing, nil)
		return
	}
	key, err := ParseKey(values[0])
	if len(values) > 1 {
		err = keyErr("the request has several Idempotency-Key fields; send exactly one")
	}
	if err != nil {
		reason := err.Error()
		var ke *KeyError
		if errors.As(err, &ke) {
			reason = ke.Reason
		}
		writeProblem(w, http.StatusBadRequest, TypeKeyInvalid, "Idempotency-Key invalid",
			"The Idempotency-Key must be 1 to 255 printable ASCII characters without commas, sent once, quoted (\"key\") or bare (key): "+reason+".",
			problem.FieldError{Header: HeaderKey, Detail: reason})
		m.report(r, OutcomeKeyInvalid, err)
		return
	}

	mt := parseMediaType(r.Header.Get("Content-Type"))
	if len(m.accept) > 0 && (!mt.parsed || !mt.utf8 || !m.accept[mt.essence]) {
		w.Header().Set("Accept-Post", m.acceptPost)
		writeProblem(w, http.StatusUnsupportedMediaType, TypeUnsupportedMediaType, "Unsupported media type",
			"The Content-Type must be "+m.acceptPost+", with no charset but utf-8 for JSON. Nothing was done; the same Idempotency-Key may be sent again with the right Content-Type.")
		m.report(r, OutcomeUnsupportedMediaType, nil)
		return
	}
	body, ok := m.readBody(w, r)
	if !ok {
		return
	}
	fp, err := fingerprint(r.Method, m.opts.Route, mt, body)
	if err == nil && m.opts.RequireObject && mt.json && bytes.TrimLeft(body, " \t\r\n")[0] != '{' {
		err = &BodyError{Reason: "the body must be a JSON object"}
	}
	if err != nil {
		var be *BodyError
		detail := err.Error()
		if errors.As(err, &be) {
			detail = be.Reason
		}
		writeProblem(w, http.StatusBadRequest, TypeBodyMalformed, "Malformed JSON",
			"The body is not acceptable JSON: "+detail+". Nothing was done; the same Idempotency-Key may be sent again with a corrected body.")
		m.report(r, OutcomeBodyMalformed, err)
		return
	}

	scope := ""
	if m.opts.Scope != nil {
		if scope, err = m.opts.Scope(r); err != nil {
			writeProblem(w, http.StatusForbidden, TypeCallerUnknown, "Caller unknown",
				"The caller could not be identified, so an Idempotency-Key cannot be kept apart from other callers' keys.")
			m.report(r, OutcomeCallerUnknown, err)
			return
		}
	}

	m.serveGuarded(w, r, idem.Request{Scope: scope, Key: key, Fingerprint: fp, Retry: retried(r)}, body)
}

// readBody reads the whole body, at most MaxBodyBytes+1 bytes of it. On
// failure it has answered the request and returns false.
func (m *middleware) readBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	limit := m.opts.MaxBodyBytes
	tooLarge := func() ([]byte, bool) {
		writeProblem(w, http.StatusRequestEntityTooLarge, TypeBodyTooLarge, "Request body too large",
			fmt.Sprintf("The body may be at most %d bytes long. Nothing was done.", limit))
		m.report(r, OutcomeBodyTooLarge, nil)
		return nil, false
	}
	if r.ContentLength > limit {
		return tooLarge()
	}
	if r.Body == nil || r.Body == http.NoBody {
		return []byte{}, true
	}
	body, err := readAll(io.LimitReader(r.Body, limit+1), r.ContentLength)
	if err != nil {
		writeProblem(w, http.StatusBadRequest, TypeBodyMalformed, "Request body unreadable",
			"The body could not be read completely. Nothing was done; the request can be sent again with the same Idempotency-Key.")
		m.report(r, OutcomeBodyMalformed, err)
		return nil, false
	}
	if int64(len(body)) > limit {
		return tooLarge()
	}
	return body, true
}

// readAll is io.ReadAll with a first buffer of at least size+1 bytes, size
// being the declared length (-1 when unknown), so that a body of the length
// it declares is read into one allocation.
func readAll(r io.Reader, size int64) ([]byte, error) {
	b := make([]byte, 0, max(size+1, 512))
	for {
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return b, err
		}
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)] // let append pick the growth
		}
	}
}

// serveGuarded runs the handler under the guard and answers with its
// response, the replayed one, or the problem the guard's error calls for.
func (m *middleware) serveGuarded(w http.ResponseWriter, r *http.Request, req idem.Request, body []byte) {
	var (
		first *response // the handler's response, when it ran
		kept  bool
	)
	fn := func(ctx context.Context) (idem.Outcome, error) {
		hr := r.WithContext(ctx)
		hr.Body = io.NopCloser(bytes.NewReader(body))
		hr.ContentLength = int64(len(body))
		hr.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
		c := newCapture()
		m.next.ServeHTTP(c, hr)
		first = c.response()
		kept = m.opts.Keep(first.Status, first.problemType())
		return idem.Outcome{Response: first.encode(), Keep: kept}, nil
	}

	res, err, panicked := m.do(r.Context(), req, fn)
	if panicked != nil {
		if panicked == http.ErrAbortHandler {
			panic(panicked)
		}
		writeProblem(w, http.StatusInternalServerError, TypeInternal, "Internal server error",
			"The request failed unexpectedly. Nothing was changed; it can be retried with the same Idempotency-Key.")
		m.report(r, OutcomePanic, fmt.Errorf("idemhttp: handler panicked: %v", panicked))
		return
	}
	if err != nil {
		m.writeError(w, r, err)
		return
	}
	if !res.Replayed {
		if first == nil { // the guard answered without running fn or replaying: a broken contract
			writeProblem(w, http.StatusInternalServerError, TypeInternal, "Internal server error",
				"The request failed unexpectedly. It can be retried with the same Idempotency-Key.")
			m.report(r, OutcomeError, errors.New("idemhttp: guard returned no response"))
			return
		}
		first.write(w, false)
		if kept {
			m.report(r, OutcomeStored, nil)
		} else {
			m.report(r, OutcomeReleased, nil)
		}
		return
	}
	stored, err := decodeResponse(res.Response)
	if err != nil {
		writeProblem(w, http.StatusInternalServerError, TypeInternal, "Internal server error",
			"The stored outcome of this request cannot be read.")
		m.report(r, OutcomeError, err)
		return
	}
	stored.write(w, true)
	m.report(r, OutcomeReplayed, nil)
}

// do calls g.Do and recovers a panic that the guard re-raises from fn,
// after it released the key.
func (m *middleware) do(ctx context.Context, req idem.Request, fn func(context.Context) (idem.Outcome, error)) (res idem.Result, err error, panicked any) {
	defer func() {
		if p := recover(); p != nil {
			panicked = p
		}
	}()
	res, err = m.g.Do(ctx, req, fn)
	return res, err, nil
}

// writeError answers a failed g.Do.
func (m *middleware) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var inProgress *idem.InProgressError
	switch {
	case errors.As(err, &inProgress):
		setRetryAfter(w, min(inProgress.RetryAfter, inProgressRetryAfter))
		writeProblem(w, m.opts.ConflictStatus, TypeKeyInUse, "Request in progress",
			"A request with this Idempotency-Key is still being processed. Retry the exact same request after the Retry-After delay to get its outcome.")
		m.report(r, OutcomeInProgress, err)
	case errors.Is(err, idem.ErrMismatch):
		writeProblem(w, http.StatusUnprocessableEntity, TypeKeyReused, "Idempotency-Key reused",
			"This Idempotency-Key was already used for a different request (another body, media type, method or route). Use a new key for a new request.",
			problem.FieldError{Header: HeaderKey, Detail: "the key belongs to a different request"})
		m.report(r, OutcomeMismatch, err)
	case errors.Is(err, idem.ErrCommitLost):
		setRetryAfter(w, storeRetryAfter)
		writeProblem(w, http.StatusConflict, TypeCommitLost, "Request superseded",
			"This attempt took too long and another attempt with the same Idempotency-Key took over; nothing of this attempt was kept. Retry the exact same request to get the outcome.")
		m.report(r, OutcomeCommitLost, err)
	case errors.Is(err, idem.ErrWriteConditionFailed):
		// The guard released the key, so retrying is safe; the 409 response
		// OpenAPI documents carries Retry-After, so this one does too.
		setRetryAfter(w, storeRetryAfter)
		writeProblem(w, http.StatusConflict, TypeWriteConflict, "Conflicting write",
			"The request conflicted with the current state when its changes were saved. Nothing was changed and the Idempotency-Key was not used up.")
		m.report(r, OutcomeWriteConflict, err)
	case errors.Is(err, idem.ErrTooLarge):
		writeProblem(w, http.StatusInternalServerError, TypeResponseTooLarge, "Response too large to remember",
			"The response to this request is too large to be stored for replay, so the request was not carried out. Nothing was changed.")
		m.report(r, OutcomeResponseTooLarge, err)
	case errors.Is(err, idem.ErrTooManyWrites):
		writeProblem(w, http.StatusInternalServerError, TypeTooManyWrites, "Request too large to carry out",
			"The request would change more items than can be changed together. Nothing was changed.")
		m.report(r, OutcomeTooManyWrites, err)
	case errors.Is(err, idem.ErrStore), errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		setRetryAfter(w, storeRetryAfter)
		writeProblem(w, http.StatusServiceUnavailable, TypeStoreUnavailable, "Idempotency store unavailable",
			"The request could not be carried out reliably. Retrying it with the same Idempotency-Key is safe: it either replays the outcome or carries the request out.")
		m.report(r, OutcomeStoreError, err)
	default:
		writeProblem(w, http.StatusInternalServerError, TypeInternal, "Internal server error",
			"The request failed unexpectedly. It can be retried with the same Idempotency-Key.")
		m.report(r, OutcomeError, err)
	}
}
