package main

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/parcelhq/orderservice/internal/ddb"
)

// units is the write (or strongly consistent read) units of an item of size
// bytes: one per started KB, at least one.
func units(size int) int { return max(1, (size+1023)/1024) }

// readUnits is the read units of a strongly consistent GetItem of an item
// of size bytes: one per started 4 KB.
func readUnits(size int) int { return max(1, (size+4095)/4096) }

// itemSizes are the sizes of the items each protocol writes, measured on
// items the side-by-side phase stored.
type itemSizes struct {
	order, record, recordInProgress       int // ours: order item, COMPLETED record, IN_PROGRESS record
	ptOrder, ptRecord, ptRecordInProgress int // the Powertools peer's
	itemOrder                             int // ours in Item mode: the order item carrying its record
	floorPut                              int // the put floor's order item carrying its record
	ok                                    bool
}

// storedSizes reads one stored order and one COMPLETED record of ours
// (lease mode's tables), one order of Item mode (carrying its record), one
// order item of the put floor, and one order and record of the Powertools
// peer, and measures them; the
// IN_PROGRESS sizes are the COMPLETED record without the response (and for
// ours with its lease_until, as acquire writes it).
func storedSizes(ctx context.Context, api *dynamodb.Client, t benchTables) (itemSizes, error) {
	var s itemSizes
	one := func(table string) (map[string]types.AttributeValue, error) {
		out, err := api.Scan(ctx, &dynamodb.ScanInput{TableName: aws.String(table), Limit: aws.Int32(1)})
		if err != nil {
			return nil, err
		}
		if len(out.Items) == 0 {
			return nil, fmt.Errorf("table %s is empty", table)
		}
		return out.Items[0], nil
	}
	lease := t.sbs["lease"]
	order, err := one(lease.OrdersTable)
	if err != nil {
		return s, err
	}
	rec, err := one(lease.IdempotencyTable)
	if err != nil {
		return s, err
	}
	s.order, s.record = ddb.ItemSize(order), ddb.ItemSize(rec)
	ip := without(rec, "data", "encoding")
	ip["lease_until"] = &types.AttributeValueMemberN{Value: "1796221985353"}
	ip["status"] = &types.AttributeValueMemberS{Value: "IN_PROGRESS"}
	s.recordInProgress = ddb.ItemSize(ip)
	if it, ok := t.sbs["item"]; ok {
		item, err := one(it.OrdersTable)
		if err != nil {
			return s, err
		}
		s.itemOrder = ddb.ItemSize(item)
	}
	if fl, ok := t.sbs["floor-"+floorPut]; ok {
		item, err := one(fl.OrdersTable)
		if err != nil {
			return s, err
		}
		s.floorPut = ddb.ItemSize(item)
	}
	pt, ok := t.sbs["powertools"]
	if ok {
		if order, err := one(pt.OrdersTable); err == nil {
			if rec, err := one(pt.IdempotencyTable); err == nil {
				s.ptOrder, s.ptRecord = ddb.ItemSize(order), ddb.ItemSize(rec)
				ip := without(rec, "data")
				ip["status"] = &types.AttributeValueMemberS{Value: "INPROGRESS"}
				s.ptRecordInProgress = ddb.ItemSize(ip)
			}
		}
	}
	s.ok = true
	return s, nil
}

func without(item map[string]types.AttributeValue, names ...string) map[string]types.AttributeValue {
	out := make(map[string]types.AttributeValue, len(item))
	for k, v := range item {
		out[k] = v
	}
	for _, n := range names {
		delete(out, n)
	}
	return out
}

// wcuRow is one protocol's write units on AWS pricing terms (on-demand or
// provisioned, standard table class): one unit per started KB of each item
// written, the larger of its old and new size for an update, twice that for
// a transactional write.
type wcuRow struct {
	what       string
	calls      string
	miss, hit  int
	missDetail string
	hitDetail  string
	// A hit sent with Idempotency-Retry: ?1: one consistent GetItem of the
	// stored record, no write; hintRead 0 for a protocol without the hint.
	hintRead int
	noHits   bool // the system answers no retries (a floor): hit is meaningless
}

// wcuTable returns the rows for the sizes in s.
func wcuTable(s itemSizes) []wcuRow {
	o, r, ip := units(s.order), units(s.record), units(s.recordInProgress)
	upd := units(max(s.record, s.recordInProgress))
	rows := []wcuRow{
		{what: sysLease, calls: "PutItem (IN_PROGRESS record); TransactWriteItems (Put order, Update record)",
			miss: ip + 2*o + 2*upd, missDetail: fmt.Sprintf("%d + 2×%d + 2×%d", ip, o, upd),
			hit: ip, hitDetail: fmt.Sprintf("failed conditional PutItem: %d", ip), hintRead: readUnits(s.record)},
		{what: sysOptimistic, calls: "TransactWriteItems (Put order, Put COMPLETED record)",
			miss: 2*o + 2*r, missDetail: fmt.Sprintf("2×%d + 2×%d", o, r),
			hit: 2*o + 2*r, hitDetail: fmt.Sprintf("cancelled transaction, billed as written: 2×%d + 2×%d", o, r), hintRead: readUnits(s.record)},
	}
	if s.ptOrder > 0 {
		pip, po := units(s.ptRecordInProgress), units(s.ptOrder)
		pupd := units(max(s.ptRecord, s.ptRecordInProgress))
		rows = append(rows, wcuRow{what: sysPowertools, calls: "PutItem (INPROGRESS record); PutItem (order); UpdateItem (COMPLETED)",
			miss: pip + po + pupd, missDetail: fmt.Sprintf("%d + %d + %d", pip, po, pupd),
			hit: pip, hitDetail: fmt.Sprintf("failed conditional PutItem: %d", pip)})
	}
	if s.itemOrder > 0 {
		it := units(s.itemOrder)
		rows = append(rows, wcuRow{what: sysItem, calls: "PutItem (the order item carrying its record)",
			miss: it, missDetail: fmt.Sprintf("%d (%d B)", it, s.itemOrder),
			hit: it, hitDetail: fmt.Sprintf("failed conditional PutItem, billed on the stored item: %d", it), hintRead: readUnits(s.itemOrder)})
	}
	if s.floorPut > 0 {
		f := units(s.floorPut)
		rows = append(rows, wcuRow{what: sysFloorPut, calls: "PutItem (the order item carrying a record of Item mode's attributes)",
			miss: f, missDetail: fmt.Sprintf("%d (%d B)", f, s.floorPut), noHits: true})
	}
	return rows
}
