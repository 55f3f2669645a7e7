package orders

import "strconv"

// Currency is the currency of every price.
const Currency = "AUD"

// Pricing, all amounts in cents, GST included.
//
// Chargeable weight is the greater of the actual weight and the cubic weight,
// where cubic weight uses the industry's 250 kg per cubic metre:
//
//	cubic grams = ceil(length_mm × width_mm × height_mm / 4000)
//	(equivalently cubic kg = length_cm × width_cm × height_cm / 4000)
//
// It is billed in started steps of 500 g: steps = ceil(chargeable / 500 g).
//
// Each address lies in a zone: its state, and whether it is in that
// state's capital-city metro area (metroRanges) or regional. The pair of
// zones gives the lane, and the lane a base charge and a charge per step:
//
//	lane                               base    per 500 g
//	same state, both metro             7.95    0.80
//	same state, otherwise              8.95    1.10
//	interstate, both metro            10.95    1.50
//	interstate, either end regional   13.95    2.00
//
//	price = base + steps × per-step
//
// Examples: 2.5 kg, 30×20×10 cm (cubic 1.5 kg) Sydney 2000 → Brisbane 4000
// is interstate metro, 5 steps: 10.95 + 5 × 1.50 = 18.45. The same parcel
// Sydney 2000 → Parramatta 2150 costs 7.95 + 5 × 0.80 = 11.95. A 1 kg box of
// 50×40×30 cm (cubic 15 kg, 30 steps) from Melbourne 3000 to Cairns 4870
// costs 13.95 + 30 × 2.00 = 73.95.
const (
	cubicDivisor = 4000 // mm³ per gram of cubic weight
	stepGrams    = 500
)

// Lane is the kind of route a parcel travels.
type Lane int

// The lanes, cheapest first.
const (
	LaneMetro Lane = iota
	LaneIntrastate
	LaneInterstateMetro
	LaneInterstateRegional
)

var tariff = map[Lane]struct{ base, perStep int64 }{
	LaneMetro:              {795, 80},
	LaneIntrastate:         {895, 110},
	LaneInterstateMetro:    {1095, 150},
	LaneInterstateRegional: {1395, 200},
}

// metroRanges are the postcodes of each capital city's metro area; all of
// the ACT is Canberra metro.
var metroRanges = map[string][]postcodeRange{
	"ACT": {{200, 299}, {2600, 2618}, {2620, 2620}, {2900, 2920}},
	"NSW": {{1000, 1999}, {2000, 2234}},
	"NT":  {{800, 832}},
	"QLD": {{4000, 4207}, {9000, 9499}},
	"SA":  {{5000, 5199}},
	"TAS": {{7000, 7099}},
	"VIC": {{3000, 3207}, {8000, 8499}},
	"WA":  {{6000, 6199}},
}

// Metro reports whether a is in its state's capital-city metro area.
func Metro(a Address) bool {
	n, ok := postcodeNumber(a.Postcode)
	if !ok {
		return false
	}
	for _, r := range metroRanges[a.State] {
		if r.lo <= n && n <= r.hi {
			return true
		}
	}
	return false
}

// LaneOf returns the lane from one address to another.
func LaneOf(from, to Address) Lane {
	metro := Metro(from) && Metro(to)
	switch {
	case from.State == to.State && metro:
		return LaneMetro
	case from.State == to.State:
		return LaneIntrastate
	case metro:
		return LaneInterstateMetro
	default:
		return LaneInterstateRegional
	}
}

// ChargeableWeight returns the greater of p's weight and its cubic weight.
func ChargeableWeight(p Parcel) Grams {
	vol := int64(p.Length) * int64(p.Width) * int64(p.Height)
	cubic := Grams((vol + cubicDivisor - 1) / cubicDivisor)
	return max(p.Weight, cubic)
}

// Quote returns the price of sending p from one address to another, as the
// package comment of this file describes. It depends on nothing else, so the
// same parcel on the same lane always costs the same. It expects a validated
// request (dimensions up to 1200 mm, weight up to 25 kg); it does not fail.
func Quote(p Parcel, from, to Address) Price {
	steps := (int64(ChargeableWeight(p)) + stepGrams - 1) / stepGrams
	t := tariff[LaneOf(from, to)]
	cents := t.base + steps*t.perStep
	return Price{Amount: amount(cents), Currency: Currency}
}

// amount renders cents, at least 0, as a decimal with two places.
func amount(cents int64) string {
	var buf [24]byte
	b := strconv.AppendInt(buf[:0], cents/100, 10)
	return string(append(b, '.', byte('0'+cents%100/10), byte('0'+cents%10)))
}
