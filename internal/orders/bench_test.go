package orders

import (
	"encoding/json"
	"testing"

	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
)

// benchBody is the body of a valid POST /orders, compact as clients send it.
const benchBody = `{"sender":{"name":"Ann Lee","address":{"line1":"1 George St","suburb":"Sydney","state":"NSW","postcode":"2000","country":"AU"}},` +
	`"receiver":{"name":"Bo Chen","address":{"line1":"9 Queen St","suburb":"Brisbane","state":"QLD","postcode":"4000","country":"AU"}},` +
	`"parcel":{"weight_kg":2.5,"length_cm":30,"width_cm":20,"height_cm":10,"description":"books"}}`

// BenchmarkDecodeOrder is the CPU and allocations of parsing and validating
// the body of a valid POST /orders, the create path's own work besides the
// store call; "checker" is the path DecodeOrder takes only to say what is
// wrong with a body, on the same valid body, for comparison.
func BenchmarkDecodeOrder(b *testing.B) {
	body := []byte(benchBody)
	b.Run("valid", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := DecodeOrder(body); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("checker", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := decodeChecked(body); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkOrderItem is the cost of the order's DynamoDB item, against
// attributevalue.MarshalMap, which makes the same item.
func BenchmarkOrderItem(b *testing.B) {
	o := exampleOrder()
	b.Run("orderItem", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = orderItem(o)
		}
	})
	b.Run("MarshalMap", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := attributevalue.MarshalMap(o); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkEncodeOrder is the cost of the response body, against
// json.Marshal, which makes the same bytes.
func BenchmarkEncodeOrder(b *testing.B) {
	o := exampleOrder()
	b.Run("EncodeOrder", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = EncodeOrder(o)
		}
	})
	b.Run("json.Marshal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := json.Marshal(o); err != nil {
				b.Fatal(err)
			}
		}
	})
}
