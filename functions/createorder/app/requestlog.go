package app

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/awslabs/aws-lambda-go-api-proxy/core"

	"github.com/parcelhq/orderservice/internal/idem"
	"github.com/parcelhq/orderservice/internal/idem/idemhttp"
	"github.com/parcelhq/orderservice/internal/problem"
)

// requestStats collects, for one request, what the idempotency guard and
// middleware report, for its log line and metrics.
type requestStats struct {
	mu         sync.Mutex
	outcome    idemhttp.Outcome
	outcomeErr error
	events     [maxEventKind + 1]int // by idem.EventKind; kinds beyond are not counted
}

// maxEventKind bounds the idem.EventKind values counted per request (the
// kinds are small consecutive integers).
const maxEventKind = 15

type statsKey struct{}

func statsFrom(ctx context.Context) *requestStats {
	s, _ := ctx.Value(statsKey{}).(*requestStats)
	return s
}

// countEvent is the guard's Observer.
func countEvent(ctx context.Context, e idem.Event) {
	if s := statsFrom(ctx); s != nil && e.Kind >= 0 && e.Kind <= maxEventKind {
		s.mu.Lock()
		s.events[e.Kind]++
		s.mu.Unlock()
	}
}

// noteOutcome is the middleware's OnOutcome.
func noteOutcome(r *http.Request, o idemhttp.Outcome, err error) {
	if s := statsFrom(r.Context()); s != nil {
		s.mu.Lock()
		s.outcome, s.outcomeErr = o, err
		s.mu.Unlock()
	}
}

// metricNames maps guard events to the CloudWatch metrics published for
// them. Every request publishes all of them (0 when absent), so the series
// have no gaps.
var metricNames = []struct {
	kind idem.EventKind
	name string
}{
	{idem.Hit, "IdempotencyHits"},
	{idem.Miss, "IdempotencyMisses"},
	{idem.Conflict, "IdempotencyConflicts"},
	{idem.Mismatch, "IdempotencyMismatches"},
	{idem.LeaseTakeover, "IdempotencyLeaseTakeovers"},
	{idem.CommitLost, "IdempotencyCommitsLost"},
	{idem.StoreError, "IdempotencyStoreErrors"},
	{idem.RetryReadMissed, "IdempotencyRetryReadsMissed"},
}

// metricsNamespace is the CloudWatch namespace of the service's metrics.
const metricsNamespace = "OrderService"

type emfMetric struct {
	Name string `json:"Name"`
	Unit string `json:"Unit"`
}

type emfDirective struct {
	Namespace  string      `json:"Namespace"`
	Dimensions [][]string  `json:"Dimensions"`
	Metrics    []emfMetric `json:"Metrics"`
}

type emfMetadata struct {
	Timestamp         int64          `json:"Timestamp"`
	CloudWatchMetrics []emfDirective `json:"CloudWatchMetrics"`
}

// emfDirectives is the CloudWatchMetrics member of every line's "_aws"
// object, the same on every line.
var emfDirectives = func() []emfDirective {
	m := make([]emfMetric, len(metricNames))
	for i, n := range metricNames {
		m[i] = emfMetric{Name: n.name, Unit: "Count"}
	}
	return []emfDirective{{Namespace: metricsNamespace, Dimensions: [][]string{{"Service"}}, Metrics: m}}
}()

// attrBuffers holds the attribute slices of log lines: Record.AddAttrs
// copies a line's attributes into its Record, so a slice can be reused as
// soon as the Record is made.
var attrBuffers = sync.Pool{New: func() any {
	b := make([]slog.Attr, 0, 16+len(metricNames))
	return &b
}}

// serviceName is the metrics dimension: the Lambda function's name, or
// "orderservice" outside Lambda.
var serviceName = func() string {
	if n := os.Getenv("AWS_LAMBDA_FUNCTION_NAME"); n != "" {
		return n
	}
	return "orderservice"
}()

// statusWriter remembers the status a handler wrote.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// logRequests writes one JSON line per request, after it was answered: the
// Lambda and API Gateway request ids, method, path, status, outcome (created,
// replayed, conflict, mismatch, invalid, found, not_found, unavailable,
// failed), duration, and the idempotency metrics in CloudWatch Embedded
// Metric Format, so that the line is also the request's metrics record.
// The line is at level INFO, ERROR for a 5xx answer; when logger's handler
// is not enabled for that level nothing of the line is made. The line's
// record has no caller PC, so a handler with AddSource logs an empty source.
func logRequests(logger *slog.Logger, next http.Handler) http.Handler {
	logger = logger.With(slog.String("Service", serviceName)) // formatted once
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		stats := &requestStats{}
		r = r.WithContext(context.WithValue(r.Context(), statsKey{}, stats))
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r)

		level := slog.LevelInfo
		if sw.status >= 500 {
			level = slog.LevelError
		}
		h := logger.Handler()
		if !h.Enabled(r.Context(), level) {
			return
		}
		stats.mu.Lock()
		defer stats.mu.Unlock()
		buf := attrBuffers.Get().(*[]slog.Attr)
		attrs := (*buf)[:0]
		if lc, ok := lambdacontext.FromContext(r.Context()); ok {
			attrs = append(attrs, slog.String("request_id", lc.AwsRequestID))
		}
		if gw, ok := core.GetAPIGatewayV2ContextFromContext(r.Context()); ok && gw.RequestID != "" {
			attrs = append(attrs, slog.String("api_request_id", gw.RequestID))
		}
		outcome := describe(sw.status, stats.outcome)
		attrs = append(attrs,
			slog.String("method", r.Method),
			slog.String("path", r.URL.Path),
			slog.Int("status", sw.status),
			slog.String("outcome", outcome),
			slog.Float64("duration_ms", float64(time.Since(start).Microseconds())/1000),
		)
		if stats.outcome != "" {
			attrs = append(attrs, slog.String("idempotency", string(stats.outcome)))
		}
		if stats.outcomeErr != nil {
			attrs = append(attrs, slog.String("error", stats.outcomeErr.Error()))
		}
		attrs = append(attrs,
			slog.Any("_aws", &emfMetadata{Timestamp: time.Now().UnixMilli(), CloudWatchMetrics: emfDirectives}),
		)
		for _, m := range metricNames {
			attrs = append(attrs, slog.Int(m.name, stats.events[m.kind]))
		}
		// The record carries no caller PC: Logger.LogAttrs would walk the
		// stack for one (runtime.Callers) on every request, 1-3% of a
		// create's CPU in paired in-process runs against DynamoDB Local
		// (the walk's tables are cold by the time a create returns), for
		// a source the line does not need.
		rec := slog.NewRecord(time.Now(), level, "request", 0)
		rec.AddAttrs(attrs...)
		// As Logger does, a failed write is dropped: it has nowhere to go.
		_ = h.Handle(r.Context(), rec)
		clear(attrs) // drop references to this request's strings
		*buf = attrs[:0]
		attrBuffers.Put(buf)
	})
}

// describe names a request's outcome for its log line.
func describe(status int, o idemhttp.Outcome) string {
	switch o {
	case idemhttp.OutcomeStored, idemhttp.OutcomeReleased, idemhttp.OutcomeUnkeyed, "":
		switch {
		case o != "" && status >= 200 && status < 300:
			return "created"
		case status == http.StatusOK:
			return "found"
		case status == http.StatusNotFound:
			return "not_found"
		case status >= 500:
			return "failed"
		case status >= 400:
			return "invalid"
		}
		return "ok"
	case idemhttp.OutcomeReplayed:
		return "replayed"
	case idemhttp.OutcomeInProgress, idemhttp.OutcomeCommitLost, idemhttp.OutcomeWriteConflict:
		return "conflict"
	case idemhttp.OutcomeMismatch:
		return "mismatch"
	case idemhttp.OutcomeStoreError:
		return "unavailable"
	case idemhttp.OutcomeKeyMissing, idemhttp.OutcomeKeyInvalid, idemhttp.OutcomeBodyMalformed,
		idemhttp.OutcomeBodyTooLarge, idemhttp.OutcomeUnsupportedMediaType, idemhttp.OutcomeCallerUnknown:
		return "invalid"
	}
	return "failed"
}

// recoverPanics answers a panic that escaped a handler with 500 problem+json
// (the idempotency middleware already handles its own route's panics and
// releases the key). http.ErrAbortHandler is re-raised, as net/http expects.
func recoverPanics(logger *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			v := recover()
			if v == nil {
				return
			}
			if v == http.ErrAbortHandler {
				panic(v)
			}
			logger.ErrorContext(r.Context(), "handler panicked", "panic", fmt.Sprint(v))
			problem.Write(w, problem.Problem{
				Type: problem.Type(idemhttp.TypeInternal), Title: "Internal server error", Status: http.StatusInternalServerError,
			})
		}()
		next.ServeHTTP(w, r)
	})
}
