package app

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/parcelhq/orderservice/internal/ddbtest"
	"github.com/parcelhq/orderservice/internal/idem"
	"github.com/parcelhq/orderservice/internal/orders/orderstest"
	"github.com/parcelhq/orderservice/internal/problem"
)

// syncBuffer is a log sink safe for the handler's writes and the test's reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// lastLine returns the last JSON log line, decoded.
func (s *syncBuffer) lastLine(t *testing.T) map[string]any {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	lines := strings.Split(strings.TrimSpace(s.b.String()), "\n")
	var rec map[string]any
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &rec); err != nil {
		t.Fatalf("log line is not JSON: %v", err)
	}
	return rec
}

func newApp(t *testing.T) (http.Handler, *syncBuffer) {
	t.Helper()
	h, logs, _ := newAppMode(t, idem.Lease)
	return h, logs
}

// newAppIn is newApp with the guard in the given mode.
func newAppIn(t *testing.T, mode idem.Mode) (http.Handler, *syncBuffer) {
	t.Helper()
	h, logs, _ := newAppMode(t, mode)
	return h, logs
}

// newAppMode returns the app guarding creates in mode, its log, and its
// configuration (with the tables' names).
func newAppMode(t *testing.T, mode idem.Mode) (http.Handler, *syncBuffer, Config) {
	t.Helper()
	// AuthNone: these tests send plain requests, without the API Gateway
	// context an authorizer fills (TestCallers covers that).
	cfg := Config{OrdersTable: "orders", IdempotencyTable: "idempotency", Retention: 24 * time.Hour, Mode: mode, AuthMode: AuthNone}
	tables := cfg.Tables()
	cfg.OrdersTable = ddbtest.Table(t, tables[0]).Name
	cfg.IdempotencyTable = ddbtest.Table(t, tables[1]).Name
	logs := &syncBuffer{}
	h, err := New(context.Background(), cfg, ddbtest.Client(t), NewLogger(logs, "INFO"))
	if err != nil {
		t.Fatal(err)
	}
	return h, logs, cfg
}

func TestRequestLog(t *testing.T) {
	t.Parallel()
	h, logs := newApp(t)
	postWith := func(key string, hint bool) func() *httptest.ResponseRecorder {
		return func() *httptest.ResponseRecorder {
			r := httptest.NewRequest(http.MethodPost, "/orders", strings.NewReader(orderstest.JSON))
			r.Header.Set("Content-Type", "application/json")
			r.Header.Set("Idempotency-Key", key)
			if hint {
				r.Header.Set("Idempotency-Retry", "?1")
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			return w
		}
	}
	post := postWith("log-test", false)
	for _, tc := range []struct {
		name    string
		do      func() *httptest.ResponseRecorder
		status  int
		outcome string
		metrics []string
	}{
		{"a first create is logged as created and counted as a miss", post, http.StatusCreated, "created", []string{"IdempotencyMisses"}},
		{"a retry is logged as replayed and counted as a hit", post, http.StatusCreated, "replayed", []string{"IdempotencyHits"}},
		{"a first create sent with the retry hint counts the read that missed, and a miss", postWith("log-test-hinted", true), http.StatusCreated, "created", []string{"IdempotencyRetryReadsMissed", "IdempotencyMisses"}},
		{"an unknown order is logged as not_found", func() *httptest.ResponseRecorder {
			w := httptest.NewRecorder()
			h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/orders/nope", nil))
			return w
		}, http.StatusNotFound, "not_found", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := tc.do()
			if w.Code != tc.status {
				t.Fatalf("status %d, want %d: %s", w.Code, tc.status, w.Body)
			}
			rec := logs.lastLine(t)
			if rec["message"] != "request" || rec["outcome"] != tc.outcome || rec["status"] != float64(tc.status) {
				t.Fatalf("log line %v, want outcome %q status %d", rec, tc.outcome, tc.status)
			}
			aws, _ := rec["_aws"].(map[string]any)
			if aws == nil || aws["CloudWatchMetrics"] == nil {
				t.Fatalf("log line carries no EMF metadata: %v", rec)
			}
			for _, m := range metricNames {
				want := 0.0
				if slices.Contains(tc.metrics, m.name) {
					want = 1
				}
				if rec[m.name] != want {
					t.Errorf("metric %s = %v, want %v", m.name, rec[m.name], want)
				}
			}
		})
	}
}

func TestRequestLogLevel(t *testing.T) {
	for _, tc := range []struct {
		name   string
		level  string // the logger's
		status int    // the handler's answer
		want   string // the line's level, "" for no line
	}{
		{"a 201 is logged at INFO", "INFO", http.StatusCreated, "INFO"},
		{"a 4xx is logged at INFO", "INFO", http.StatusNotFound, "INFO"},
		{"a 5xx is logged at ERROR", "INFO", http.StatusServiceUnavailable, "ERROR"},
		{"an ERROR logger writes no line for a 201", "ERROR", http.StatusCreated, ""},
		{"an ERROR logger writes the line of a 500", "ERROR", http.StatusInternalServerError, "ERROR"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			logs := &syncBuffer{}
			h := logRequests(NewLogger(logs, tc.level), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(tc.status)
			}))
			h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodPost, "/orders", nil))
			logs.mu.Lock()
			empty := logs.b.Len() == 0
			logs.mu.Unlock()
			if tc.want == "" {
				if !empty {
					t.Fatalf("a line was written: %s", logs.b.String())
				}
				return
			}
			if empty {
				t.Fatal("no line was written")
			}
			rec := logs.lastLine(t)
			if rec["level"] != tc.want || rec["message"] != "request" || rec["status"] != float64(tc.status) || rec["Service"] != serviceName {
				t.Errorf("line %v, want level %s, message request, status %d, Service %q", rec, tc.want, tc.status, serviceName)
			}
			if _, ok := rec["source"]; ok {
				t.Errorf("line has a source: %v", rec)
			}
		})
	}
}

func TestRecoverPanics(t *testing.T) {
	logs := &syncBuffer{}
	h := recoverPanics(NewLogger(logs, "INFO"), http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic("boom") }))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/orders/x", nil))
	if w.Code != http.StatusInternalServerError || w.Header().Get("Content-Type") != "application/problem+json" {
		t.Fatalf("a panic was answered %d %q", w.Code, w.Header().Get("Content-Type"))
	}
	if !strings.Contains(logs.lastLine(t)["panic"].(string), "boom") {
		t.Fatal("the panic was not logged")
	}
}

func TestKeepPolicy(t *testing.T) {
	t.Parallel()
	h, _ := newApp(t)
	send := func(contentType, body string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(http.MethodPost, "/orders", strings.NewReader(body))
		r.Header.Set("Content-Type", contentType)
		r.Header.Set("Idempotency-Key", "keep-policy")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	t.Run("a wrong Content-Type binds nothing, so the same key works once it is fixed", func(t *testing.T) {
		if w := send("text/plain", orderstest.JSON); w.Code != http.StatusUnsupportedMediaType {
			t.Fatalf("text/plain: status %d, want 415", w.Code)
		}
		if w := send("application/json", orderstest.JSON); w.Code != http.StatusCreated {
			t.Fatalf("corrected request with the same key: status %d, want 201: %s", w.Code, w.Body)
		}
	})
	t.Run("an invalid order stays bound to its key", func(t *testing.T) {
		bad := strings.Replace(orderstest.JSON, `"postcode":"4000"`, `"postcode":"40A0"`, 1)
		r := httptest.NewRequest(http.MethodPost, "/orders", strings.NewReader(bad))
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set("Idempotency-Key", "keep-policy-invalid")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != http.StatusBadRequest {
			t.Fatalf("invalid order: status %d, want 400", w.Code)
		}
		r = httptest.NewRequest(http.MethodPost, "/orders", strings.NewReader(orderstest.JSON))
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set("Idempotency-Key", "keep-policy-invalid")
		w = httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != http.StatusUnprocessableEntity {
			t.Fatalf("corrected order with the old key: status %d, want 422", w.Code)
		}
	})
}

// TestARequestRefusedBeforeTheOrderIsReadBindsNothingInEitherMode: a body
// that is not a JSON object, or a Content-Type other than application/json,
// is refused the same way in both modes, whatever the key saw before, and
// the key stays free for the corrected request.
func TestARequestRefusedBeforeTheOrderIsReadBindsNothingInEitherMode(t *testing.T) {
	t.Parallel()
	for _, mode := range []idem.Mode{idem.Lease, idem.Optimistic} {
		t.Run("in "+mode.String()+" mode", func(t *testing.T) {
			t.Parallel()
			h, _ := newAppIn(t, mode)
			send := func(key, contentType, body string) *httptest.ResponseRecorder {
				r := httptest.NewRequest(http.MethodPost, "/orders", strings.NewReader(body))
				r.Header.Set("Content-Type", contentType)
				r.Header.Set("Idempotency-Key", key)
				w := httptest.NewRecorder()
				h.ServeHTTP(w, r)
				return w
			}
			wantProblem := func(t *testing.T, w *httptest.ResponseRecorder, status int, slug string) {
				t.Helper()
				var p problem.Problem
				_ = json.Unmarshal(w.Body.Bytes(), &p)
				if w.Code != status || p.Type != problem.Type(slug) {
					t.Fatalf("status %d type %q, want %d %s: %s", w.Code, p.Type, status, slug, w.Body)
				}
			}
			for i, body := range []string{`[]`, `null`, `[` + orderstest.JSON + `]`} {
				t.Run("a body "+body[:min(len(body), 8)]+" is malformed and the same key then creates the order", func(t *testing.T) {
					key := "not-an-object-" + strconv.Itoa(i)
					wantProblem(t, send(key, "application/json", body), http.StatusBadRequest, "malformed-body")
					if w := send(key, "application/json", orderstest.JSON); w.Code != http.StatusCreated {
						t.Fatalf("the order with the same key: %d %s", w.Code, w.Body)
					}
				})
			}
			t.Run("the order as application/vnd.api+json after application/json is 415, and the key still replays", func(t *testing.T) {
				first := send("media-type", "application/json", orderstest.JSON)
				if first.Code != http.StatusCreated {
					t.Fatalf("first: %d %s", first.Code, first.Body)
				}
				wantProblem(t, send("media-type", "application/vnd.api+json", orderstest.JSON), http.StatusUnsupportedMediaType, "unsupported-media-type")
				again := send("media-type", "application/json", orderstest.JSON)
				if again.Code != http.StatusCreated || again.Header().Get("Idempotent-Replayed") != "true" || again.Body.String() != first.Body.String() {
					t.Fatalf("the retry with application/json: %d %v %s, want the replay of %s", again.Code, again.Header(), again.Body, first.Body)
				}
			})
		})
	}
}

func TestItemMode(t *testing.T) {
	t.Parallel()
	h, _, cfg := newAppMode(t, idem.Item)
	send := func(method, path, key, body string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(method, path, strings.NewReader(body))
		if method == http.MethodPost {
			r.Header.Set("Content-Type", "application/json")
			r.Header.Set("Idempotency-Key", key)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	t.Run("a create is one order, its retry replays it byte for byte, and GET reads it back", func(t *testing.T) {
		first := send(http.MethodPost, "/orders", "item-create", orderstest.JSON)
		if first.Code != http.StatusCreated {
			t.Fatalf("status %d, want 201: %s", first.Code, first.Body)
		}
		again := send(http.MethodPost, "/orders", "item-create", orderstest.JSON)
		if again.Code != http.StatusCreated || again.Header().Get("Idempotent-Replayed") != "true" || !bytes.Equal(again.Body.Bytes(), first.Body.Bytes()) {
			t.Fatalf("retry: %d replayed=%q %s, want the first answer replayed", again.Code, again.Header().Get("Idempotent-Replayed"), again.Body)
		}
		got := send(http.MethodGet, first.Header().Get("Location"), "", "")
		if got.Code != http.StatusOK || !bytes.Equal(got.Body.Bytes(), first.Body.Bytes()) {
			t.Fatalf("GET %s: %d %s, want the created order", first.Header().Get("Location"), got.Code, got.Body)
		}
		out, err := ddbtest.Client(t).Scan(context.Background(), &dynamodb.ScanInput{TableName: aws.String(cfg.OrdersTable), ConsistentRead: aws.Bool(true)})
		if err != nil || out.Count != 1 {
			t.Fatalf("orders table holds %d items (%v), want the one order", out.Count, err)
		}
	})
	t.Run("an invalid order binds its key: the corrected order with the same key is 422 and books nothing", func(t *testing.T) {
		bad := strings.Replace(orderstest.JSON, `"postcode":"4000"`, `"postcode":"40A0"`, 1)
		if w := send(http.MethodPost, "/orders", "item-invalid", bad); w.Code != http.StatusBadRequest {
			t.Fatalf("invalid order: status %d, want 400", w.Code)
		}
		if w := send(http.MethodPost, "/orders", "item-invalid", orderstest.JSON); w.Code != http.StatusUnprocessableEntity {
			t.Fatalf("corrected order with the old key: status %d, want 422: %s", w.Code, w.Body)
		}
		if w := send(http.MethodPost, "/orders", "item-invalid", bad); w.Code != http.StatusBadRequest || w.Header().Get("Idempotent-Replayed") != "true" {
			t.Fatalf("the invalid order again: %d, want its 400 replayed", w.Code)
		}
	})
}
