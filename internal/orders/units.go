package orders

import (
	"strconv"
	"strings"
)

// Grams is a weight in whole grams. Its JSON form is kilograms, the shortest
// decimal that is exact (2500 is 2.5, 1000 is 1, 1 is 0.001).
type Grams int64

// MarshalJSON renders g as a JSON number of kilograms.
func (g Grams) MarshalJSON() ([]byte, error) { return []byte(fixed(int64(g), 3)), nil }

// Millimetres is a length in whole millimetres. Its JSON form is
// centimetres, the shortest decimal that is exact (305 is 30.5, 300 is 30).
type Millimetres int64

// MarshalJSON renders m as a JSON number of centimetres.
func (m Millimetres) MarshalJSON() ([]byte, error) { return []byte(fixed(int64(m), 1)), nil }

// fixed renders v/10^decimals as the shortest exact decimal.
func fixed(v int64, decimals int) string {
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

// parseFixed converts the JSON number s to an integer count of
// 10^-decimals units. ok is false when s has more precision than that, or
// when the result would not fit comfortably in an int64 (more than 18 digits).
func parseFixed(s string, decimals int) (v int64, ok bool) {
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
