package orders

import (
	"testing"
)

// BenchmarkDecodeOrder is the CPU and allocations of parsing and validating
// the body of a valid POST /orders, the create path's own work besides the
// store call.
func BenchmarkDecodeOrder(b *testing.B) {
	body := []byte(`{"sender":{"name":"Ann Lee","address":{"line1":"1 George St","suburb":"Sydney","state":"NSW","postcode":"2000","country":"AU"}},` +
		`"receiver":{"name":"Bo Chen","address":{"line1":"9 Queen St","suburb":"Brisbane","state":"QLD","postcode":"4000","country":"AU"}},` +
		`"parcel":{"weight_kg":2.5,"length_cm":30,"width_cm":20,"height_cm":10,"description":"books"}}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeOrder(body); err != nil {
			b.Fatal(err)
		}
	}
}
