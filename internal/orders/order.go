package orders

import "time"

// StatusBooked is the status of an order that has just been created.
const StatusBooked = "booked"

// Order is a booked parcel delivery. Its JSON encoding (field order fixed by
// this struct) is the body of both the create and the read response; Owner
// is stored but never part of it.
type Order struct {
	ID        string    `json:"order_id" dynamodbav:"order_id"`
	Status    string    `json:"status" dynamodbav:"status"`
	Sender    Party     `json:"sender" dynamodbav:"sender"`
	Receiver  Party     `json:"receiver" dynamodbav:"receiver"`
	Parcel    Parcel    `json:"parcel" dynamodbav:"parcel"`
	Price     Price     `json:"price" dynamodbav:"price"`
	CreatedAt time.Time `json:"created_at" dynamodbav:"created_at"`
	// Owner is the caller the order was booked for (see WithOwner); only
	// that caller can read it. Stored as "owner", absent when "".
	Owner string `json:"-" dynamodbav:"owner,omitempty"`
}

// Request is what a client asks to book: the validated body of POST /orders.
type Request struct {
	Sender   Party  `json:"sender"`
	Receiver Party  `json:"receiver"`
	Parcel   Parcel `json:"parcel"`
}

// Party is a sender or receiver.
type Party struct {
	Name    string  `json:"name" dynamodbav:"name"`
	Address Address `json:"address" dynamodbav:"address"`
}

// Address is an Australian street address.
type Address struct {
	Line1    string `json:"line1" dynamodbav:"line1"`
	Line2    string `json:"line2,omitempty" dynamodbav:"line2,omitempty"`
	Suburb   string `json:"suburb" dynamodbav:"suburb"`
	State    string `json:"state" dynamodbav:"state"`
	Postcode string `json:"postcode" dynamodbav:"postcode"`
	Country  string `json:"country" dynamodbav:"country"`
}

// Parcel is what is sent. In JSON the weight is in kilograms and the
// dimensions in centimetres; in DynamoDB they are whole grams and millimetres.
type Parcel struct {
	Weight      Grams       `json:"weight_kg" dynamodbav:"weight_g"`
	Length      Millimetres `json:"length_cm" dynamodbav:"length_mm"`
	Width       Millimetres `json:"width_cm" dynamodbav:"width_mm"`
	Height      Millimetres `json:"height_cm" dynamodbav:"height_mm"`
	Description string      `json:"description,omitempty" dynamodbav:"description,omitempty"`
}

// Price is what an order costs, GST included. Amount is a decimal string with
// exactly two decimal places ("18.45").
type Price struct {
	Amount   string `json:"amount" dynamodbav:"amount"`
	Currency string `json:"currency" dynamodbav:"currency"`
}

// Book returns the order for r with the given id and creation time: status
// booked, priced by Quote, created at now in UTC truncated to milliseconds.
func Book(id string, r Request, now time.Time) Order {
	return Order{
		ID:        id,
		Status:    StatusBooked,
		Sender:    r.Sender,
		Receiver:  r.Receiver,
		Parcel:    r.Parcel,
		Price:     Quote(r.Parcel, r.Sender.Address, r.Receiver.Address),
		CreatedAt: now.UTC().Truncate(time.Millisecond),
	}
}
