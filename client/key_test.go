package client

import (
	"regexp"
	"strings"
	"testing"

	"github.com/parcelhq/orderservice/internal/idem/idemhttp"
)

var uuidV4 = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func TestNewKeyIsAUUIDv4(t *testing.T) {
	seen := map[string]bool{}
	for i := 0; i < 1000; i++ {
		k := NewKey()
		if !uuidV4.MatchString(k) {
			t.Fatalf("NewKey() = %q, not a version 4 UUID", k)
		}
		if seen[k] {
			t.Fatalf("NewKey() repeated %q", k)
		}
		seen[k] = true
		if got, err := idemhttp.ParseKey(keyHeader(k)); err != nil || got != k {
			t.Fatalf("the API reads %q as %q, %v", k, got, err)
		}
	}
}

func TestCheckKeyAgreesWithTheAPI(t *testing.T) {
	for _, tc := range []struct {
		name, key string
		valid     bool
	}{
		{"a UUID is valid", "3f0c4b1e-8d2a-4c57-9e1b-2f6a7d9c0b13", true},
		{"one character is valid", "k", true},
		{"255 characters are valid", strings.Repeat("k", 255), true},
		{"a key with spaces inside is valid (sent quoted)", "order 42 of batch 7", true},
		{"a key with leading and trailing spaces is valid (sent quoted)", "  padded  ", true},
		{`a key with " and \ is valid (sent escaped)`, `a"b\c`, true},
		{"every printable ASCII character but the comma is valid", printableASCIIWithoutComma(), true},
		{"an empty key is refused", "", false},
		{"256 characters are refused", strings.Repeat("k", 256), false},
		{"a comma is refused", "a,b", false},
		{"a tab is refused", "a\tb", false},
		{"a newline is refused", "a\nb", false},
		{"DEL is refused", "a\x7fb", false},
		{"non-ASCII is refused", "café", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckKey(tc.key)
			if (err == nil) != tc.valid {
				t.Fatalf("CheckKey(%q) = %v, want valid=%v", tc.key, err, tc.valid)
			}
			if !tc.valid {
				return
			}
			got, perr := idemhttp.ParseKey(keyHeader(tc.key))
			if perr != nil || got != tc.key {
				t.Errorf("header %q: the API reads key %q, %v; want %q", keyHeader(tc.key), got, perr, tc.key)
			}
		})
	}
}

func printableASCIIWithoutComma() string {
	var b strings.Builder
	for c := byte(0x20); c <= 0x7e; c++ {
		if c != ',' {
			b.WriteByte(c)
		}
	}
	return b.String()
}
