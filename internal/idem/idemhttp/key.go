package idemhttp

import (
	"fmt"
	"strings"
)

// HeaderKey is the request header that carries an idempotency key.
const HeaderKey = "Idempotency-Key"

// MaxKeyLen is the longest key, in characters, that ParseKey accepts.
const MaxKeyLen = 255

// KeyError is the error ParseKey returns for a header value that is not a
// valid idempotency key. Reason says why, in words fit for a client.
type KeyError struct {
	Reason string
}

func (e *KeyError) Error() string { return "invalid " + HeaderKey + ": " + e.Reason }

func keyErr(reason string) error { return &KeyError{Reason: reason} }

// ParseKey returns the idempotency key that the value v of one
// Idempotency-Key header field names.
//
// Two forms name the same key: an RFC 8941 Structured Field String
// ("abc", in which \" and \\ stand for " and \) and a bare value (abc).
// Spaces and tabs around the value are discarded, as Structured Field
// parsing and HTTP field parsing both do; inside the quotes of the
// string form every character counts, spaces included.
//
// A key is 1 to MaxKeyLen printable ASCII characters (0x20–0x7E) and holds
// no comma: API Gateway joins repeated header fields with commas and the
// Lambda adapter splits header values at commas, so a key with a comma could
// not be told from several keys.
//
// A bare key is an RFC 8941 sf-token, ( ALPHA / "*" ) *( tchar / ":" / "/" ),
// except that it may also start with a digit, so that a bare UUID is a key:
// letters, digits and !#$%&'*+-.^_`|~:/ only, and not an RFC 8941 Integer
// (1 to 15 digits) or Decimal (1 to 12 digits, ".", 1 to 3 digits). Any
// other bare value is refused rather than read as a key, since a Structured
// Field parser would read it as something else: parameters (abc;x=1), a
// boolean (?1), a byte sequence (:YWJj:), a number (1, 007, 1.50, -1), or no
// valid field at all (a=b). A number matters most: an intermediary that
// parses and re-serialises the field would send 007 on as 7, another key,
// and so another order. A bare value that starts with a digit but is no
// number (a UUID such as 123e4567-e89b-..., 12e3, 16 digits or more) is a
// key: a Structured Field parser fails on it and cannot turn it into
// another key. A key refused bare is sent quoted ("007" is the key 007,
// "abc;x=1" the key abc;x=1). Structured Field parameters ("abc";x=1) and
// lists are not accepted in either form.
//
// On any other value ParseKey returns "" and a *KeyError whose Reason names
// the rule broken: empty, too long, control or non-ASCII character, broken
// string syntax, a list, parameters, a bare value that is not an sf-token
// or is a number.
func ParseKey(v string) (string, error) {
	v = strings.Trim(v, " \t")
	if v == "" {
		return "", keyErr("the key is empty")
	}
	// The longest valid field is a string of MaxKeyLen escaped characters.
	if len(v) > 2*MaxKeyLen+2 {
		return "", keyErr("the key is longer than 255 characters")
	}
	var key string
	if v[0] == '"' {
		k, err := parseSFString(v)
		if err != nil {
			return "", err
		}
		key = k
	} else {
		if err := checkBare(v); err != nil {
			return "", err
		}
		key = v
	}
	switch {
	case key == "":
		return "", keyErr("the key is empty")
	case len(key) > MaxKeyLen:
		return "", keyErr("the key is longer than 255 characters")
	case strings.IndexByte(key, ',') >= 0:
		return "", keyErr("the key contains a comma, which cannot be told apart from several keys")
	}
	return key, nil
}

// parseSFString parses v, which starts with a double quote, as an RFC 8941
// sf-string that makes up the whole field value.
func parseSFString(v string) (string, error) {
	var b strings.Builder
	for i := 1; i < len(v); i++ {
		c := v[i]
		switch {
		case c == '\\':
			i++
			if i == len(v) {
				return "", keyErr("the quoted key ends inside an escape sequence")
			}
			if v[i] != '"' && v[i] != '\\' {
				return "", keyErr(`the quoted key has a backslash that is not followed by " or \`)
			}
			b.WriteByte(v[i])
		case c == '"':
			if rest := v[i+1:]; rest != "" {
				return "", trailingErr(rest)
			}
			return b.String(), nil
		default:
			if err := checkChar(c); err != nil {
				return "", err
			}
			b.WriteByte(c)
		}
	}
	return "", keyErr("the quoted key has no closing double quote")
}

func trailingErr(rest string) error {
	switch rest = strings.TrimLeft(rest, " \t"); {
	case rest != "" && rest[0] == ';':
		return keyErr("parameters after the key are not accepted")
	case rest != "" && rest[0] == ',':
		return keyErr("the header holds a list; send exactly one key")
	default:
		return keyErr("characters follow the closing double quote")
	}
}

// checkBare checks v, the whole field value, as a key in bare form: the
// bare-key grammar of ParseKey.
func checkBare(v string) error {
	for i := 0; i < len(v); i++ {
		c := v[i]
		if err := checkChar(c); err != nil {
			return err
		}
		switch {
		case c == ' ':
			return keyErr("an unquoted key cannot contain a space; send the key as a quoted string")
		case c == '"':
			return keyErr("an unquoted key cannot contain a double quote")
		case c == '\\':
			return keyErr("an unquoted key cannot contain a backslash")
		case c == ',':
			return keyErr("the header holds a list or a comma; send exactly one key without commas")
		case c == ';':
			return keyErr("parameters after the key are not accepted; to use a semicolon in a key, send it as a quoted string")
		case i == 0 && !isAlpha(c) && !isDigit(c) && c != '*':
			return keyErr(fmt.Sprintf("an unquoted key must be an sf-token, which cannot start with %q; send the key as a quoted string", c))
		case !isTokenChar(c):
			return keyErr(fmt.Sprintf("an unquoted key must be an sf-token, which cannot contain %q; send the key as a quoted string", c))
		}
	}
	if isSFNumber(v) {
		return keyErr("an unquoted key cannot be a number, which a Structured Field parser would read as one and may rewrite (007 as 7); send the key as a quoted string")
	}
	return nil
}

// isSFNumber reports whether v, with no sign, is an RFC 8941 sf-integer
// (1 to 15 digits) or sf-decimal (1 to 12 digits, ".", 1 to 3 digits): a
// value that a Structured Field parser reads as a number, not as a token.
func isSFNumber(v string) bool {
	i := 0
	for i < len(v) && isDigit(v[i]) {
		i++
	}
	switch {
	case i == len(v):
		return i >= 1 && i <= 15
	case i < 1 || i > 12 || v[i] != '.':
		return false
	}
	frac := v[i+1:]
	if len(frac) < 1 || len(frac) > 3 {
		return false
	}
	for j := 0; j < len(frac); j++ {
		if !isDigit(frac[j]) {
			return false
		}
	}
	return true
}

func isAlpha(c byte) bool { return c|0x20 >= 'a' && c|0x20 <= 'z' }
func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// isTokenChar reports whether c may follow the first character of an RFC
// 8941 sf-token: a tchar (RFC 9110), ":" or "/".
func isTokenChar(c byte) bool {
	return isAlpha(c) || isDigit(c) || strings.IndexByte("!#$%&'*+-.^_`|~:/", c) >= 0
}

func checkChar(c byte) error {
	switch {
	case c >= 0x80:
		return keyErr("the key contains a non-ASCII character")
	case c < 0x20 || c == 0x7f:
		return keyErr("the key contains a control character")
	}
	return nil
}

// QuoteKey returns key as an RFC 8941 sf-string, the form in which a client
// should send it: ParseKey(QuoteKey(k)) returns k for every valid key k.
func QuoteKey(key string) string {
	var b strings.Builder
	b.Grow(len(key) + 2)
	b.WriteByte('"')
	for i := 0; i < len(key); i++ {
		if key[i] == '"' || key[i] == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(key[i])
	}
	b.WriteByte('"')
	return b.String()
}
