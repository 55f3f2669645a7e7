package orders

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"unicode/utf8"
)

// object is a JSON object as read by readValue: members by name, names in
// document order, and the names that occurred more than once.
type object struct {
	names   []string
	members map[string]any
	dups    []string
}

// DecodeOrder parses and validates the body of POST /orders.
//
// It returns an error wrapping ErrMalformedBody when body is not valid UTF-8
// or not exactly one JSON object (nothing but whitespace may follow it), and
// a *ValidationError listing every invalid, missing, duplicated or unknown
// member when the object is not a valid order. On success the Request holds
// trimmed strings and exact gram and millimetre values; encoding it with
// encoding/json and decoding that again yields the same Request.
func DecodeOrder(body []byte) (Request, error) {
	if r, ok := decodeFast(body); ok {
		return r, nil
	}
	return decodeChecked(body)
}

// decodeChecked is DecodeOrder by the checker: it reads body into a tree
// of JSON values and walks the schema over it, collecting every problem. It
// makes of a valid body the Request decodeFast makes, and is the slower
// path DecodeOrder takes only for a body decodeFast refuses, to say why.
func decodeChecked(body []byte) (Request, error) {
	if !utf8.Valid(body) {
		return Request{}, fmt.Errorf("%w: not valid UTF-8", ErrMalformedBody)
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return Request{}, fmt.Errorf("%w: empty body", ErrMalformedBody)
	}
	var v any
	if json.Valid(body) {
		v = readValid(body)
	} else {
		// Only to say what is wrong: the Decoder's errors name it.
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.UseNumber()
		var err error
		v, err = readValue(dec)
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		if err != nil {
			return Request{}, fmt.Errorf("%w: not valid JSON: %v", ErrMalformedBody, err)
		}
		if _, err := dec.Token(); !errors.Is(err, io.EOF) {
			return Request{}, fmt.Errorf("%w: data after the JSON object", ErrMalformedBody)
		}
		return Request{}, fmt.Errorf("%w: not valid JSON", ErrMalformedBody) // json.Valid refused it
	}
	obj, ok := v.(*object)
	if !ok {
		return Request{}, fmt.Errorf("%w: the body must be a JSON object", ErrMalformedBody)
	}
	var c checker
	r := c.request(obj)
	if len(c.errs) > 0 {
		return Request{}, &ValidationError{Fields: c.errs}
	}
	return r, nil
}

// readValue reads one JSON value from dec: *object, []any, string,
// json.Number, bool or nil. decodeChecked uses it only on bodies json.Valid
// refused, for its error; readValid reads the others.
func readValue(dec *json.Decoder) (any, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	d, ok := tok.(json.Delim)
	if !ok {
		return tok, nil
	}
	switch d {
	case '{':
		o := &object{members: map[string]any{}}
		for dec.More() {
			k, err := dec.Token()
			if err != nil {
				return nil, err
			}
			name, _ := k.(string) // the decoder only yields string keys
			v, err := readValue(dec)
			if err != nil {
				return nil, err
			}
			if _, seen := o.members[name]; seen {
				o.dups = append(o.dups, name)
				continue
			}
			o.names = append(o.names, name)
			o.members[name] = v
		}
		_, err := dec.Token() // '}'
		return o, err
	case '[':
		var a []any
		for dec.More() {
			v, err := readValue(dec)
			if err != nil {
				return nil, err
			}
			a = append(a, v)
		}
		_, err := dec.Token() // ']'
		return a, err
	}
	return nil, fmt.Errorf("unexpected %v", d)
}
