package idemhttp

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
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
// version, and the media type joined the fingerprint without one, so that
// the fingerprint of the plain cases is what it was: a body labelled
// application/json with no parameter but charset=utf-8 (in any case), and a
// non-JSON body whose type has no parameters. Every other request's
// fingerprint changed (TestFingerprintChangedOnlyWhereDocumented): another
// JSON type (application/vnd.api+json), a type with other parameters
// (application/json; v=1, text/plain; charset=utf-8), and a Content-Type
// that is missing or does not parse. A retry of such a request whose first
// attempt was recorded by the first version, within that record's
// retention, meets another fingerprint: ErrMismatch, 422, instead of a
// replay (or of 409 while the first attempt runs). Nothing runs twice, but
// a client that follows 422's advice and sends the order again under a new
// key books it twice. Behind POST /orders only application/json with a
// parameter other than charset is affected: the other cases are refused
// with 415 before the guard.
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
	// The kind of body: "json" alone for application/json (the one JSON type
	// the first version told apart by its body only), "json <type>" for any
	// other JSON type, "raw <type>" for the rest; a Content-Type that does
	// not parse is marked, so it never equals a normalised one.
	kind := "json"
	if !mt.parsed || !mt.json || mt.norm != "application/json" {
		kind = "raw "
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
	}

	// The hashed text is a sequence of length-prefixed fields: version,
	// method, route, kind, body (canonical when JSON), in one buffer so that
	// it is hashed in one call.
	c := canonicalizers.Get().(*canonicalizer)
	defer c.release()
	b := appendField(c.out[:0], fingerprintVersion)
	b = appendField(b, method)
	b = appendField(b, route)
	b = appendField(b, kind)
	if !mt.json {
		b = appendField(b, body)
	} else {
		// Canonicalise after room for the longest length prefix, then move
		// the canonical form up against its actual prefix.
		at := len(b)
		c.out = append(b, make([]byte, binary.MaxVarintLen64)...)
		if err := c.canonicalize(body); err != nil {
			return "", err
		}
		canon := c.out[at+binary.MaxVarintLen64:]
		n := binary.PutUvarint(c.out[at:], uint64(len(canon)))
		b = append(c.out[:at+n], canon...) // copy moves left within the buffer
	}
	c.out = b
	sum := sha256.Sum256(b)
	var hexSum [2 * sha256.Size]byte
	hex.Encode(hexSum[:], sum[:])
	return string(hexSum[:]), nil
}

func appendField[T string | []byte](b []byte, s T) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// CanonicalJSON returns the canonical form of the JSON value in body that
// Fingerprint hashes: members sorted by their unescaped names, no
// whitespace, strings re-encoded as encoding/json's Marshal encodes them
// (HTML-safe), numbers as written. It returns a *BodyError for anything but
// one valid UTF-8 JSON value without duplicate member names and nested at
// most MaxJSONDepth deep.
func CanonicalJSON(body []byte) ([]byte, error) {
	c := canonicalizers.Get().(*canonicalizer)
	defer c.release()
	c.out = c.out[:0]
	if err := c.canonicalize(body); err != nil {
		return nil, err
	}
	return bytes.Clone(c.out), nil
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
