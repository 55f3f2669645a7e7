// Package jsonesc decodes the escape sequences of JSON strings exactly as
// encoding/json does, for the one-pass readers that validate and copy a
// JSON body without encoding/json's per-token allocations (idemhttp's
// canonical form, orders' decoder).
package jsonesc

import (
	"unicode/utf16"
	"unicode/utf8"
)

// Unescape decodes the escape sequence at the start of s (which begins with
// a backslash) as encoding/json does: a UTF-16 surrogate pair of \u escapes
// is one rune, and a surrogate that is not half of a pair is U+FFFD. It
// returns the rune and the number of bytes the sequence took, or 0 bytes for
// an invalid escape.
func Unescape[T ~string | ~[]byte](s T) (rune, int) {
	if len(s) < 2 {
		return 0, 0
	}
	switch s[1] {
	case '"', '\\', '/':
		return rune(s[1]), 2
	case 'b':
		return '\b', 2
	case 'f':
		return '\f', 2
	case 'n':
		return '\n', 2
	case 'r':
		return '\r', 2
	case 't':
		return '\t', 2
	case 'u':
		r := hex4(s)
		if r < 0 {
			return 0, 0
		}
		if utf16.IsSurrogate(r) {
			if r2 := hex4(s[6:]); r2 >= 0 {
				if d := utf16.DecodeRune(r, r2); d != utf8.RuneError {
					return d, 12
				}
			}
			return utf8.RuneError, 6
		}
		return r, 6
	}
	return 0, 0
}

// hex4 returns the value of a \uXXXX escape at the start of s, or -1.
func hex4[T ~string | ~[]byte](s T) rune {
	if len(s) < 6 || s[0] != '\\' || s[1] != 'u' {
		return -1
	}
	var r rune
	for i := 2; i < 6; i++ {
		h := s[i]
		switch {
		case '0' <= h && h <= '9':
			h -= '0'
		case 'a' <= h && h <= 'f':
			h -= 'a' - 10
		case 'A' <= h && h <= 'F':
			h -= 'A' - 10
		default:
			return -1
		}
		r = r<<4 | rune(h)
	}
	return r
}
