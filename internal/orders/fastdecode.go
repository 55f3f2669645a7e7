package orders

import (
	"unicode/utf8"

	"github.com/parcelhq/orderservice/internal/jsonesc"
)

// decodeFast decodes a valid order body in one pass over its bytes,
// checking the JSON syntax, the schema and every field rule as it reads. It
// allocates once for a body whose strings hold no escapes (they share one
// copy of body), and once more per string that does. It reports false for
// every body DecodeOrder refuses, and for no other: its rules are the
// checker's own (checkText, checkNumber and the address's code checks), so
// that when it reports true its Request is the one the checker makes of the
// same bytes (FuzzDecodeFastMatchesChecker). DecodeOrder needs the checker
// only to say what is wrong with a body.
func decodeFast(body []byte) (Request, bool) {
	var r Request
	d := fastDecoder{s: string(body)}
	ok := d.object(func(name string) bool {
		switch name {
		case "sender":
			return d.party(&r.Sender)
		case "receiver":
			return d.party(&r.Receiver)
		case "parcel":
			return d.parcel(&r.Parcel)
		}
		return false
	}, "sender", "receiver", "parcel")
	d.space()
	return r, ok && d.i == len(d.s)
}

// fastDecoder reads s from i. Its methods report false at the first byte
// that is not what a valid order has there; where it then stands is
// unspecified.
type fastDecoder struct {
	s string
	i int
}

func (d *fastDecoder) space() {
	for d.i < len(d.s) {
		switch d.s[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

// peek skips white space and returns the next byte, 0 at the end.
func (d *fastDecoder) peek() byte {
	d.space()
	if d.i >= len(d.s) {
		return 0
	}
	return d.s[d.i]
}

// object reads an object whose members are names, each exactly once, in
// any order; member reads the value of each. It reports false for a missing,
// duplicated or unknown name, or when member does.
func (d *fastDecoder) object(member func(name string) bool, names ...string) bool {
	return d.objectWith(member, 0, names...)
}

// objectWith is object where the members whose bits are set in optional
// (bit k for names[k]; at most 8 names) may be missing.
func (d *fastDecoder) objectWith(member func(name string) bool, optional uint8, names ...string) bool {
	if d.peek() != '{' {
		return false
	}
	d.i++
	var seen uint8
	if d.peek() == '}' {
		d.i++
	} else {
		for {
			if d.peek() != '"' {
				return false
			}
			name, ok := d.str()
			if !ok {
				return false
			}
			bit := uint8(0)
			for k, n := range names {
				if n == name {
					bit = 1 << k
					break
				}
			}
			if bit == 0 || seen&bit != 0 || d.peek() != ':' {
				return false
			}
			seen |= bit
			d.i++
			if !member(name) {
				return false
			}
			switch d.peek() {
			case ',':
				d.i++
				continue
			case '}':
				d.i++
			default:
				return false
			}
			break
		}
	}
	required := (uint8(1)<<len(names) - 1) &^ optional
	return seen&required == required
}

// text reads a string member and checks it as checker.text does.
func (d *fastDecoder) text(dst *string, required bool, max int) bool {
	if d.peek() != '"' {
		return false
	}
	s, ok := d.str()
	if !ok {
		return false
	}
	s, problem := checkText(s, required, max)
	*dst = s
	return problem == ""
}

// number reads a number member and checks it as checker.number does.
func (d *fastDecoder) number(dst *int64, decimals int, max int64) bool {
	n, ok := d.num()
	if !ok {
		return false
	}
	units, problem := checkNumber(n, decimals, max, "") // the unit only words a problem
	*dst = units
	return problem == ""
}

func (d *fastDecoder) party(p *Party) bool {
	return d.object(func(name string) bool {
		if name == "name" {
			return d.text(&p.Name, true, MaxNameLen)
		}
		return d.address(&p.Address)
	}, "name", "address")
}

func (d *fastDecoder) address(a *Address) bool {
	ok := d.objectWith(func(name string) bool {
		switch name {
		case "line1":
			return d.text(&a.Line1, true, MaxAddressLineLen)
		case "line2":
			return d.text(&a.Line2, false, MaxAddressLineLen)
		case "suburb":
			return d.text(&a.Suburb, true, MaxSuburbLen)
		case "state":
			return d.text(&a.State, true, MaxAddressLineLen)
		case "postcode":
			return d.text(&a.Postcode, true, MaxAddressLineLen)
		}
		return d.text(&a.Country, true, MaxAddressLineLen)
	}, 1<<1, "line1", "line2", "suburb", "state", "postcode", "country")
	return ok && stateProblem(a.State) == "" && postcodeProblem(a.Postcode, a.State, true) == "" &&
		countryProblem(a.Country) == ""
}

func (d *fastDecoder) parcel(p *Parcel) bool {
	return d.objectWith(func(name string) bool {
		switch name {
		case "weight_kg":
			return d.number((*int64)(&p.Weight), 3, int64(MaxWeight))
		case "length_cm":
			return d.number((*int64)(&p.Length), 1, int64(MaxDimension))
		case "width_cm":
			return d.number((*int64)(&p.Width), 1, int64(MaxDimension))
		case "height_cm":
			return d.number((*int64)(&p.Height), 1, int64(MaxDimension))
		}
		return d.text(&p.Description, false, MaxDescriptionLen)
	}, 1<<4, "weight_kg", "length_cm", "width_cm", "height_cm", "description")
}

// num reads a number (RFC 8259: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?)
// and returns it as written.
func (d *fastDecoder) num() (string, bool) {
	d.space()
	s, i := d.s, d.i
	if i < len(s) && s[i] == '-' {
		i++
	}
	switch {
	case i < len(s) && s[i] == '0':
		i++
	case i < len(s) && '1' <= s[i] && s[i] <= '9':
		i = digitsFrom(s, i)
	default:
		return "", false
	}
	if i < len(s) && s[i] == '.' {
		if i++; i >= len(s) || !isDigit(s[i]) {
			return "", false
		}
		i = digitsFrom(s, i)
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		if i++; i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if i >= len(s) || !isDigit(s[i]) {
			return "", false
		}
		i = digitsFrom(s, i)
	}
	n := s[d.i:i]
	d.i = i
	return n, true
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func digitsFrom(s string, i int) int {
	for i < len(s) && isDigit(s[i]) {
		i++
	}
	return i
}

// str reads the string at d.i (its opening quote) and returns its value as
// encoding/json decodes it: a slice of d.s when it holds no escape. It
// reports false for a control character, invalid UTF-8 or a bad escape.
func (d *fastDecoder) str() (string, bool) {
	s := d.s
	start := d.i + 1
	i := start
	for i < len(s) {
		c := s[i]
		switch {
		case c == '"':
			d.i = i + 1
			return s[start:i], true
		case c == '\\':
			return d.escapedStr(start, i)
		case c < ' ':
			return "", false
		case c < utf8.RuneSelf:
			i++
		default:
			r, n := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && n == 1 {
				return "", false
			}
			i += n
		}
	}
	return "", false
}

// escapedStr goes on with the string that began at start, whose first
// escape is at i.
func (d *fastDecoder) escapedStr(start, i int) (string, bool) {
	s := d.s
	b := make([]byte, 0, i-start+16)
	b = append(b, s[start:i]...)
	for i < len(s) {
		c := s[i]
		switch {
		case c == '"':
			d.i = i + 1
			return string(b), true
		case c == '\\':
			r, n := jsonesc.Unescape(s[i:])
			if n == 0 {
				return "", false
			}
			b = utf8.AppendRune(b, r)
			i += n
		case c < ' ':
			return "", false
		case c < utf8.RuneSelf:
			b = append(b, c)
			i++
		default:
			r, n := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && n == 1 {
				return "", false
			}
			b = append(b, s[i:i+n]...)
			i += n
		}
	}
	return "", false
}
