package orderstest_test

import (
	"testing"

	"github.com/parcelhq/orderservice/internal/orders"
	"github.com/parcelhq/orderservice/internal/orders/orderstest"
)

func TestExamplesAreValidOrders(t *testing.T) {
	for name, body := range map[string]string{
		"JSON":                       orderstest.JSON,
		"WithDescription(\"key-7\")": orderstest.WithDescription("key-7"),
	} {
		t.Run(name+" decodes as a valid order", func(t *testing.T) {
			req, err := orders.DecodeOrder([]byte(body))
			if err != nil {
				t.Fatalf("DecodeOrder: %v", err)
			}
			if name != "JSON" && req.Parcel.Description != "key-7" {
				t.Fatalf("description = %q", req.Parcel.Description)
			}
		})
	}
}
