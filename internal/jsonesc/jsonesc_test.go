package jsonesc

import (
	"encoding/json"
	"testing"
	"unicode/utf8"
)

// TestUnescapeAgreesWithEncodingJSON decodes each escape as a one-escape
// JSON string with encoding/json and with Unescape, on strings and bytes.
func TestUnescapeAgreesWithEncodingJSON(t *testing.T) {
	for _, esc := range []string{`\"`, `\\`, `\/`, `\b`, `\f`, `\n`, `\r`, `\t`, `\u0041`, `\u00e9`, `\u00E9`,
		`\ud83d\ude00`, `\ud83d`, `\ude00`, `\ud83d\u0041`, `\u2028`} {
		var want string
		if err := json.Unmarshal([]byte(`"`+esc+`"`), &want); err != nil {
			t.Fatalf("%s: %v", esc, err)
		}
		r, n := Unescape(esc)
		rb, nb := Unescape([]byte(esc))
		if r != rb || n != nb {
			t.Errorf("%s: string and bytes disagree: %q/%d vs %q/%d", esc, r, n, rb, nb)
		}
		got := string(r)
		if n < len(esc) { // a lone surrogate followed by another escape
			rest, m := Unescape(esc[n:])
			got += string(rest)
			n += m
		}
		if got != want || n != len(esc) {
			t.Errorf("%s: Unescape gives %q (%d bytes), encoding/json %q", esc, got, n, want)
		}
	}
	for _, bad := range []string{`\`, `\x`, `\u12`, `\u12g4`, `\U0041`} {
		if _, n := Unescape(bad); n != 0 {
			t.Errorf("%s: accepted (%d bytes)", bad, n)
		}
	}
	if r, _ := Unescape(`\ud800`); r != utf8.RuneError {
		t.Errorf("a lone high surrogate is %q, want U+FFFD", r)
	}
}
