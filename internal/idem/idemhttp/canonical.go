package idemhttp

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"unicode/utf8"

	"github.com/parcelhq/orderservice/internal/jsonesc"
)

// canonicalizer validates a JSON text and writes its canonical form (see
// CanonicalJSON) in one pass over the bytes, with no allocation per token:
// strings are decoded and re-encoded as they are read, members of an object
// are written as they come and, when their names are out of order, moved
// into order once the object closes. Its buffers are reused (canonicalizers).
type canonicalizer struct {
	in  []byte
	pos int
	out []byte
	// members holds the members of every object still open, innermost last.
	members []member
	tmp     []byte // scratch for reordering an object's members
	names   []byte // unescaped names that held escapes, for members[i].name
	// reason is set when the text is refused for a reason other than its
	// syntax (duplicate name, nesting); syntax errors leave it "".
	reason string
}

// member is one member of an open object: its unescaped name and where its
// canonical `"name":value` lies in out.
type member struct {
	name       []byte
	start, end int
}

// errSyntax stops a canonicalizer at a syntax error; canonicalize then asks
// encoding/json for the words (errors are rare, their reason precise).
var errSyntax = &BodyError{Reason: "syntax"}

// maxPooledBytes bounds the buffers a canonicalizer keeps between uses.
const maxPooledBytes = 64 << 10

var canonicalizers = sync.Pool{New: func() any { return &canonicalizer{} }}

func (c *canonicalizer) release() {
	if cap(c.out) > maxPooledBytes || cap(c.tmp) > maxPooledBytes || cap(c.names) > maxPooledBytes || cap(c.members) > maxPooledBytes/16 {
		return
	}
	c.in, c.reason = nil, ""
	clear(c.members[:cap(c.members)]) // drop references into the caller's body
	canonicalizers.Put(c)
}

// canonicalize appends the canonical form of body to c.out. On failure it
// returns a *BodyError whose reason is the one the checks below would give
// in this order: UTF-8, then syntax (in encoding/json's words), then
// duplicate names and nesting.
func (c *canonicalizer) canonicalize(body []byte) error {
	c.in, c.pos, c.reason = body, 0, ""
	c.members, c.names = c.members[:0], c.names[:0]
	err := c.value(0)
	if err == nil {
		c.space()
		if c.pos != len(c.in) {
			err = errSyntax
		}
	}
	if err == nil {
		return nil
	}
	switch {
	case !utf8.Valid(body):
		return &BodyError{Reason: "the body is not valid UTF-8"}
	case !json.Valid(body):
		return &BodyError{Reason: syntaxReason(body)}
	case c.reason != "":
		return &BodyError{Reason: c.reason}
	}
	// Unreachable unless this parser and encoding/json disagree on what is
	// JSON; refuse rather than guess.
	return &BodyError{Reason: "the body is not a JSON value"}
}

func (c *canonicalizer) space() {
	for c.pos < len(c.in) {
		switch c.in[c.pos] {
		case ' ', '\t', '\n', '\r':
			c.pos++
		default:
			return
		}
	}
}

// value reads one JSON value at depth (0 for the top level).
func (c *canonicalizer) value(depth int) error {
	c.space()
	if c.pos >= len(c.in) {
		return errSyntax
	}
	switch ch := c.in[c.pos]; {
	case ch == '{' || ch == '[':
		if depth+1 > MaxJSONDepth {
			c.reason = fmt.Sprintf("the JSON value is nested more than %d levels deep", MaxJSONDepth)
			return &BodyError{Reason: c.reason}
		}
		if ch == '{' {
			return c.object(depth + 1)
		}
		return c.array(depth + 1)
	case ch == '"':
		_, err := c.str(false)
		return err
	case ch == '-' || ('0' <= ch && ch <= '9'):
		return c.number()
	case ch == 't':
		return c.literal("true")
	case ch == 'f':
		return c.literal("false")
	case ch == 'n':
		return c.literal("null")
	}
	return errSyntax
}

func (c *canonicalizer) literal(lit string) error {
	if end := c.pos + len(lit); end > len(c.in) || string(c.in[c.pos:end]) != lit {
		return errSyntax
	}
	c.out = append(c.out, lit...)
	c.pos += len(lit)
	return nil
}

// number copies a number as written, after checking its grammar
// (RFC 8259: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?).
func (c *canonicalizer) number() error {
	in, i := c.in, c.pos
	if i < len(in) && in[i] == '-' {
		i++
	}
	switch {
	case i < len(in) && in[i] == '0':
		i++
	case i < len(in) && '1' <= in[i] && in[i] <= '9':
		i = digits(in, i)
	default:
		return errSyntax
	}
	if i < len(in) && in[i] == '.' {
		if i++; i >= len(in) || !isDigit(in[i]) {
			return errSyntax
		}
		i = digits(in, i)
	}
	if i < len(in) && (in[i] == 'e' || in[i] == 'E') {
		i++
		if i < len(in) && (in[i] == '+' || in[i] == '-') {
			i++
		}
		if i >= len(in) || !isDigit(in[i]) {
			return errSyntax
		}
		i = digits(in, i)
	}
	c.out = append(c.out, in[c.pos:i]...)
	c.pos = i
	return nil
}

func digits(in []byte, i int) int {
	for i < len(in) && isDigit(in[i]) {
		i++
	}
	return i
}

func (c *canonicalizer) array(depth int) error {
	c.pos++ // '['
	c.out = append(c.out, '[')
	c.space()
	if c.pos < len(c.in) && c.in[c.pos] == ']' {
		c.pos++
		c.out = append(c.out, ']')
		return nil
	}
	for {
		if err := c.value(depth); err != nil {
			return err
		}
		c.space()
		if c.pos >= len(c.in) {
			return errSyntax
		}
		switch c.in[c.pos] {
		case ',':
			c.pos++
			c.out = append(c.out, ',')
		case ']':
			c.pos++
			c.out = append(c.out, ']')
			return nil
		default:
			return errSyntax
		}
	}
}

func (c *canonicalizer) object(depth int) error {
	c.pos++ // '{'
	open := len(c.out)
	c.out = append(c.out, '{')
	first := len(c.members)
	c.space()
	if c.pos < len(c.in) && c.in[c.pos] == '}' {
		c.pos++
		c.out = append(c.out, '}')
		return nil
	}
	for {
		c.space()
		if c.pos >= len(c.in) || c.in[c.pos] != '"' {
			return errSyntax
		}
		m := member{start: len(c.out)}
		name, err := c.str(true)
		if err != nil {
			return err
		}
		m.name = name
		c.space()
		if c.pos >= len(c.in) || c.in[c.pos] != ':' {
			return errSyntax
		}
		c.pos++
		c.out = append(c.out, ':')
		if err := c.value(depth); err != nil {
			return err
		}
		m.end = len(c.out)
		c.members = append(c.members, m)
		c.space()
		if c.pos >= len(c.in) {
			return errSyntax
		}
		if c.in[c.pos] == '}' {
			c.pos++
			break
		}
		if c.in[c.pos] != ',' {
			return errSyntax
		}
		c.pos++
		c.out = append(c.out, ',')
	}
	err := c.order(open, c.members[first:])
	c.members = c.members[:first]
	c.out = append(c.out, '}')
	return err
}

// order rewrites the object whose '{' is at out[open], members ms written
// after it separated by commas, with the members sorted by name; a name
// that occurs twice is refused.
func (c *canonicalizer) order(open int, ms []member) error {
	byName := func(a, b member) int { return bytes.Compare(a.name, b.name) }
	sorted := slices.IsSortedFunc(ms, byName)
	if !sorted {
		slices.SortFunc(ms, byName)
	}
	for i := 1; i < len(ms); i++ {
		if bytes.Equal(ms[i-1].name, ms[i].name) {
			c.reason = fmt.Sprintf("the member name %q appears twice in one object", ms[i].name)
			return &BodyError{Reason: c.reason}
		}
	}
	if sorted {
		return nil
	}
	c.tmp = append(c.tmp[:0], c.out[open+1:]...)
	c.out = c.out[:open+1]
	for i, m := range ms {
		if i > 0 {
			c.out = append(c.out, ',')
		}
		c.out = append(c.out, c.tmp[m.start-open-1:m.end-open-1]...)
	}
	return nil
}

// str reads a string at c.pos (a '"') and writes it re-encoded as
// encoding/json's Marshal encodes the string it decodes to. With name set
// it also returns the decoded string: a slice of the input when it holds no
// escape, else of c.names.
func (c *canonicalizer) str(name bool) ([]byte, error) {
	in := c.in
	c.pos++ // opening quote
	start := c.pos
	c.out = append(c.out, '"')
	escaped := false
	nameAt := len(c.names)
	i := c.pos
	for {
		// The run of bytes that stand for themselves both in the input and
		// in Marshal's output.
		j := i
		for j < len(in) && in[j] < utf8.RuneSelf && htmlSafe[in[j]] {
			j++
		}
		c.out = append(c.out, in[i:j]...)
		if escaped && name {
			c.names = append(c.names, in[i:j]...)
		}
		i = j
		if i >= len(in) {
			return nil, errSyntax
		}
		switch b := in[i]; {
		case b == '"':
			c.pos = i + 1
			c.out = append(c.out, '"')
			if !name {
				return nil, nil
			}
			if !escaped {
				return in[start:i], nil
			}
			return c.names[nameAt:len(c.names):len(c.names)], nil
		case b < ' ':
			return nil, errSyntax // a raw control character
		case b == '\\':
			r, n := jsonesc.Unescape(in[i:])
			if n == 0 {
				return nil, errSyntax
			}
			if name && !escaped {
				escaped = true
				c.names = append(c.names, in[start:i]...)
			}
			if name {
				c.names = utf8.AppendRune(c.names, r)
			}
			c.out = appendRune(c.out, r)
			i += n
		case b < utf8.RuneSelf: // '<', '>', '&'
			if escaped && name {
				c.names = append(c.names, b)
			}
			c.out = appendRune(c.out, rune(b))
			i++
		default:
			r, n := utf8.DecodeRune(in[i:])
			if r == utf8.RuneError && n == 1 {
				return nil, errSyntax // invalid UTF-8; canonicalize names it
			}
			if escaped && name {
				c.names = append(c.names, in[i:i+n]...)
			}
			if r == '\u2028' || r == '\u2029' {
				c.out = appendRune(c.out, r)
			} else {
				c.out = append(c.out, in[i:i+n]...)
			}
			i += n
		}
	}
}

// appendRune appends r inside a JSON string as encoding/json's Marshal
// writes it: the HTML-unsafe ASCII characters and control characters
// escaped (\b, \f, \n, \r, \t by name, others as \u00XX), U+2028 and U+2029
// escaped, anything else as UTF-8.
func appendRune(b []byte, r rune) []byte {
	const hexDigits = "0123456789abcdef"
	switch {
	case r < utf8.RuneSelf && htmlSafe[r]:
		return append(b, byte(r))
	case r == '\\' || r == '"':
		return append(b, '\\', byte(r))
	case r == '\b':
		return append(b, '\\', 'b')
	case r == '\f':
		return append(b, '\\', 'f')
	case r == '\n':
		return append(b, '\\', 'n')
	case r == '\r':
		return append(b, '\\', 'r')
	case r == '\t':
		return append(b, '\\', 't')
	case r < utf8.RuneSelf:
		return append(b, '\\', 'u', '0', '0', hexDigits[r>>4], hexDigits[r&0xF])
	case r == '\u2028' || r == '\u2029':
		return append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
	}
	return utf8.AppendRune(b, r)
}

// htmlSafe reports the ASCII characters that encoding/json's Marshal writes
// as they are: all but the control characters, '"', '\\', '<', '>' and '&'.
var htmlSafe = func() (t [utf8.RuneSelf]bool) {
	for b := ' '; b < utf8.RuneSelf; b++ {
		t[b] = true
	}
	for _, b := range `"\<>&` {
		t[b] = false
	}
	return t
}()
