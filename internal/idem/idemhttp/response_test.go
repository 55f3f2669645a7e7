package idemhttp

import (
	"net/http"
	"net/http/httptest"
	"reflect"
	"testing"
)

func TestStoredResponses(t *testing.T) {
	t.Parallel()
	t.Run("a stored response decodes to its status, storable headers and body", func(t *testing.T) {
		t.Parallel()
		r := &response{Status: 201, Body: []byte(`{"id":"1"}`), Header: http.Header{
			"Content-Type": {"application/json"}, "Location": {"/orders/1"}, "X-Multi": {"a", "b"},
			"Date": {"Mon, 01 Jan 2024 00:00:00 GMT"}, "Connection": {"close, X-Hop"}, "X-Hop": {"1"},
			"Transfer-Encoding": {"chunked"}, "Set-Cookie": {"session=secret"}, "Content-Length": {"999"},
			HeaderReplayed: {"true"}, "Trailer:X-Sum": {"1"},
		}}
		got, err := decodeResponse(r.encode())
		if err != nil {
			t.Fatal(err)
		}
		want := http.Header{"Content-Type": {"application/json"}, "Location": {"/orders/1"}, "X-Multi": {"a", "b"}}
		if got.Status != 201 || string(got.Body) != `{"id":"1"}` || !reflect.DeepEqual(got.Header, want) {
			t.Fatalf("decoded %d %v %q", got.Status, got.Header, got.Body)
		}
	})
	t.Run("encoding is deterministic", func(t *testing.T) {
		t.Parallel()
		r := &response{Status: 200, Header: http.Header{"A": {"1"}, "B": {"2"}, "C": {"3"}}, Body: []byte("x")}
		if string(r.encode()) != string(r.encode()) {
			t.Fatal("two encodings differ")
		}
	})
	t.Run("every truncation of a stored response is rejected without a panic", func(t *testing.T) {
		t.Parallel()
		enc := (&response{Status: 200, Header: http.Header{"Content-Type": {"text/plain"}}, Body: nil}).encode()
		for i := range len(enc) {
			if _, err := decodeResponse(enc[:i]); err == nil {
				t.Fatalf("truncation to %d bytes decoded", i)
			}
		}
		if _, err := decodeResponse([]byte{9, 200, 1}); err == nil {
			t.Fatal("an unknown version decoded")
		}
	})
	t.Run("a replay sets Content-Length and the replay marker", func(t *testing.T) {
		t.Parallel()
		rec := httptest.NewRecorder()
		(&response{Status: 202, Header: http.Header{"Content-Type": {"text/plain"}}, Body: []byte("queued")}).write(rec, true)
		if rec.Code != 202 || rec.Body.String() != "queued" || rec.Header().Get("Content-Length") != "6" || rec.Header().Get(HeaderReplayed) != "true" {
			t.Fatalf("%d %v %q", rec.Code, rec.Header(), rec.Body)
		}
	})
	t.Run("a captured response gets the Content-Type net/http would have sniffed", func(t *testing.T) {
		t.Parallel()
		c := newCapture()
		_, _ = c.Write([]byte("<html>hi</html>"))
		if r := c.response(); r.Status != 200 || r.Header.Get("Content-Type") != "text/html; charset=utf-8" {
			t.Fatalf("%d %v", r.Status, r.Header)
		}
	})
}
