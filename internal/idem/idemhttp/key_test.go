package idemhttp

import (
	"errors"
	"regexp"
	"strings"
	"testing"
)

func TestParseKey(t *testing.T) {
	t.Parallel()
	valid := []struct {
		name, value, want string
	}{
		{"a bare key is the key itself", `abc-123`, "abc-123"},
		{"a quoted key is the key inside the quotes", `"abc-123"`, "abc-123"},
		{"a quoted UUID is the UUID", `"0b4c3f3e-9f7a-4a61-9d2c-6d1f1b7f8e21"`, "0b4c3f3e-9f7a-4a61-9d2c-6d1f1b7f8e21"},
		{"a bare UUID is the UUID, though it starts with a digit", `0b4c3f3e-9f7a-4a61-9d2c-6d1f1b7f8e21`, "0b4c3f3e-9f7a-4a61-9d2c-6d1f1b7f8e21"},
		{"a bare key may start with an asterisk, as an sf-token may", `*abc`, "*abc"},
		{"a bare UUID of digits and dashes only is the UUID", `12345678-1234-4123-8123-123456789012`, "12345678-1234-4123-8123-123456789012"},
		{"a bare UUID that starts like an exponent is the UUID", `1e500000-0000-4000-8000-000000000000`, "1e500000-0000-4000-8000-000000000000"},
		{"a bare UUID such as 123e4567-e89b-... is the UUID", `123e4567-e89b-12d3-a456-426614174000`, "123e4567-e89b-12d3-a456-426614174000"},
		{"a bare key of digits with a letter is the key, not a number", `12e3`, "12e3"},
		{"a bare run of 16 digits is the key: too long for an sf-integer", `1234567890123456`, "1234567890123456"},
		{"a bare decimal with 4 fractional digits is the key: not an sf-decimal", `1.2345`, "1.2345"},
		{"a bare value with two dots is the key: not an sf-decimal", `1.5.3`, "1.5.3"},
		{"a quoted number is the key", `"007"`, "007"},
		{"an escaped double quote stands for a double quote", `"a\"b"`, `a"b`},
		{"an escaped backslash stands for a backslash", `"a\\b"`, `a\b`},
		{"spaces inside the quotes belong to the key", `" a b "`, " a b "},
		{"spaces and tabs around the value are discarded", " \t\"abc\" \t", "abc"},
		{"spaces around a bare key are discarded", "  abc  ", "abc"},
		{"a bare key may hold every character of an sf-token", "aZ09!#$%&'*+-.^_`|~:/", "aZ09!#$%&'*+-.^_`|~:/"},
		{"a quoted key may hold what a bare key may not", `"abc;x=1"`, "abc;x=1"},
		{"a key of exactly 255 characters is accepted", strings.Repeat("k", 255), strings.Repeat("k", 255)},
		{"a quoted key of 255 escaped characters is accepted", `"` + strings.Repeat(`\"`, 255) + `"`, strings.Repeat(`"`, 255)},
	}
	for _, tc := range valid {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseKey(tc.value)
			if err != nil || got != tc.want {
				t.Fatalf("ParseKey(%q) = %q, %v; want %q, nil", tc.value, got, err, tc.want)
			}
		})
	}

	invalid := []struct {
		name, value, reason string
	}{
		{"an empty value is rejected", "", "empty"},
		{"a value of only spaces is rejected", "   ", "empty"},
		{"an empty quoted string is rejected", `""`, "empty"},
		{"a 256-character key is rejected", strings.Repeat("k", 256), "longer than 255"},
		{"a 256-character quoted key is rejected", `"` + strings.Repeat("k", 256) + `"`, "longer than 255"},
		{"a huge value is rejected before it is parsed", strings.Repeat("k", 10000), "longer than 255"},
		{"a control character is rejected", "ab\x01c", "control character"},
		{"DEL is rejected", "ab\x7fc", "control character"},
		{"a tab inside a quoted key is rejected", "\"a\tb\"", "control character"},
		{"a non-ASCII character is rejected", "clé", "non-ASCII"},
		{"a non-ASCII character inside quotes is rejected", `"clé"`, "non-ASCII"},
		{"an unterminated quoted key is rejected", `"abc`, "no closing double quote"},
		{"a quoted key ending in a backslash is rejected", `"abc\`, "inside an escape"},
		{"an escape other than \\\" and \\\\ is rejected", `"a\nb"`, "backslash that is not followed"},
		{"characters after the closing quote are rejected", `"abc"def`, "follow the closing"},
		{"structured field parameters are rejected", `"abc";v=1`, "parameters"},
		{"a list of quoted keys is rejected", `"abc", "def"`, "list"},
		{"a list of bare keys is rejected", `abc,def`, "list"},
		{"a comma inside a quoted key is rejected", `"a,b"`, "comma"},
		{"a space inside a bare key is rejected", `abc def`, "quoted string"},
		{"a double quote inside a bare key is rejected", `ab"c`, "double quote"},
		{"a backslash inside a bare key is rejected", `ab\c`, "backslash"},
		{"bare structured field parameters are rejected, as quoted ones are", `abc;x=1`, "parameters"},
		{"a bare structured field boolean is rejected", `?1`, "sf-token"},
		{"a bare structured field byte sequence is rejected", `:YWJj:`, "sf-token"},
		{"a bare key starting with a hyphen (an sf-integer's sign) is rejected", `-abc`, "sf-token"},
		{"a bare negative number is rejected", `-1`, "sf-token"},
		{"a bare structured field integer is rejected", `1`, "number"},
		{"a bare integer with leading zeros is rejected: a parser would make it 7", `007`, "number"},
		{"a bare 15-digit integer is rejected", `123456789012345`, "number"},
		{"a bare structured field decimal is rejected", `1.5`, "number"},
		{"a bare decimal with trailing zeros is rejected: a parser would make it 1.5", `1.50`, "number"},
		{"a bare decimal of 12 and 3 digits is rejected", `123456789012.123`, "number"},
		{"a bare key with a character outside the token grammar is rejected", `a{b}`, "sf-token"},
		{"a bare key with an equals sign is rejected", `a=b`, "sf-token"},
		{"a bare key with a question mark is rejected", `ab?`, "sf-token"},
		{"a bare key with an at sign is rejected", `@abc`, "sf-token"},
	}
	for _, tc := range invalid {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseKey(tc.value)
			var ke *KeyError
			if !errors.As(err, &ke) {
				t.Fatalf("ParseKey(%q) = %q, %v; want a *KeyError", tc.value, got, err)
			}
			if got != "" {
				t.Errorf("ParseKey(%q) returned key %q with its error", tc.value, got)
			}
			if !strings.Contains(ke.Reason, tc.reason) {
				t.Errorf("reason %q does not mention %q", ke.Reason, tc.reason)
			}
		})
	}
}

func TestQuoteKeyRoundTrips(t *testing.T) {
	t.Parallel()
	for _, key := range []string{"abc", `a"b`, `a\b`, " spaced ", `\"\\`, strings.Repeat(`"`, 255)} {
		t.Run("the quoted form of "+key+" parses back to it", func(t *testing.T) {
			t.Parallel()
			if got, err := ParseKey(QuoteKey(key)); err != nil || got != key {
				t.Fatalf("ParseKey(QuoteKey(%q)) = %q, %v", key, got, err)
			}
		})
	}
}

// bareToken and sfNumber make up the bare-key grammar, written
// independently of ParseKey: an RFC 8941 sf-token, ( ALPHA / "*" ) *( tchar
// / ":" / "/" ), except that it may also start with a digit, and that it is
// not an sf-integer ( 1*15DIGIT ) or sf-decimal ( 1*12DIGIT "." 1*3DIGIT )
// (without sign: a bare key never starts with "-").
var (
	bareToken = regexp.MustCompile("^[A-Za-z0-9*][A-Za-z0-9!#$%&'*+\\-.^_`|~:/]*$")
	sfNumber  = regexp.MustCompile(`^(?:[0-9]{1,15}|[0-9]{1,12}\.[0-9]{1,3})$`)
)

// inBareGrammar reports whether s is a key in bare form.
func inBareGrammar(s string) bool { return bareToken.MatchString(s) && !sfNumber.MatchString(s) }

// FuzzParseKey checks that ParseKey never panics, that what it accepts
// obeys the key rules, that a bare value is accepted exactly when it is in
// the bare-key grammar (and is then the key itself), and that a valid key
// names the same key quoted and, where the grammar allows, bare.
func FuzzParseKey(f *testing.F) {
	for _, s := range []string{"abc", `"abc"`, `"a\"b\\c"`, ` "x" `, `"a,b"`, `abc;v=1`, `"abc";v=1`, `?1`, `:YWJj:`, `-1`, `*k`,
		`1`, `007`, `1.5`, `1.50`, `12e3`, `1234567890123456`, `123e4567-e89b-12d3-a456-426614174000`,
		"0b4c3f3e-9f7a-4a61-9d2c-6d1f1b7f8e21", "", `"`, `\`, "k\x00", "é"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		key, err := ParseKey(v)
		trimmed := strings.Trim(v, " \t")
		bare := !strings.HasPrefix(trimmed, `"`)
		if err != nil {
			var ke *KeyError
			if !errors.As(err, &ke) || ke.Reason == "" || key != "" {
				t.Fatalf("ParseKey(%q) = %q, %v: want \"\" and a *KeyError with a reason", v, key, err)
			}
			if bare && inBareGrammar(trimmed) && len(trimmed) <= MaxKeyLen {
				t.Fatalf("ParseKey(%q) refused a bare key in the grammar: %v", v, err)
			}
			return
		}
		if key == "" || len(key) > MaxKeyLen {
			t.Fatalf("ParseKey(%q) accepted a key of length %d", v, len(key))
		}
		for i := 0; i < len(key); i++ {
			if key[i] < 0x20 || key[i] > 0x7e || key[i] == ',' {
				t.Fatalf("ParseKey(%q) accepted byte %#x", v, key[i])
			}
		}
		if bare && (key != trimmed || !inBareGrammar(key)) {
			t.Fatalf("ParseKey(%q) accepted the bare key %q, which is not in the bare-key grammar", v, key)
		}
		if got, err := ParseKey(QuoteKey(key)); err != nil || got != key {
			t.Fatalf("quoted form of %q parses to %q, %v", key, got, err)
		}
		if key != strings.Trim(key, " \t") || key[0] == '"' {
			return // no bare form: the spaces around it would be discarded, or it reads as quoted
		}
		got, err := ParseKey(key)
		if inBareGrammar(key) != (err == nil) || (err == nil && got != key) {
			t.Fatalf("bare form of %q parses to %q, %v; in the bare-key grammar: %v", key, got, err, inBareGrammar(key))
		}
	})
}
