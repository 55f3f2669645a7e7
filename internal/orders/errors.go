package orders

import (
	"errors"
	"fmt"
	"strings"
)

// ErrMalformedBody is wrapped by the error DecodeOrder returns when the body
// is not exactly one JSON object in valid UTF-8.
var ErrMalformedBody = errors.New("orders: malformed body")

// FieldError names one invalid part of a request: Pointer is an RFC 6901
// JSON Pointer into the request body.
type FieldError struct {
	Pointer string
	Detail  string
}

// ValidationError is returned by DecodeOrder for a well-formed JSON object
// that is not a valid order. Fields lists every problem found, in a
// deterministic order: depth first in the order of the schema, and within
// each object its duplicated and then its unknown members after its known
// ones.
type ValidationError struct {
	Fields []FieldError
}

func (e *ValidationError) Error() string {
	parts := make([]string, len(e.Fields))
	for i, f := range e.Fields {
		parts[i] = f.Pointer + ": " + f.Detail
	}
	return fmt.Sprintf("orders: invalid order: %s", strings.Join(parts, "; "))
}

// pointer appends the reference token name to the JSON Pointer base,
// escaping "~" and "/" as RFC 6901 requires.
func pointer(base, name string) string {
	if strings.ContainsAny(name, "~/") {
		name = pointerEscaper.Replace(name)
	}
	return base + "/" + name
}

// pointerEscaper escapes a JSON Pointer reference token. A Replacer is safe
// for concurrent use; building one per call cost more than the rest of
// DecodeOrder.
var pointerEscaper = strings.NewReplacer("~", "~0", "/", "~1")
