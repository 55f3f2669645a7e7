package orders

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Limits on the text and numbers of an order request. Lengths count
// characters (Unicode code points) after trimming surrounding white space.
const (
	MaxNameLen        = 100
	MaxAddressLineLen = 100
	MaxSuburbLen      = 60
	MaxDescriptionLen = 200

	MaxWeight    Grams       = 25_000 // 25 kg
	MaxDimension Millimetres = 1_200  // 120 cm
)

// checker walks a decoded JSON object against the order schema and
// collects a FieldError for each problem.
type checker struct {
	errs []FieldError
}

func (c *checker) fail(ptr, format string, args ...any) {
	c.errs = append(c.errs, FieldError{Pointer: ptr, Detail: fmt.Sprintf(format, args...)})
}

// extras checks that o has no duplicated or unknown members; known lists the
// member names the schema allows. It runs after the known members have been
// checked, so unknown members come last.
func (c *checker) extras(ptr string, o *object, known ...string) {
	for _, name := range o.dups {
		c.fail(pointer(ptr, name), "occurs more than once")
	}
	for _, name := range o.names {
		if !contains(known, name) {
			c.fail(pointer(ptr, name), "is not a known field")
		}
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// member returns o's member name, failing when it is absent and required.
// The member's JSON Pointer is made only for a failure: on a valid order
// none is.
func (c *checker) member(ptr string, o *object, name string, required bool) (any, bool) {
	v, ok := o.members[name]
	if !ok && required {
		c.fail(pointer(ptr, name), "is required")
	}
	return v, ok
}

func (c *checker) object(ptr string, o *object, name string) (*object, string) {
	p := pointer(ptr, name)
	v, ok := c.member(ptr, o, name, true)
	if !ok {
		return nil, p
	}
	obj, isObj := v.(*object)
	if !isObj {
		c.fail(p, "must be an object")
		return nil, p
	}
	return obj, p
}

// text checks a string member with checkText.
func (c *checker) text(ptr string, o *object, name string, required bool, max int) string {
	v, ok := c.member(ptr, o, name, required)
	if !ok {
		return ""
	}
	s, isStr := v.(string)
	if !isStr {
		c.fail(pointer(ptr, name), "must be a string")
		return ""
	}
	s, problem := checkText(s, required, max)
	if problem != "" {
		c.fail(pointer(ptr, name), "%s", problem)
	}
	return s
}

// checkText returns the string value of a text member trimmed of
// surrounding white space and, when it breaks a rule, what is wrong with it
// ("" when nothing is): empty although required, longer than max
// characters, or holding control characters.
func checkText(s string, required bool, max int) (string, string) {
	s = strings.TrimSpace(s)
	switch {
	case s == "" && required:
		return s, "must not be empty"
	case utf8.RuneCountInString(s) > max:
		return s, fmt.Sprintf("must be at most %d characters", max)
	case strings.IndexFunc(s, unicode.IsControl) >= 0:
		return s, "must not contain control characters"
	}
	return s, ""
}

// number checks a numeric member with checkNumber.
func (c *checker) number(ptr string, o *object, name string, decimals int, max int64, unit string) int64 {
	v, ok := c.member(ptr, o, name, true)
	if !ok {
		return 0
	}
	n, isNum := v.(json.Number)
	if !isNum {
		c.fail(pointer(ptr, name), "must be a number")
		return 0
	}
	units, problem := checkNumber(string(n), decimals, max, unit)
	if problem != "" {
		c.fail(pointer(ptr, name), "%s", problem)
	}
	return units
}

// checkNumber returns the value of the JSON number n in units of
// 10^-decimals of unit, or 0 and what is wrong with it: not in (0, max]
// units, or finer than one unit.
func checkNumber(n string, decimals int, max int64, unit string) (int64, string) {
	f, _ := strconv.ParseFloat(n, 64) // a JSON number always parses; overflow gives ±Inf
	units, exact := parseFixed(n, decimals)
	switch {
	case f <= 0 || (exact && units <= 0):
		return 0, "must be greater than 0 " + unit
	case f > float64(max)/pow10(decimals) || (exact && units > max):
		return 0, "must be at most " + fixed(max, decimals) + " " + unit
	case !exact:
		return 0, fmt.Sprintf("must have at most %d decimal places", decimals)
	}
	return units, ""
}

func pow10(n int) float64 {
	f := 1.0
	for range n {
		f *= 10
	}
	return f
}

func (c *checker) request(o *object) Request {
	var r Request
	r.Sender = c.party("", o, "sender")
	r.Receiver = c.party("", o, "receiver")
	r.Parcel = c.parcel("", o)
	c.extras("", o, "sender", "receiver", "parcel")
	return r
}

func (c *checker) party(ptr string, o *object, name string) Party {
	po, p := c.object(ptr, o, name)
	if po == nil {
		return Party{}
	}
	var party Party
	party.Name = c.text(p, po, "name", true, MaxNameLen)
	party.Address = c.address(p, po)
	c.extras(p, po, "name", "address")
	return party
}

func (c *checker) address(ptr string, o *object) Address {
	ao, p := c.object(ptr, o, "address")
	if ao == nil {
		return Address{}
	}
	var a Address
	a.Line1 = c.text(p, ao, "line1", true, MaxAddressLineLen)
	a.Line2 = c.text(p, ao, "line2", false, MaxAddressLineLen)
	a.Suburb = c.text(p, ao, "suburb", true, MaxSuburbLen)
	// Codes get a generous length limit so that a wrong value is reported
	// by what is wrong with it, not by its length.
	n := len(c.errs)
	a.State = c.text(p, ao, "state", true, MaxAddressLineLen)
	stateOK := len(c.errs) == n
	if stateOK {
		if problem := stateProblem(a.State); problem != "" {
			c.fail(pointer(p, "state"), "%s", problem)
			stateOK = false
		}
	}
	n = len(c.errs)
	a.Postcode = c.text(p, ao, "postcode", true, MaxAddressLineLen)
	if len(c.errs) == n {
		if problem := postcodeProblem(a.Postcode, a.State, stateOK); problem != "" {
			c.fail(pointer(p, "postcode"), "%s", problem)
		}
	}
	n = len(c.errs)
	a.Country = c.text(p, ao, "country", true, MaxAddressLineLen)
	if len(c.errs) == n {
		if problem := countryProblem(a.Country); problem != "" {
			c.fail(pointer(p, "country"), "%s", problem)
		}
	}
	c.extras(p, ao, "line1", "line2", "suburb", "state", "postcode", "country")
	return a
}

// stateProblem says what is wrong with a state that passed checkText, or "".
func stateProblem(state string) string {
	if !ValidState(state) {
		return "must be one of " + strings.Join(States, ", ")
	}
	return ""
}

// postcodeProblem says what is wrong with a postcode that passed checkText,
// or ""; stateOK says whether the address's state passed its checks, so
// that the postcode is judged against it.
func postcodeProblem(postcode, state string, stateOK bool) string {
	if _, ok := postcodeNumber(postcode); !ok {
		return "must be 4 digits"
	}
	if stateOK && !PostcodeInState(postcode, state) {
		return "is not a postcode of " + state
	}
	return ""
}

// countryProblem says what is wrong with a country that passed checkText,
// or "".
func countryProblem(country string) string {
	if country != "AU" {
		return "must be AU: only Australian addresses are served"
	}
	return ""
}

func (c *checker) parcel(ptr string, o *object) Parcel {
	po, p := c.object(ptr, o, "parcel")
	if po == nil {
		return Parcel{}
	}
	var parcel Parcel
	parcel.Weight = Grams(c.number(p, po, "weight_kg", 3, int64(MaxWeight), "kg"))
	parcel.Length = Millimetres(c.number(p, po, "length_cm", 1, int64(MaxDimension), "cm"))
	parcel.Width = Millimetres(c.number(p, po, "width_cm", 1, int64(MaxDimension), "cm"))
	parcel.Height = Millimetres(c.number(p, po, "height_cm", 1, int64(MaxDimension), "cm"))
	parcel.Description = c.text(p, po, "description", false, MaxDescriptionLen)
	c.extras(p, po, "weight_kg", "length_cm", "width_cm", "height_cm", "description")
	return parcel
}
