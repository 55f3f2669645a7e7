package orders

import (
	"encoding/json"
	"time"
	"unicode/utf8"
)

// EncodeOrder returns the JSON body of a response carrying o: encoding/json
// of Order and a newline. Create and Get both use it, so they answer the same
// order with the same bytes.
func EncodeOrder(o Order) []byte {
	// The bytes of the names and punctuation (about 330) and the numbers
	// and time, with room to spare: rarely does a string need escapes.
	n := 512 + len(o.ID) + len(o.Status) + len(o.Price.Amount) + len(o.Price.Currency) + len(o.Parcel.Description) +
		partyLen(o.Sender) + partyLen(o.Receiver)
	return append(appendOrder(make([]byte, 0, n), o), '\n')
}

func partyLen(p Party) int {
	a := p.Address
	return len(p.Name) + len(a.Line1) + len(a.Line2) + len(a.Suburb) + len(a.State) + len(a.Postcode) + len(a.Country)
}

// appendOrder appends json.Marshal(o) to b, without reflection
// (TestEncodeOrderIsMarshals and its fuzz hold the two together).
func appendOrder(b []byte, o Order) []byte {
	b = append(b, `{"order_id":`...)
	b = appendString(b, o.ID)
	b = append(b, `,"status":`...)
	b = appendString(b, o.Status)
	b = append(b, `,"sender":`...)
	b = appendParty(b, o.Sender)
	b = append(b, `,"receiver":`...)
	b = appendParty(b, o.Receiver)
	b = append(b, `,"parcel":{"weight_kg":`...)
	b = appendFixed(b, int64(o.Parcel.Weight), 3)
	b = append(b, `,"length_cm":`...)
	b = appendFixed(b, int64(o.Parcel.Length), 1)
	b = append(b, `,"width_cm":`...)
	b = appendFixed(b, int64(o.Parcel.Width), 1)
	b = append(b, `,"height_cm":`...)
	b = appendFixed(b, int64(o.Parcel.Height), 1)
	if o.Parcel.Description != "" {
		b = append(b, `,"description":`...)
		b = appendString(b, o.Parcel.Description)
	}
	b = append(b, `},"price":{"amount":`...)
	b = appendString(b, o.Price.Amount)
	b = append(b, `,"currency":`...)
	b = appendString(b, o.Price.Currency)
	b = append(b, `},"created_at":"`...)
	n := len(b)
	b = o.CreatedAt.AppendFormat(b, time.RFC3339Nano)
	if !strictRFC3339(b[n:]) {
		// time.Time's MarshalJSON refuses this time; so must we.
		_, err := json.Marshal(o.CreatedAt)
		panic("orders: encode order: " + err.Error()) // unreachable for a time Book made or Get read
	}
	return append(b, `"}`...)
}

// strictRFC3339 reports whether t, a time formatted as time.RFC3339Nano, is
// one time.Time's MarshalJSON accepts: a year of four digits and a zone
// offset under 24 hours.
func strictRFC3339(t []byte) bool {
	switch {
	case len(t) < len("2006-01-02T15:04:05Z") || t[len("2006")] != '-':
		return false
	case t[len(t)-1] != 'Z':
		c := t[len(t)-len("Z07:00")]
		h := 10*(t[len(t)-len("07:00")]-'0') + (t[len(t)-len("7:00")] - '0')
		return !('0' <= c && c <= '9') && h < 24
	}
	return true
}

func appendParty(b []byte, p Party) []byte {
	a := p.Address
	b = append(b, `{"name":`...)
	b = appendString(b, p.Name)
	b = append(b, `,"address":{"line1":`...)
	b = appendString(b, a.Line1)
	if a.Line2 != "" {
		b = append(b, `,"line2":`...)
		b = appendString(b, a.Line2)
	}
	b = append(b, `,"suburb":`...)
	b = appendString(b, a.Suburb)
	b = append(b, `,"state":`...)
	b = appendString(b, a.State)
	b = append(b, `,"postcode":`...)
	b = appendString(b, a.Postcode)
	b = append(b, `,"country":`...)
	b = appendString(b, a.Country)
	return append(b, `}}`...)
}

// appendString appends s as a JSON string the way encoding/json's Marshal
// writes it: '"' and '\\' escaped, control characters as \b, \f, \n, \r,
// \t or \u00XX, '<', '>' and '&' as \u003c, \u003e and \u0026, U+2028 and
// U+2029 escaped, and each byte of invalid UTF-8 as \ufffd.
func appendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= ' ' && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xF])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
