package client

import "time"

// The wire types of the order API, as api/openapi.yaml defines them. The
// client decodes responses into them and encodes requests from them; a test
// checks that they round-trip the real handler's JSON byte for byte.

// OrderRequest is the body of POST /orders: what a caller asks to book.
type OrderRequest struct {
	Sender   Party  `json:"sender"`
	Receiver Party  `json:"receiver"`
	Parcel   Parcel `json:"parcel"`
}

// Order is a booked delivery, the body of a 201 from POST /orders and of a
// 200 from GET /orders/{order_id}.
type Order struct {
	// ID is "ord_" and 26 base32 characters; Get takes it.
	ID string `json:"order_id"`
	// Status is "booked".
	Status    string    `json:"status"`
	Sender    Party     `json:"sender"`
	Receiver  Party     `json:"receiver"`
	Parcel    Parcel    `json:"parcel"`
	Price     Price     `json:"price"`
	CreatedAt time.Time `json:"created_at"`
}

// Party is a sender or a receiver.
type Party struct {
	Name    string  `json:"name"`
	Address Address `json:"address"`
}

// Address is an Australian street address: State is one of ACT, NSW, NT,
// QLD, SA, TAS, VIC, WA; Postcode is four digits; Country is "AU".
type Address struct {
	Line1    string `json:"line1"`
	Line2    string `json:"line2,omitempty"`
	Suburb   string `json:"suburb"`
	State    string `json:"state"`
	Postcode string `json:"postcode"`
	Country  string `json:"country"`
}

// Parcel is what is sent: weight in kilograms (at most three decimals, the
// service counts whole grams) and dimensions in centimetres (at most one
// decimal), all greater than zero.
type Parcel struct {
	WeightKg    float64 `json:"weight_kg"`
	LengthCm    float64 `json:"length_cm"`
	WidthCm     float64 `json:"width_cm"`
	HeightCm    float64 `json:"height_cm"`
	Description string  `json:"description,omitempty"`
}

// Price is what an order costs, GST included: Amount is a decimal string with
// two decimal places ("18.45"), Currency is "AUD".
type Price struct {
	Amount   string `json:"amount"`
	Currency string `json:"currency"`
}
