package orders

import (
	"strconv"
	"strings"
)

// Grams is a weight in whole grams. Its JSON form is kilograms, the shortest
// decimal that is exact (2500 is 2.5, 1000 is 1, 1 is 0.001).
type Grams int64

// MarshalJSON renders g as a JSON number of kilograms.
func (g Grams) MarshalJSON() ([]byte, error) { return appendFixed(nil, int64(g), 3), nil }

// Millimetres is a length in whole millimetres. Its JSON form is
// centimetres, the shortest decimal that is exact (305 is 30.5, 300 is 30).
type Millimetres int64

// MarshalJSON renders m as a JSON number of centimetres.
func (m Millimetres) MarshalJSON() ([]byte, error) { return appendFixed(nil, int64(m), 1), nil }

// fixed renders v/10^decimals as the shortest exact decimal.
func fixed(v int64, decimals int) string { return string(appendFixed(nil, v, decimals)) }

// appendFixed appends fixed(v, decimals) to b.
func appendFixed(b []byte, v int64, decimals int) []byte {
	u := uint64(v)
	if v < 0 {
		b = append(b, '-')
		u = -u
	}
	var buf [20]byte // the digits of any uint64
	s := strconv.AppendUint(buf[:0], u, 10)
	if len(s) <= decimals {
		b = append(b, '0')
	} else {
		b = append(b, s[:len(s)-decimals]...)
	}
	frac := s[max(len(s)-decimals, 0):]
	for len(frac) > 0 && frac[len(frac)-1] == '0' {
		frac = frac[:len(frac)-1]
	}
	if len(frac) == 0 {
		return b
	}
	b = append(b, '.')
	for range decimals - len(s) { // the zeros that lead the fraction
		b = append(b, '0')
	}
	return append(b, frac...)
}

// parseFixed converts the JSON number s to an integer count of
// 10^-decimals units. ok is false when s has more precision than that, or
// when the result would not fit comfortably in an int64 (more than 18
// digits), or when s's exponent is beyond ±1000.
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
	whole, frac := s, ""
	if i := strings.IndexByte(s, '.'); i >= 0 {
		whole, frac = s[:i], s[i+1:]
	}
	// The digits are whole followed by frac, worth 10^exp units each.
	exp += decimals - len(frac)
	digit := func(k int) byte {
		if k < len(whole) {
			return whole[k]
		}
		return frac[k-len(whole)]
	}
	lo, hi := 0, len(whole)+len(frac)
	for lo < hi && digit(lo) == '0' {
		lo++
	}
	for exp < 0 && lo < hi && digit(hi-1) == '0' {
		hi--
		exp++
	}
	if lo == hi {
		return 0, true
	}
	if exp < 0 || hi-lo+exp > 18 {
		return 0, false
	}
	var n int64
	for k := lo; k < hi; k++ {
		d := digit(k)
		if d < '0' || d > '9' {
			return 0, false
		}
		n = n*10 + int64(d-'0')
	}
	for range exp {
		n *= 10
	}
	if neg {
		n = -n
	}
	return n, true
}
