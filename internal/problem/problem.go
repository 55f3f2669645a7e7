// Package problem writes RFC 9457 problem details (application/problem+json),
// the one error format of every HTTP response this service sends.
package problem

import (
	"encoding/json"
	"net/http"
	"strconv"
)

// ContentType is the media type of a problem details document.
const ContentType = "application/problem+json"

// TypeBase prefixes every problem type URI of this service; a type's last
// path segment names the kind of error, and the README lists them all.
const TypeBase = "https://api.parcelhq.example/problems/"

// Problem is an RFC 9457 problem details object. Type distinguishes kinds of
// error: a client branches on Type, never on Title or Detail.
type Problem struct {
	Type     string `json:"type"`
	Title    string `json:"title"`
	Status   int    `json:"status"`
	Detail   string `json:"detail,omitempty"`
	Instance string `json:"instance,omitempty"`
	// Errors lists each invalid part of a request (the "errors" extension
	// member of RFC 9457's examples).
	Errors []FieldError `json:"errors,omitempty"`
}

// FieldError names one invalid part of a request: Pointer is an RFC 6901 JSON
// Pointer into the request body ("/receiver/address/postcode"); an invalid
// header is named in Header instead.
type FieldError struct {
	Pointer string `json:"pointer,omitempty"`
	Header  string `json:"header,omitempty"`
	Detail  string `json:"detail"`
}

// Type returns the type URI for the kind of error slug.
func Type(slug string) string { return TypeBase + slug }

// Write sends p with status p.Status and Content-Type application/problem+json.
// Headers already set on w (Retry-After, Allow, ...) are kept. It never fails:
// a Problem always encodes.
func Write(w http.ResponseWriter, p Problem) {
	body, err := json.Marshal(p)
	if err != nil { // unreachable: Problem holds only strings and ints
		body = []byte(`{"type":"about:blank","title":"Internal Server Error","status":500}`)
		p.Status = http.StatusInternalServerError
	}
	body = append(body, '\n')
	h := w.Header()
	h.Set("Content-Type", ContentType)
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("Cache-Control", "no-store")
	h.Del("ETag")
	w.WriteHeader(p.Status)
	_, _ = w.Write(body)
}
