package orders

import (
	"encoding/json"
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
