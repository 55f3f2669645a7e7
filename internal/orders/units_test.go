package orders

import (
	"encoding/json"
	"math"
	"strconv"
	"strings"
	"testing"
)

func TestFixedPointNumbers(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		in       string
		decimals int
		want     int64
		ok       bool
	}{
		{"a kilogram weight with one decimal is whole grams", "2.5", 3, 2500, true},
		{"trailing zeros beyond the precision are harmless", "2.50000", 3, 2500, true},
		{"an exponent is honoured", "25E-1", 3, 2500, true},
		{"a positive exponent is honoured", "0.0025e3", 3, 2500, true},
		{"an integer is scaled", "30", 1, 300, true},
		{"the smallest unit is exact", "0.001", 3, 1, true},
		{"a negative number keeps its sign", "-1.5", 1, -15, true},
		{"zero is zero", "0.000", 3, 0, true},
		{"precision finer than the unit is refused", "2.5001", 3, 0, false},
		{"a tiny exponent is refused", "1e-9", 3, 0, false},
		{"an absurd exponent is refused", "1e999999999", 3, 0, false},
		{"a number too big for 18 digits is refused", "1e30", 3, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := parseFixed(tt.in, tt.decimals)
			if got != tt.want || ok != tt.ok {
				t.Fatalf("parseFixed(%q, %d) = %d, %v; want %d, %v", tt.in, tt.decimals, got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestUnitsRenderAsShortestExactDecimal(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		v    any
		want string
	}{
		{"2500 g is 2.5 kg", Grams(2500), "2.5"},
		{"1000 g is 1 kg", Grams(1000), "1"},
		{"1 g is 0.001 kg", Grams(1), "0.001"},
		{"25000 g is 25 kg", Grams(25000), "25"},
		{"305 mm is 30.5 cm", Millimetres(305), "30.5"},
		{"300 mm is 30 cm", Millimetres(300), "30"},
		{"5 mm is 0.5 cm", Millimetres(5), "0.5"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := json.Marshal(tt.v)
			if err != nil || string(b) != tt.want {
				t.Fatalf("json.Marshal = %s, %v; want %s", b, err, tt.want)
			}
		})
	}
}

// FuzzParseFixedMatchesReference checks parseFixed, which allocates
// nothing, against the plain string arithmetic it replaced, on every JSON
// number and every precision the schema uses.
func FuzzParseFixedMatchesReference(f *testing.F) {
	for _, s := range []string{"2.5", "2.50000", "25E-1", "0.0025e3", "30", "0.001", "-1.5", "0.000", "2.5001", "1e-9",
		"1e999999999", "1e30", "0e2000", "100000000000000000", "0.1e+1001", "-0", "1200.0e-1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var n json.Number
		if json.Unmarshal([]byte(s), &n) != nil || string(n) != s {
			return // parseFixed is only given JSON numbers
		}
		for decimals := range 4 {
			got, gotOK := parseFixed(s, decimals)
			want, wantOK := parseFixedReference(s, decimals)
			if got != want || gotOK != wantOK {
				t.Fatalf("parseFixed(%q, %d) = %d, %v; the reference says %d, %v", s, decimals, got, gotOK, want, wantOK)
			}
		}
	})
}

// parseFixedReference is parseFixed as first written: slower (it builds
// strings), plainly right.
func parseFixedReference(s string, decimals int) (v int64, ok bool) {
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	exp := 0
	if i := strings.IndexAny(s, "eE"); i >= 0 {
		e, err := strconv.Atoi(s[i+1:])
		if err != nil || e > 1000 || e < -1000 {
			return 0, false
		}
		exp, s = e, s[:i]
	}
	digits := s
	if i := strings.IndexByte(s, '.'); i >= 0 {
		digits = s[:i] + s[i+1:]
		exp -= len(s) - i - 1
	}
	exp += decimals
	digits = strings.TrimLeft(digits, "0")
	for exp < 0 && strings.HasSuffix(digits, "0") {
		digits = digits[:len(digits)-1]
		exp++
	}
	if digits == "" {
		return 0, true
	}
	if exp < 0 || len(digits)+exp > 18 {
		return 0, false
	}
	n, err := strconv.ParseInt(digits+strings.Repeat("0", exp), 10, 64)
	if err != nil {
		return 0, false
	}
	if neg {
		n = -n
	}
	return n, true
}

func TestFixedRendersEveryValueAsTheReferenceDoes(t *testing.T) {
	t.Parallel()
	for _, decimals := range []int{0, 1, 3} {
		for _, v := range []int64{0, 1, 5, 9, 10, 99, 100, 305, 1000, 2500, 25000, 123456789, -1, -305, -25000, math.MaxInt64, math.MinInt64} {
			if got, want := fixed(v, decimals), fixedReference(v, decimals); got != want {
				t.Errorf("fixed(%d, %d) = %q, want %q", v, decimals, got, want)
			}
		}
	}
}

// fixedReference is fixed as first written.
func fixedReference(v int64, decimals int) string {
	neg := v < 0
	u := uint64(v)
	if neg {
		u = -u
	}
	s := strconv.FormatUint(u, 10)
	if len(s) <= decimals {
		s = strings.Repeat("0", decimals-len(s)+1) + s
	}
	whole, frac := s[:len(s)-decimals], strings.TrimRight(s[len(s)-decimals:], "0")
	if frac != "" {
		whole += "." + frac
	}
	if neg {
		whole = "-" + whole
	}
	return whole
}
