package orders

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/parcelhq/orderservice/internal/problem"
)

// MaxBodyBytes is the largest request body POST /orders accepts.
const MaxBodyBytes = 64 << 10

// Problem type slugs (see problem.Type) this package answers with.
const (
	SlugMalformedBody        = "malformed-body"         // 400
	SlugInvalidOrder         = "invalid-order"          // 400, with errors
	SlugBodyTooLarge         = "body-too-large"         // 413
	SlugUnsupportedMediaType = "unsupported-media-type" // 415
	SlugOrderNotFound        = "order-not-found"        // 404
	SlugStoreUnavailable     = "store-unavailable"      // 503, Retry-After
	SlugInternalError        = "internal-error"         // 500
	SlugNotFound             = "not-found"              // 404, unknown route
	SlugMethodNotAllowed     = "method-not-allowed"     // 405, Allow
)

// retryAfterSeconds is the Retry-After of a store-unavailable answer.
const retryAfterSeconds = "1"

// orderStore is what the handlers need of a Store.
type orderStore interface {
	Create(ctx context.Context, o Order) error
	Get(ctx context.Context, id string) (Order, error)
}

// Handler serves the order API's two operations.
type Handler struct {
	store  orderStore
	now    func() time.Time
	newID  func(ctx context.Context) (string, error)
	logger *slog.Logger
}

// Option configures a Handler.
type Option func(*Handler)

// WithClock makes the handler take creation times from now instead of
// time.Now.
func WithClock(now func() time.Time) Option { return func(h *Handler) { h.now = now } }

// WithIDGenerator makes the handler take order ids from gen instead of
// NewIDFrom(ddb.KeyRand(ctx)) (crypto/rand unless the request's context
// says otherwise). The ids must satisfy ValidID, or GET cannot find the
// orders.
func WithIDGenerator(gen func() (string, error)) Option {
	return func(h *Handler) { h.newID = func(context.Context) (string, error) { return gen() } }
}

// WithLogger makes the handler log store failures to l instead of
// slog.Default().
func WithLogger(l *slog.Logger) Option { return func(h *Handler) { h.logger = l } }

// NewHandler returns the handlers of the order API on s.
func NewHandler(s *Store, opts ...Option) *Handler {
	h := &Handler{store: s, now: time.Now, newID: newIDFor, logger: slog.Default()}
	for _, o := range opts {
		o(h)
	}
	return h
}

// Create returns the handler of POST /orders. It does not look at the
// method or path (NewRouter does).
//
// It answers 201 Created with Location /orders/{order_id} and the order as
// JSON, or: 415 unsupported-media-type when Content-Type is not
// application/json (or is missing); 413 body-too-large over MaxBodyBytes;
// 400 malformed-body or invalid-order as DecodeOrder decides; 503
// store-unavailable (Retry-After: 1) when the store fails; 500
// internal-error when no id can be made. The order records the request's
// owner (OwnerFrom). Nothing is written to the response before the store
// call has succeeded, and the body depends only on the request, the id and
// the clock.
func (h *Handler) Create() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !isJSON(r.Header.Get("Content-Type")) {
			w.Header().Set("Accept-Post", "application/json")
			writeProblem(w, http.StatusUnsupportedMediaType, SlugUnsupportedMediaType, "Unsupported media type",
				"the request body must be application/json")
			return
		}
		if r.ContentLength > MaxBodyBytes {
			tooLarge(w)
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
		var mbe *http.MaxBytesError
		switch {
		case errors.As(err, &mbe):
			tooLarge(w)
			return
		case err != nil:
			writeProblem(w, http.StatusBadRequest, SlugMalformedBody, "Malformed request body", "the body could not be read")
			return
		}
		req, err := DecodeOrder(body)
		var verr *ValidationError
		switch {
		case errors.As(err, &verr):
			p := problem.Problem{Type: problem.Type(SlugInvalidOrder), Title: "Invalid order", Status: http.StatusBadRequest,
				Detail: "the order has " + strconv.Itoa(len(verr.Fields)) + " invalid field(s), listed in errors"}
			for _, f := range verr.Fields {
				p.Errors = append(p.Errors, problem.FieldError{Pointer: f.Pointer, Detail: f.Detail})
			}
			problem.Write(w, p)
			return
		case err != nil:
			writeProblem(w, http.StatusBadRequest, SlugMalformedBody, "Malformed request body",
				strings.TrimPrefix(err.Error(), ErrMalformedBody.Error()+": "))
			return
		}
		id, err := h.newID(r.Context())
		if err != nil {
			h.logger.ErrorContext(r.Context(), "orders: cannot make an order id", "error", err)
			writeProblem(w, http.StatusInternalServerError, SlugInternalError, "Internal error", "")
			return
		}
		o := Book(id, req, h.now())
		o.Owner = OwnerFrom(r.Context())
		if err := h.store.Create(r.Context(), o); err != nil {
			h.storeFailed(w, r, err)
			return
		}
		w.Header().Set("Location", "/orders/"+o.ID)
		writeOrder(w, http.StatusCreated, o)
	})
}

// Get returns the handler of GET /orders/{order_id}; it reads the id from
// r.PathValue("order_id").
//
// It answers 200 with the order as JSON, byte for byte the body Create
// answered with; 404 order-not-found for an unknown or malformed id, and the
// very same 404 for an order whose owner is not the request's (OwnerFrom),
// so that an order id reveals nothing to another caller; 503
// store-unavailable (Retry-After: 1) when the store fails.
func (h *Handler) Get() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("order_id")
		if !ValidID(id) {
			notFound(w)
			return
		}
		o, err := h.store.Get(r.Context(), id)
		switch {
		case errors.Is(err, ErrNotFound):
			notFound(w)
		case err == nil && o.Owner != OwnerFrom(r.Context()):
			notFound(w)
		case err != nil:
			h.storeFailed(w, r, err)
		default:
			writeOrder(w, http.StatusOK, o)
		}
	})
}

func (h *Handler) storeFailed(w http.ResponseWriter, r *http.Request, err error) {
	h.logger.ErrorContext(r.Context(), "orders: store failed", "error", err)
	w.Header().Set("Retry-After", retryAfterSeconds)
	writeProblem(w, http.StatusServiceUnavailable, SlugStoreUnavailable, "Order store unavailable",
		"the order could not be stored or read; retry later")
}

func writeOrder(w http.ResponseWriter, status int, o Order) {
	body := EncodeOrder(o)
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// isJSON reports whether a Content-Type header value is application/json
// with, if any, charset utf-8.
func isJSON(v string) bool {
	if strings.EqualFold(v, "application/json") || strings.EqualFold(v, "application/json; charset=utf-8") {
		return true // what clients send, without parsing it
	}
	mt, params, err := mime.ParseMediaType(v)
	if err != nil || mt != "application/json" {
		return false
	}
	cs, ok := params["charset"]
	return !ok || strings.EqualFold(cs, "utf-8")
}

func tooLarge(w http.ResponseWriter) {
	writeProblem(w, http.StatusRequestEntityTooLarge, SlugBodyTooLarge, "Request body too large",
		"the body must be at most "+strconv.Itoa(MaxBodyBytes)+" bytes")
}

func notFound(w http.ResponseWriter) {
	writeProblem(w, http.StatusNotFound, SlugOrderNotFound, "Order not found", "")
}

func writeProblem(w http.ResponseWriter, status int, slug, title, detail string) {
	problem.Write(w, problem.Problem{Type: problem.Type(slug), Title: title, Status: status, Detail: detail})
}
