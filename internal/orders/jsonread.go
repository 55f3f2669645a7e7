package orders

import (
	"encoding/json"
)

// readValid reads the JSON value in body, which json.Valid has accepted,
// into the values readValue makes (*object, []any, string, json.Number,
// bool, nil), equal to what readValue makes of the same bytes. decodeChecked
// reads valid JSON with it rather than with encoding/json's Decoder, whose
// Token allocates an error for the end of every scalar, so that an invalid
// order costs little more to refuse than a valid one to accept. On
// a body json.Valid refused its result is unspecified (it never panics on
// one that json.Valid accepted).
func readValid(body []byte) any {
	r := validReader{b: body}
	return r.value()
}

type validReader struct {
	b []byte
	i int
}

func (r *validReader) space() {
	for r.i < len(r.b) {
		switch r.b[r.i] {
		case ' ', '\t', '\n', '\r':
			r.i++
		default:
			return
		}
	}
}

func (r *validReader) value() any {
	r.space()
	switch r.b[r.i] {
	case '{':
		r.i++
		o := &object{members: make(map[string]any, 8)}
		r.space()
		if r.b[r.i] == '}' {
			r.i++
			return o
		}
		for {
			r.space()
			name := r.str()
			r.space()
			r.i++ // ':'
			v := r.value()
			if _, seen := o.members[name]; seen {
				o.dups = append(o.dups, name)
			} else {
				o.names = append(o.names, name)
				o.members[name] = v
			}
			r.space()
			c := r.b[r.i]
			r.i++ // ',' or '}'
			if c == '}' {
				return o
			}
		}
	case '[':
		r.i++
		var a []any
		r.space()
		if r.b[r.i] == ']' {
			r.i++
			return a
		}
		for {
			a = append(a, r.value())
			r.space()
			c := r.b[r.i]
			r.i++ // ',' or ']'
			if c == ']' {
				return a
			}
		}
	case '"':
		return r.str()
	case 't':
		r.i += len("true")
		return true
	case 'f':
		r.i += len("false")
		return false
	case 'n':
		r.i += len("null")
		return nil
	}
	start := r.i
	for r.i < len(r.b) {
		switch r.b[r.i] {
		case '-', '+', '.', 'e', 'E', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
			r.i++
			continue
		}
		break
	}
	return json.Number(r.b[start:r.i])
}

// str reads a string at r.i (its opening quote). One without escapes is
// its bytes (valid UTF-8, checked by DecodeOrder); one with escapes is
// decoded by encoding/json, as the Decoder would.
func (r *validReader) str() string {
	start := r.i
	r.i++
	escaped := false
	for r.b[r.i] != '"' {
		if r.b[r.i] == '\\' {
			escaped = true
			r.i++ // the escaped byte: never the end of the string
		}
		r.i++
	}
	r.i++
	if !escaped {
		return string(r.b[start+1 : r.i-1])
	}
	var s string
	_ = json.Unmarshal(r.b[start:r.i], &s) // a valid JSON string
	return s
}
