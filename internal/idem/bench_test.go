package idem_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/parcelhq/orderservice/internal/ddb"
	"github.com/parcelhq/orderservice/internal/ddbmeter"
	"github.com/parcelhq/orderservice/internal/ddbtest"
	"github.com/parcelhq/orderservice/internal/idem"
)

// benchResponse is about the size and shape of a stored 201 of POST /orders
// (status, headers, an order's JSON).
var benchResponse = []byte("\x01\xc9\x01\x02\x0cContent-Type\x01\x10application/json\x08Location\x01&/orders/ord_s7ocsala4r43apipqrlp2bk7ni" +
	`{"order_id":"ord_s7ocsala4r43apipqrlp2bk7ni","status":"booked","sender":{"name":"Ann Lee","address":{"line1":"1 George St","suburb":"Sydney",` +
	`"state":"NSW","postcode":"2000","country":"AU"}},"receiver":{"name":"Bo Chen","address":{"line1":"9 Queen St","suburb":"Brisbane","state":"QLD",` +
	`"postcode":"4000","country":"AU"}},"parcel":{"weight_kg":2.5,"length_cm":30,"width_cm":20,"height_cm":10,"description":"books"},` +
	`"price":{"amount":"18.45","currency":"AUD"},"created_at":"2026-12-02T14:58:31.323Z"}` + "\n")

// benchFingerprint has the form of idemhttp's (lower-case hex SHA-256).
const benchFingerprint = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"

// BenchmarkGuard reports, besides time, the DynamoDB calls each Do makes
// (ddb-calls/op, counted on the wire side of the SDK) and the write and read
// capacity units its successful calls consumed as DynamoDB Local reports
// them (wcu/op, rcu/op). "miss+write" writes one new item of about an
// order's size (~500 bytes) whose key comes from ddb.KeyRand, as the create
// handler's does; "hit" replays a record committed with such a write, and,
// in the modes that run fn for a hit (optimistic, item), runs it again.
func BenchmarkGuard(b *testing.B) {
	ctx := context.Background()
	m := ddbmeter.New()
	client, err := ddb.NewClient(ctx, func(o *dynamodb.Options) {
		o.APIOptions = append(o.APIOptions, m.Register)
	})
	if err != nil {
		b.Fatal(err)
	}
	ddbtest.Client(b) // fails with instructions when DYNAMODB_ENDPOINT is unset
	table := ddbtest.Table(b, idem.TableDefinition("idem")).Name
	bizDef := idem.ItemTableDefinition(bizTable)
	bizDef.Name = ddbtest.Table(b, bizDef).Name
	orderish := strings.Repeat("x", 460)
	fn := func(context.Context) (idem.Outcome, error) {
		return idem.Outcome{Response: benchResponse, Keep: true}, nil
	}
	withWrite := func(ctx context.Context) (idem.Outcome, error) {
		var k [16]byte
		if _, err := ddb.KeyRand(ctx).Read(k[:]); err != nil {
			return idem.Outcome{}, err
		}
		err := ddb.Write(ctx, client, types.TransactWriteItem{Put: &types.Put{
			TableName: aws.String(bizDef.Name),
			Item: map[string]types.AttributeValue{
				"pk":    &types.AttributeValueMemberS{Value: fmt.Sprintf("ord_%x", k)},
				"order": &types.AttributeValueMemberS{Value: orderish},
			},
			ConditionExpression: aws.String("attribute_not_exists(pk)"),
		}})
		return idem.Outcome{Response: benchResponse, Keep: true}, err
	}
	benchKey := func(r io.Reader) (string, error) {
		var k [16]byte
		if _, err := io.ReadFull(r, k[:]); err != nil {
			return "", err
		}
		return fmt.Sprintf("ord_%x", k), nil
	}

	for _, mode := range []idem.Mode{idem.Lease, idem.Optimistic, idem.Item} {
		for _, kind := range []string{"miss", "miss+write", "hit", "hit-cached"} {
			b.Run(fmt.Sprintf("%s/%s", mode, kind), func(b *testing.B) {
				cfg := idem.Config{Table: table, Mode: mode, Item: idem.ItemConfig{Table: bizDef, NewKey: benchKey}}
				if kind == "hit-cached" {
					cfg.Cache = idem.NewCache(1000, 1<<20)
				}
				g := idem.New(client, cfg)
				do := fn
				if kind != "miss" {
					do = withWrite
				}
				hit := idem.Request{Scope: "bench", Key: fmt.Sprintf("%s-%s-hit-%d", mode, kind, b.N), Fingerprint: benchFingerprint}
				if _, err := g.Do(ctx, hit, do); err != nil {
					b.Fatal(err)
				}
				if _, err := g.Do(ctx, hit, do); err != nil { // fills the cache, if any
					b.Fatal(err)
				}
				before := m.Snapshot()
				run := rand.Text() // miss keys unique across -count runs too
				i := 0
				for b.Loop() {
					r := hit
					if strings.HasPrefix(kind, "miss") {
						i++
						r.Key = fmt.Sprintf("%s-%s-%s-%d", mode, kind, run, i)
					}
					res, err := g.Do(ctx, r, do)
					if err != nil {
						b.Fatal(err)
					}
					if res.Replayed != strings.HasPrefix(kind, "hit") {
						b.Fatalf("Replayed = %v for a %s", res.Replayed, kind)
					}
				}
				made, n := m.Snapshot().Since(before), float64(b.N)
				b.ReportMetric(float64(made.Total())/n, "ddb-calls/op")
				b.ReportMetric(made.WriteUnits/n, "wcu/op")
				b.ReportMetric(made.ReadUnits/n, "rcu/op")
			})
		}
	}
}
