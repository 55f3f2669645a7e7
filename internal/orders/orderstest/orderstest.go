// Package orderstest holds the example order the tests and benchmarks
// outside internal/orders send: a 2.5 kg parcel of books from Sydney (NSW
// 2000) to Brisbane (QLD 4000), priced 18.45 AUD.
package orderstest

import "strconv"

// JSON is a valid POST /orders body, compact.
const JSON = `{"sender":{"name":"Ann Lee","address":{"line1":"1 George St","suburb":"Sydney","state":"NSW","postcode":"2000","country":"AU"}},` +
	`"receiver":{"name":"Bo Chen","address":{"line1":"9 Queen St","suburb":"Brisbane","state":"QLD","postcode":"4000","country":"AU"}},` +
	`"parcel":{"weight_kg":2.5,"length_cm":30,"width_cm":20,"height_cm":10,"description":"books"}}`

// WithDescription returns JSON with the parcel's description set to d, so
// that the order each request creates can be told apart in the table.
func WithDescription(d string) string {
	return JSON[:len(JSON)-len(`"books"}}`)] + strconv.Quote(d) + "}}"
}
