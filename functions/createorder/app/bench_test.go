package app

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/parcelhq/orderservice/internal/ddbtest"
	"github.com/parcelhq/orderservice/internal/idem"
	"github.com/parcelhq/orderservice/internal/idem/idemhttp"
	"github.com/parcelhq/orderservice/internal/orders/orderstest"
)

// BenchmarkRequestLog is the cost of the request log and metrics line
// around a request whose handler reports what the guard and the middleware
// of a create report (a miss, stored), written as JSON to a discarding
// writer.
func BenchmarkRequestLog(b *testing.B) {
	logger := NewLogger(io.Discard, "INFO")
	h := logRequests(logger, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		countEvent(r.Context(), idem.Event{Kind: idem.Miss})
		countEvent(r.Context(), idem.Event{Kind: idem.Committed})
		w.WriteHeader(http.StatusCreated)
		noteOutcome(r, idemhttp.OutcomeStored, nil)
	}))
	r := httptest.NewRequest(http.MethodPost, "/orders", nil)
	w := httptest.NewRecorder()
	b.ReportAllocs()
	for b.Loop() {
		h.ServeHTTP(w, r)
	}
}

// BenchmarkCreate is a whole POST /orders miss through New's handler (no
// API Gateway event adaptation) against DynamoDB Local, in each mode: the
// server's CPU and allocations per create, DynamoDB's latency included in
// ns/op. Profile it with -cpuprofile to see where the server's CPU goes.
func BenchmarkCreate(b *testing.B) {
	for _, mode := range []idem.Mode{idem.Lease, idem.Optimistic} {
		b.Run(mode.String(), func(b *testing.B) {
			cfg := Config{OrdersTable: "orders", IdempotencyTable: "idempotency", Retention: 24 * time.Hour, Mode: mode}
			tables := cfg.Tables()
			cfg.OrdersTable = ddbtest.Table(b, tables[0]).Name
			cfg.IdempotencyTable = ddbtest.Table(b, tables[1]).Name
			h, err := New(context.Background(), cfg, ddbtest.Client(b), NewLogger(io.Discard, "INFO"))
			if err != nil {
				b.Fatal(err)
			}
			n := 0
			b.ReportAllocs()
			for b.Loop() {
				n++
				r := httptest.NewRequest(http.MethodPost, "/orders", strings.NewReader(orderstest.JSON))
				r.Header.Set("Content-Type", "application/json")
				r.Header.Set("Idempotency-Key", "bench-"+strconv.Itoa(n)+"-"+strconv.FormatInt(time.Now().UnixNano(), 36))
				w := httptest.NewRecorder()
				h.ServeHTTP(w, r)
				if w.Code != http.StatusCreated {
					b.Fatalf("status %d: %s", w.Code, w.Body)
				}
			}
		})
	}
}
