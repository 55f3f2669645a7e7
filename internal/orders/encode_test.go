package orders

import (
	"encoding/json"
	"testing"
	"time"
)

func TestEncodeOrderIsMarshals(t *testing.T) {
	t.Parallel()
	edits := []struct {
		name string
		edit func(*Order)
	}{
		{"an order with every optional field", func(*Order) {}},
		{"an order without line2 or description", func(o *Order) { o.Sender.Address.Line2, o.Parcel.Description = "", "" }},
		{"strings that JSON and HTML escape", func(o *Order) {
			o.Sender.Name, o.Parcel.Description = "A \"q\" \\ <b>&</b> \b\f\n\r\t \x00\x1f\x7f", "caf\u00e9 \u2028\u2029 \U0001F600 bad\xff\xc3("
		}},
		{"the zero time", func(o *Order) { o.CreatedAt = time.Time{} }},
		{"a time with nanoseconds in another zone", func(o *Order) {
			o.CreatedAt = time.Date(2025, 12, 31, 23, 59, 59, 123456789, time.FixedZone("", -(9*3600+30*60)))
		}},
		{"fractional and negative numbers", func(o *Order) { o.Parcel.Weight, o.Parcel.Length, o.Parcel.Width = 1, 5, -305 }},
	}
	for _, tt := range edits {
		t.Run(tt.name+" encodes as json.Marshal does", func(t *testing.T) {
			t.Parallel()
			o := exampleOrder()
			tt.edit(&o)
			want, err := json.Marshal(o)
			if err != nil {
				t.Fatal(err)
			}
			if got := EncodeOrder(o); string(got) != string(want)+"\n" {
				t.Fatalf("EncodeOrder = %s\njson.Marshal = %s", got, want)
			}
		})
	}
}

func TestEncodeOrderPanicsOnATimeMarshalJSONRefuses(t *testing.T) {
	t.Parallel()
	for _, tm := range []time.Time{
		time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2025, 1, 1, 0, 0, 0, 0, time.FixedZone("", 24*3600)),
	} {
		t.Run(tm.String()+" panics", func(t *testing.T) {
			if _, err := json.Marshal(tm); err == nil {
				t.Fatalf("json.Marshal accepts %v: not a case of this test", tm)
			}
			defer func() {
				if recover() == nil {
					t.Fatalf("EncodeOrder of a time json.Marshal refuses did not panic")
				}
			}()
			o := exampleOrder()
			o.CreatedAt = tm
			EncodeOrder(o)
		})
	}
}

// FuzzEncodeOrderIsMarshals holds EncodeOrder to json.Marshal for orders of
// any strings, numbers and times json.Marshal accepts.
func FuzzEncodeOrderIsMarshals(f *testing.F) {
	f.Add("Ann Lee", "<b>&\u2028", "\xff", int64(2500), int64(305), int64(1741064767891000000), 36000)
	f.Fuzz(func(t *testing.T, name, line2, desc string, weight, length, nanos int64, offset int) {
		o := exampleOrder()
		o.Receiver.Name, o.Receiver.Address.Line2, o.Parcel.Description = name, line2, desc
		o.Parcel.Weight, o.Parcel.Length = Grams(weight), Millimetres(length)
		o.CreatedAt = time.Unix(0, nanos).In(time.FixedZone("", offset))
		want, err := json.Marshal(o)
		if err != nil {
			return
		}
		if got := EncodeOrder(o); string(got) != string(want)+"\n" {
			t.Fatalf("EncodeOrder = %s\njson.Marshal = %s", got, want)
		}
	})
}
