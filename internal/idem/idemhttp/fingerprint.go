package idemhttp

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"unicode/utf8"
)

// MaxJSONDepth is the deepest nesting of arrays and objects that Fingerprint
// accepts in a JSON body.
const MaxJSONDepth = 64

// BodyError is the error Fingerprint returns for a JSON body it cannot
// canonicalize. Reason says why, in words fit for a client.
type BodyError struct {
	Reason string
}

func (e *BodyError) Error() string { return "malformed JSON body: " + e.Reason }

// fingerprintVersion changes whenever the canonical form changes in a way
// that could make a record written by an older version match a different
// request. Splitting what an older version merged does not call for a new
// version: the media type joined the fingerprint without one, so that the
// fingerprint of an application/json body (and of a non-JSON body without
// parameters) is what it was, and retries in flight across a deployment
// still replay rather than meet a 422.
const fingerprintVersion = "idemhttp-fingerprint-v1"

// Fingerprint returns the SHA-256 (lower-case hex) of what makes two requests
// "the same request" for an idempotency key: the method, the route template
// (so a key reused on another route never matches), the media type and the
// body.
//
// The media type is normalised: type, subtype and parameter names compare
// without regard to case, parameters in any order, quoted or not, a charset
// value without regard to case; for a JSON type charset=utf-8 is the same as
// no charset. Any other difference makes another request: application/json
// and application/vnd.api+json, or text/plain with two charsets, are two
// requests however alike their bodies.
//
// When contentType is JSON (application/json or any application/*+json
// type, whatever its parameters), the body is hashed in a canonical form:
// object members sorted by name, insignificant whitespace dropped, strings
// compared after unescaping ("\u0041" equals "A"), numbers kept as their
// literal text (1.0 and 1 differ). Such a body must be exactly one valid
// UTF-8 JSON value with no duplicate member names in any object and at most
// MaxJSONDepth levels of nesting; otherwise Fingerprint returns "" and a
// *BodyError. Any other body is hashed byte for byte; it never fails.
func Fingerprint(method, route, contentType string, body []byte) (string, error) {
	return fingerprint(method, route, parseMediaType(contentType), body)
}

func fingerprint(method, route string, mt mediaType, body []byte) (string, error) {
	h := sha256.New()
	field := func(s []byte) {
		var n [binary.MaxVarintLen64]byte
		h.Write(n[:binary.PutUvarint(n[:], uint64(len(s)))])
		h.Write(s)
	}
	field([]byte(fingerprintVersion))
	field([]byte(method))
	field([]byte(route))
	// The kind of body: "json" alone for application/json (the one JSON type
	// the first version told apart by its body only), "json <type>" for any
	// other JSON type, "raw <type>" for the rest; a Content-Type that does
	// not parse is marked, so it never equals a normalised one.
	kind := "raw "
	if mt.json {
		kind = "json "
	}
	if !mt.parsed {
		kind = strings.TrimSpace(kind) + "? "
	}
	kind += mt.norm
	if kind == "json application/json" {
		kind = "json"
	}
	field([]byte(kind))
	if mt.json {
		canon, err := CanonicalJSON(body)
		if err != nil {
			return "", err
		}
		field(canon)
	} else {
		field(body)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// CanonicalJSON returns the canonical form of the JSON value in body that
// Fingerprint hashes: members sorted by their unescaped names, no
// whitespace, strings re-encoded by encoding/json, numbers as written. It
// returns a *BodyError for anything but one valid UTF-8 JSON value without
// duplicate member names and nested at most MaxJSONDepth deep.
func CanonicalJSON(body []byte) ([]byte, error) {
	if !utf8.Valid(body) {
		return nil, &BodyError{Reason: "the body is not valid UTF-8"}
	}
	if !json.Valid(body) {
		return nil, &BodyError{Reason: syntaxReason(body)}
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var out bytes.Buffer
	out.Grow(len(body))
	if err := canonValue(dec, &out, 0); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, &BodyError{Reason: "data follows the JSON value"}
	}
	return out.Bytes(), nil
}

// syntaxReason describes why body is not valid JSON.
func syntaxReason(body []byte) string {
	var v any
	err := json.Unmarshal(body, &v)
	var se *json.SyntaxError
	switch {
	case len(bytes.TrimSpace(body)) == 0:
		return "the body is empty"
	case errors.As(err, &se):
		return fmt.Sprintf("%s (at byte %d)", strings.TrimPrefix(se.Error(), "json: "), se.Offset)
	case err != nil:
		return err.Error()
	default:
		return "the body is not a JSON value"
	}
}

type member struct {
	name  string
	value []byte
}

func canonValue(dec *json.Decoder, out *bytes.Buffer, depth int) error {
	tok, err := dec.Token()
	if err != nil {
		return &BodyError{Reason: err.Error()}
	}
	switch t := tok.(type) {
	case json.Delim:
		if depth+1 > MaxJSONDepth {
			return &BodyError{Reason: fmt.Sprintf("the JSON value is nested more than %d levels deep", MaxJSONDepth)}
		}
		if t == '[' {
			return canonArray(dec, out, depth+1)
		}
		return canonObject(dec, out, depth+1)
	case string:
		writeString(out, t)
	case json.Number:
		out.WriteString(string(t))
	case bool:
		if t {
			out.WriteString("true")
		} else {
			out.WriteString("false")
		}
	case nil:
		out.WriteString("null")
	}
	return nil
}

func canonArray(dec *json.Decoder, out *bytes.Buffer, depth int) error {
	out.WriteByte('[')
	for i := 0; dec.More(); i++ {
		if i > 0 {
			out.WriteByte(',')
		}
		if err := canonValue(dec, out, depth); err != nil {
			return err
		}
	}
	if _, err := dec.Token(); err != nil { // ']'
		return &BodyError{Reason: err.Error()}
	}
	out.WriteByte(']')
	return nil
}

func canonObject(dec *json.Decoder, out *bytes.Buffer, depth int) error {
	var members []member
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return &BodyError{Reason: err.Error()}
		}
		name, _ := tok.(string) // json.Valid passed: a member name is a string
		if seen[name] {
			return &BodyError{Reason: fmt.Sprintf("the member name %q appears twice in one object", name)}
		}
		seen[name] = true
		var v bytes.Buffer
		if err := canonValue(dec, &v, depth); err != nil {
			return err
		}
		members = append(members, member{name: name, value: v.Bytes()})
	}
	if _, err := dec.Token(); err != nil { // '}'
		return &BodyError{Reason: err.Error()}
	}
	slices.SortFunc(members, func(a, b member) int { return strings.Compare(a.name, b.name) })
	out.WriteByte('{')
	for i, m := range members {
		if i > 0 {
			out.WriteByte(',')
		}
		writeString(out, m.name)
		out.WriteByte(':')
		out.Write(m.value)
	}
	out.WriteByte('}')
	return nil
}

// writeString writes s as a JSON string; the encoding is a function of s
// alone, so equal strings encode equally however they were escaped.
func writeString(out *bytes.Buffer, s string) {
	b, _ := json.Marshal(s) // a string always marshals
	out.Write(b)
}
