package orders

import "slices"

// States are the Australian states and territories an address may name, as
// their official abbreviations.
var States = []string{"ACT", "NSW", "NT", "QLD", "SA", "TAS", "VIC", "WA"}

type postcodeRange struct{ lo, hi int }

// postcodeRanges are Australia Post's postcode ranges per state and
// territory, delivery areas and PO boxes / large-volume receivers alike.
var postcodeRanges = map[string][]postcodeRange{
	"ACT": {{200, 299}, {2600, 2618}, {2900, 2920}},
	"NSW": {{1000, 1999}, {2000, 2599}, {2619, 2899}, {2921, 2999}},
	"NT":  {{800, 999}},
	"QLD": {{4000, 4999}, {9000, 9999}},
	"SA":  {{5000, 5999}},
	"TAS": {{7000, 7999}},
	"VIC": {{3000, 3999}, {8000, 8999}},
	"WA":  {{6000, 6999}},
}

// crossBorder lists postcodes that, besides the state whose range holds them,
// also serve localities across a border: Hall (ACT) shares 2618 with NSW
// localities, ACT localities such as Oaks Estate and Tharwa use Queanbeyan's
// 2620, a few NSW border towns use Victorian or Queensland postcodes, and the
// remote communities of the NT/SA/WA tri-border area share 0872.
var crossBorder = map[int][]string{
	872:  {"SA", "WA"},
	2618: {"NSW"},
	2620: {"ACT"},
	3585: {"NSW"}, 3586: {"NSW"}, 3644: {"NSW"}, 3691: {"NSW"}, 3707: {"NSW"},
	4377: {"NSW"}, 4380: {"NSW"}, 4383: {"NSW"}, 4385: {"NSW"},
}

// ValidState reports whether s is one of States.
func ValidState(s string) bool { return slices.Contains(States, s) }

// PostcodeInState reports whether postcode is four ASCII digits that
// Australia Post assigns to state. It is false for an unknown state.
func PostcodeInState(postcode, state string) bool {
	n, ok := postcodeNumber(postcode)
	if !ok {
		return false
	}
	for _, r := range postcodeRanges[state] {
		if r.lo <= n && n <= r.hi {
			return true
		}
	}
	return slices.Contains(crossBorder[n], state)
}

// postcodeNumber returns the value of a four-digit postcode.
func postcodeNumber(p string) (int, bool) {
	if len(p) != 4 {
		return 0, false
	}
	n := 0
	for i := 0; i < 4; i++ {
		c := p[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}
