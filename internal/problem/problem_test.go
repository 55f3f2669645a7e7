package problem_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/parcelhq/orderservice/internal/problem"
)

func TestWrite(t *testing.T) {
	rec := httptest.NewRecorder()
	rec.Header().Set("Retry-After", "1")
	problem.Write(rec, problem.Problem{
		Type: problem.Type("validation"), Title: "Invalid order", Status: http.StatusBadRequest,
		Errors: []problem.FieldError{{Pointer: "/parcel/weight_kg", Detail: "must be greater than 0"}},
	})
	if rec.Code != http.StatusBadRequest {
		t.Errorf("status = %d, want 400", rec.Code)
	}
	if ct := rec.Header().Get("Content-Type"); ct != problem.ContentType {
		t.Errorf("Content-Type = %q", ct)
	}
	if rec.Header().Get("Retry-After") != "1" {
		t.Error("a header set before Write was dropped")
	}
	var got map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatalf("body is not JSON: %v", err)
	}
	if got["type"] != problem.TypeBase+"validation" || got["status"] != float64(400) {
		t.Errorf("body = %v", got)
	}
	if _, ok := got["detail"]; ok {
		t.Error("empty detail was sent")
	}
}
