package orders

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

const validBody = `{
  "sender":   {"name": "Ann Lee", "address": {"line1": "1 George St", "suburb": "Sydney",   "state": "NSW", "postcode": "2000", "country": "AU"}},
  "receiver": {"name": "Bo Chen", "address": {"line1": "9 Queen St",  "suburb": "Brisbane", "state": "QLD", "postcode": "4000", "country": "AU"}},
  "parcel":   {"weight_kg": 2.5, "length_cm": 30, "width_cm": 20, "height_cm": 10, "description": "books"}
}`

// body returns validBody changed by edit, which gets the body as generic
// JSON (objects are map[string]any).
func body(t *testing.T, edit func(m map[string]any)) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(validBody), &m); err != nil {
		t.Fatal(err)
	}
	edit(m)
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// at returns the object at the slash-separated path of m.
func at(m map[string]any, path string) map[string]any {
	for _, k := range strings.Split(path, "/") {
		m = m[k].(map[string]any)
	}
	return m
}

func set(path, key string, v any) func(map[string]any) {
	return func(m map[string]any) { at(m, path)[key] = v }
}

func del(path, key string) func(map[string]any) {
	return func(m map[string]any) { delete(at(m, path), key) }
}

func all(edits ...func(map[string]any)) func(map[string]any) {
	return func(m map[string]any) {
		for _, e := range edits {
			e(m)
		}
	}
}

func TestDecodeOrderAcceptsAValidOrder(t *testing.T) {
	t.Parallel()
	got, err := DecodeOrder([]byte(validBody))
	if err != nil {
		t.Fatalf("DecodeOrder: %v", err)
	}
	want := Request{
		Sender:   Party{Name: "Ann Lee", Address: Address{Line1: "1 George St", Suburb: "Sydney", State: "NSW", Postcode: "2000", Country: "AU"}},
		Receiver: Party{Name: "Bo Chen", Address: Address{Line1: "9 Queen St", Suburb: "Brisbane", State: "QLD", Postcode: "4000", Country: "AU"}},
		Parcel:   Parcel{Weight: 2500, Length: 300, Width: 200, Height: 100, Description: "books"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("DecodeOrder = %+v\nwant %+v", got, want)
	}
}

func TestDecodeOrderAcceptsEdgeValues(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		edit  func(map[string]any)
		check func(Request) bool
	}{
		{"a weight of exactly 25 kg is accepted", set("parcel", "weight_kg", 25), func(r Request) bool { return r.Parcel.Weight == 25000 }},
		{"a weight of one gram is accepted", set("parcel", "weight_kg", 0.001), func(r Request) bool { return r.Parcel.Weight == 1 }},
		{"a dimension of exactly 120 cm is accepted", set("parcel", "height_cm", 120), func(r Request) bool { return r.Parcel.Height == 1200 }},
		{"a dimension of one millimetre is accepted", set("parcel", "width_cm", 0.1), func(r Request) bool { return r.Parcel.Width == 1 }},
		{"surrounding white space is trimmed", set("sender", "name", "  Ann Lee\t"), func(r Request) bool { return r.Sender.Name == "Ann Lee" }},
		{"a name of 100 characters is accepted", set("sender", "name", strings.Repeat("é", 100)), func(r Request) bool { return r.Sender.Name == strings.Repeat("é", 100) }},
		{"line2 is optional and kept", set("receiver/address", "line2", "Level 3"), func(r Request) bool { return r.Receiver.Address.Line2 == "Level 3" }},
		{"the description is optional", del("parcel", "description"), func(r Request) bool { return r.Parcel.Description == "" }},
		{"an ACT postcode in the NSW range is accepted for the ACT", all(set("receiver/address", "state", "ACT"), set("receiver/address", "postcode", "2600")),
			func(r Request) bool { return r.Receiver.Address.State == "ACT" }},
		{"an NT postcode keeps its leading zero", all(set("receiver/address", "state", "NT"), set("receiver/address", "postcode", "0800")),
			func(r Request) bool { return r.Receiver.Address.Postcode == "0800" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r, err := DecodeOrder(body(t, tt.edit))
			if err != nil {
				t.Fatalf("DecodeOrder: %v", err)
			}
			if !tt.check(r) {
				t.Fatalf("unexpected request %+v", r)
			}
		})
	}
}

func TestDecodeOrderAcceptsExponentsAndTrailingWhiteSpace(t *testing.T) {
	t.Parallel()
	b := strings.Replace(validBody, `"weight_kg": 2.5`, `"weight_kg": 25e-1`, 1) + "\n\t "
	r, err := DecodeOrder([]byte(b))
	if err != nil || r.Parcel.Weight != 2500 {
		t.Fatalf("DecodeOrder = %+v, %v; want 2500 g", r.Parcel, err)
	}
}

func TestDecodeOrderReportsEachInvalidField(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		body []byte
		want []FieldError // Detail is matched as a substring
	}{
		{"a missing sender name is required", body(t, del("sender", "name")),
			[]FieldError{{"/sender/name", "is required"}}},
		{"an empty receiver name is refused", body(t, set("receiver", "name", "   ")),
			[]FieldError{{"/receiver/name", "must not be empty"}}},
		{"an over-long name is refused", body(t, set("sender", "name", strings.Repeat("a", 101))),
			[]FieldError{{"/sender/name", "at most 100 characters"}}},
		{"a name with a control character is refused", body(t, set("sender", "name", "Ann\nLee")),
			[]FieldError{{"/sender/name", "control characters"}}},
		{"an empty address line is refused", body(t, set("sender/address", "line1", "")),
			[]FieldError{{"/sender/address/line1", "must not be empty"}}},
		{"an over-long address line is refused", body(t, set("sender/address", "line2", strings.Repeat("a", 101))),
			[]FieldError{{"/sender/address/line2", "at most 100 characters"}}},
		{"an over-long suburb is refused", body(t, set("sender/address", "suburb", strings.Repeat("a", 61))),
			[]FieldError{{"/sender/address/suburb", "at most 60 characters"}}},
		{"a postcode of three digits is refused", body(t, set("receiver/address", "postcode", "400")),
			[]FieldError{{"/receiver/address/postcode", "must be 4 digits"}}},
		{"a postcode with letters is refused", body(t, set("receiver/address", "postcode", "40O0")),
			[]FieldError{{"/receiver/address/postcode", "must be 4 digits"}}},
		{"a postcode as a number is a wrong type", body(t, set("receiver/address", "postcode", 4000)),
			[]FieldError{{"/receiver/address/postcode", "must be a string"}}},
		{"a postcode of another state is refused", body(t, set("receiver/address", "postcode", "2000")),
			[]FieldError{{"/receiver/address/postcode", "is not a postcode of QLD"}}},
		{"an NT postcode is refused for the ACT", body(t, all(set("receiver/address", "state", "ACT"), set("receiver/address", "postcode", "0800"))),
			[]FieldError{{"/receiver/address/postcode", "is not a postcode of ACT"}}},
		{"an unknown state is refused and the postcode not judged against it", body(t, set("receiver/address", "state", "Queensland")),
			[]FieldError{{"/receiver/address/state", "must be one of ACT, NSW"}}},
		{"a country other than AU is refused", body(t, set("receiver/address", "country", "NZ")),
			[]FieldError{{"/receiver/address/country", "must be AU"}}},
		{"a missing country is required", body(t, del("receiver/address", "country")),
			[]FieldError{{"/receiver/address/country", "is required"}}},
		{"a zero weight is refused", body(t, set("parcel", "weight_kg", 0)),
			[]FieldError{{"/parcel/weight_kg", "greater than 0"}}},
		{"a negative weight is refused", body(t, set("parcel", "weight_kg", -1)),
			[]FieldError{{"/parcel/weight_kg", "greater than 0"}}},
		{"a weight over 25 kg is refused", body(t, set("parcel", "weight_kg", 25.001)),
			[]FieldError{{"/parcel/weight_kg", "at most 25 kg"}}},
		{"a weight finer than a gram is refused", body(t, set("parcel", "weight_kg", 2.5001)),
			[]FieldError{{"/parcel/weight_kg", "at most 3 decimal places"}}},
		{"a weight as a string is a wrong type", body(t, set("parcel", "weight_kg", "2.5")),
			[]FieldError{{"/parcel/weight_kg", "must be a number"}}},
		{"a zero dimension is refused", body(t, set("parcel", "length_cm", 0)),
			[]FieldError{{"/parcel/length_cm", "greater than 0"}}},
		{"a dimension over 120 cm is refused", body(t, set("parcel", "width_cm", 120.1)),
			[]FieldError{{"/parcel/width_cm", "at most 120 cm"}}},
		{"a dimension finer than a millimetre is refused", body(t, set("parcel", "height_cm", 10.05)),
			[]FieldError{{"/parcel/height_cm", "at most 1 decimal places"}}},
		{"a missing dimension is required", body(t, del("parcel", "height_cm")),
			[]FieldError{{"/parcel/height_cm", "is required"}}},
		{"an over-long description is refused", body(t, set("parcel", "description", strings.Repeat("x", 201))),
			[]FieldError{{"/parcel/description", "at most 200 characters"}}},
		{"null is a wrong type even for an optional field", body(t, set("parcel", "description", nil)),
			[]FieldError{{"/parcel/description", "must be a string"}}},
		{"a missing parcel is required", body(t, func(m map[string]any) { delete(m, "parcel") }),
			[]FieldError{{"/parcel", "is required"}}},
		{"an address that is not an object is a wrong type", body(t, set("sender", "address", "1 George St")),
			[]FieldError{{"/sender/address", "must be an object"}}},
		{"an unknown top-level field is refused", body(t, func(m map[string]any) { m["priority"] = true }),
			[]FieldError{{"/priority", "is not a known field"}}},
		{"an unknown nested field is refused", body(t, set("receiver/address", "unit", "3")),
			[]FieldError{{"/receiver/address/unit", "is not a known field"}}},
		{"a field name with / and ~ is escaped in its pointer", body(t, set("parcel", "a/b~c", 1)),
			[]FieldError{{"/parcel/a~1b~0c", "is not a known field"}}},
		{"a duplicated field is refused", []byte(strings.Replace(validBody, `"name": "Ann Lee"`, `"name": "Ann Lee", "name": "Eve"`, 1)),
			[]FieldError{{"/sender/name", "more than once"}}},
		{"every error is reported at once, in schema order", body(t, all(
			del("sender", "name"),
			set("receiver/address", "postcode", "2000"),
			set("receiver/address", "country", "NZ"),
			set("parcel", "weight_kg", 30),
			set("parcel", "length_cm", 121),
			set("parcel", "colour", "red"),
		)), []FieldError{
			{"/sender/name", "is required"},
			{"/receiver/address/postcode", "is not a postcode of QLD"},
			{"/receiver/address/country", "must be AU"},
			{"/parcel/weight_kg", "at most 25 kg"},
			{"/parcel/length_cm", "at most 120 cm"},
			{"/parcel/colour", "is not a known field"},
		}},
		{"an empty object reports each missing part", []byte(`{}`), []FieldError{
			{"/sender", "is required"}, {"/receiver", "is required"}, {"/parcel", "is required"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := DecodeOrder(tt.body)
			var verr *ValidationError
			if !errors.As(err, &verr) {
				t.Fatalf("DecodeOrder(%s) error = %v, want *ValidationError", tt.body, err)
			}
			if len(verr.Fields) != len(tt.want) {
				t.Fatalf("got %d errors %+v, want %d %+v", len(verr.Fields), verr.Fields, len(tt.want), tt.want)
			}
			for i, w := range tt.want {
				g := verr.Fields[i]
				if g.Pointer != w.Pointer || !strings.Contains(g.Detail, w.Detail) {
					t.Errorf("error %d = %+v, want pointer %q with detail containing %q", i, g, w.Pointer, w.Detail)
				}
			}
		})
	}
}

func TestDecodeOrderRefusesMalformedBodies(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		body string
	}{
		{"an empty body is malformed", ""},
		{"white space alone is malformed", " \n"},
		{"text that is not JSON is malformed", "sender=Ann"},
		{"a truncated object is malformed", validBody[:40]},
		{"a second object after the first is malformed", validBody + "{}"},
		{"trailing garbage after the object is malformed", validBody + "x"},
		{"a closing brace too many is malformed", validBody + "}"},
		{"an array is malformed", "[" + validBody + "]"},
		{"a string is malformed", `"order"`},
		{"null is malformed", "null"},
		{"invalid UTF-8 is malformed", strings.Replace(validBody, "Ann", "A\xffn", 1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := DecodeOrder([]byte(tt.body))
			if !errors.Is(err, ErrMalformedBody) {
				t.Fatalf("DecodeOrder error = %v, want ErrMalformedBody", err)
			}
		})
	}
}
