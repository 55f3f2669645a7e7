package orders

import (
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// orderItem returns the DynamoDB item of o: the very item
// attributevalue.MarshalMap makes of it (the dynamodbav tags of Order name
// its attributes; TestOrderItemIsMarshalMaps holds the two together), built
// without reflection and with few allocations: its members share one block,
// its numbers and time one string.
func orderItem(o Order) map[string]types.AttributeValue {
	// The formatted values, in one string: created_at, then the parcel's
	// four numbers.
	var buf [64]byte
	b := o.CreatedAt.AppendFormat(buf[:0], time.RFC3339Nano)
	timeEnd := len(b)
	var ends [5]int // number k is formatted[ends[k]:ends[k+1]]
	ends[0] = timeEnd
	for k, v := range [4]int64{int64(o.Parcel.Weight), int64(o.Parcel.Length), int64(o.Parcel.Width), int64(o.Parcel.Height)} {
		b = strconv.AppendInt(b, v, 10)
		ends[k+1] = len(b)
	}
	formatted := string(b)

	m := new(itemMembers)
	s := func(v string) types.AttributeValue {
		p := &m.s[m.ns]
		m.ns++
		p.Value = v
		return p
	}
	num := func(k int) types.AttributeValue { // the parcel's kth number
		p := &m.n[k]
		p.Value = formatted[ends[k]:ends[k+1]]
		return p
	}
	mapOf := func(k int, v map[string]types.AttributeValue) types.AttributeValue {
		p := &m.m[k]
		p.Value = v
		return p
	}
	address := func(a Address) map[string]types.AttributeValue {
		av := make(map[string]types.AttributeValue, 6)
		av["line1"] = s(a.Line1)
		if a.Line2 != "" {
			av["line2"] = s(a.Line2)
		}
		av["suburb"] = s(a.Suburb)
		av["state"] = s(a.State)
		av["postcode"] = s(a.Postcode)
		av["country"] = s(a.Country)
		return av
	}
	party := func(k int, p Party) types.AttributeValue {
		pv := make(map[string]types.AttributeValue, 2)
		pv["name"] = s(p.Name)
		pv["address"] = mapOf(k+1, address(p.Address))
		return mapOf(k, pv)
	}

	item := make(map[string]types.AttributeValue, 8)
	item["order_id"] = s(o.ID)
	item["status"] = s(o.Status)
	item["sender"] = party(0, o.Sender)
	item["receiver"] = party(2, o.Receiver)
	parcel := make(map[string]types.AttributeValue, 5)
	parcel["weight_g"] = num(0)
	parcel["length_mm"] = num(1)
	parcel["width_mm"] = num(2)
	parcel["height_mm"] = num(3)
	if o.Parcel.Description != "" {
		parcel["description"] = s(o.Parcel.Description)
	}
	item["parcel"] = mapOf(4, parcel)
	item["price"] = mapOf(5, map[string]types.AttributeValue{"amount": s(o.Price.Amount), "currency": s(o.Price.Currency)})
	m.createdAt.Value = formatted[:timeEnd]
	item[createdAtAttr] = &m.createdAt
	if o.Owner != "" {
		item["owner"] = s(o.Owner)
	}
	return item
}

// itemMembers holds the attribute values of one order's item.
type itemMembers struct {
	s         [20]types.AttributeValueMemberS // the strings, but created_at
	ns        int                             // how many of s are used
	createdAt types.AttributeValueMemberS
	n         [4]types.AttributeValueMemberN // the parcel's numbers
	m         [6]types.AttributeValueMemberM // the maps
}
