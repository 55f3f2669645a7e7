package orders

import (
	"reflect"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
)

// exampleOrder is the order the benchmarks and the item and encoding tests
// start from: every optional field set.
func exampleOrder() Order {
	r := Request{
		Sender:   Party{Name: "Ann Lee", Address: Address{Line1: "1 George St", Line2: "Level 2", Suburb: "Sydney", State: "NSW", Postcode: "2000", Country: "AU"}},
		Receiver: Party{Name: "Bo Chen", Address: Address{Line1: "9 Queen St", Suburb: "Brisbane", State: "QLD", Postcode: "4000", Country: "AU"}},
		Parcel:   Parcel{Weight: 2500, Length: 305, Width: 200, Height: 100, Description: "books"},
	}
	o := Book("ord_abcdefghijklmnopqrstuvwxyz", r, time.Date(2025, 3, 4, 5, 6, 7, 891_000_000, time.UTC))
	o.Owner = "owner-1"
	return o
}

func TestOrderItemIsMarshalMaps(t *testing.T) {
	t.Parallel()
	edits := []struct {
		name string
		edit func(*Order)
	}{
		{"an order with every optional field", func(*Order) {}},
		{"an order without line2, description or owner", func(o *Order) {
			o.Sender.Address.Line2, o.Parcel.Description, o.Owner = "", "", ""
		}},
		{"an order with empty required strings", func(o *Order) { o.Sender.Name, o.Price.Amount, o.Receiver.Address.Country = "", "", "" }},
		{"an order of the zero time", func(o *Order) { o.CreatedAt = time.Time{} }},
		{"an order whose time has nanoseconds and another zone", func(o *Order) {
			o.CreatedAt = time.Date(2025, 12, 31, 23, 59, 59, 123456789, time.FixedZone("AEST", 10*3600))
		}},
		{"an order with extreme numbers", func(o *Order) {
			o.Parcel.Weight, o.Parcel.Length, o.Parcel.Width, o.Parcel.Height = -1, 0, 1<<62, -(1 << 63)
		}},
		{"the zero order", func(o *Order) { *o = Order{} }},
	}
	for _, tt := range edits {
		t.Run(tt.name+" has the item MarshalMap makes", func(t *testing.T) {
			t.Parallel()
			o := exampleOrder()
			tt.edit(&o)
			want, err := attributevalue.MarshalMap(o)
			if err != nil {
				t.Fatal(err)
			}
			if got := orderItem(o); !reflect.DeepEqual(got, want) {
				t.Fatalf("orderItem = %#v\nMarshalMap = %#v", got, want)
			}
		})
	}
}

// FuzzOrderItemIsMarshalMaps holds orderItem to MarshalMap for orders of
// any strings and numbers.
func FuzzOrderItemIsMarshalMaps(f *testing.F) {
	f.Add("Ann Lee", "Level 2", "books", "owner-1", int64(2500), int64(305), int64(1741064767891000000))
	f.Add("", "", "", "", int64(0), int64(-1), int64(0))
	f.Fuzz(func(t *testing.T, name, line2, desc, owner string, weight, length, nanos int64) {
		o := exampleOrder()
		o.Receiver.Name, o.Receiver.Address.Line2, o.Parcel.Description, o.Owner = name, line2, desc, owner
		o.Parcel.Weight, o.Parcel.Length = Grams(weight), Millimetres(length)
		o.CreatedAt = time.Unix(0, nanos).UTC()
		want, err := attributevalue.MarshalMap(o)
		if err != nil {
			t.Fatal(err)
		}
		if got := orderItem(o); !reflect.DeepEqual(got, want) {
			t.Fatalf("orderItem = %#v\nMarshalMap = %#v", got, want)
		}
	})
}
