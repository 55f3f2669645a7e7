package idem_test

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go/middleware"

	"github.com/parcelhq/orderservice/internal/ddb"
	"github.com/parcelhq/orderservice/internal/ddbtest"
	"github.com/parcelhq/orderservice/internal/idem"
)

// callCounter counts DynamoDB operations (not HTTP attempts: the Initialize
// step runs once per operation, before retries).
type callCounter struct{ n atomic.Int64 }

func (c *callCounter) register(stack *middleware.Stack) error {
	return stack.Initialize.Add(middleware.InitializeMiddlewareFunc("countDynamoDBCalls",
		func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
			c.n.Add(1)
			return next.HandleInitialize(ctx, in)
		}), middleware.Before)
}

// BenchmarkGuard reports, besides time, the DynamoDB calls each Do makes
// (ddb-calls/op), counted on the wire side of the SDK.
func BenchmarkGuard(b *testing.B) {
	ctx := context.Background()
	var calls callCounter
	client, err := ddb.NewClient(ctx, func(o *dynamodb.Options) {
		o.APIOptions = append(o.APIOptions, calls.register)
	})
	if err != nil {
		b.Fatal(err)
	}
	ddbtest.Client(b) // fails with instructions when DYNAMODB_ENDPOINT is unset
	table := ddbtest.Table(b, idem.TableDefinition("idem")).Name
	resp := []byte(`{"id":"o-123","status":"CREATED","total":{"amount":1299,"currency":"AUD"}}`)
	fn := func(context.Context) (idem.Outcome, error) { return idem.Outcome{Response: resp, Keep: true}, nil }
	biz := ddbtest.Table(b, bizTable).Name
	var orders atomic.Int64
	withWrite := func(ctx context.Context) (idem.Outcome, error) {
		err := ddb.Write(ctx, client, types.TransactWriteItem{Put: &types.Put{
			TableName:           aws.String(biz),
			Item:                map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: fmt.Sprint("order-", orders.Add(1))}},
			ConditionExpression: aws.String("attribute_not_exists(pk)"),
		}})
		return idem.Outcome{Response: resp, Keep: true}, err
	}

	for _, mode := range []idem.Mode{idem.Lease, idem.Optimistic} {
		for _, kind := range []string{"miss", "miss+write", "hit", "hit-cached"} {
			b.Run(fmt.Sprintf("%s/%s", mode, kind), func(b *testing.B) {
				cfg := idem.Config{Table: table, Mode: mode}
				if kind == "hit-cached" {
					cfg.Cache = idem.NewCache(1000, 1<<20)
				}
				g := idem.New(client, cfg)
				hit := idem.Request{Scope: "bench", Key: fmt.Sprintf("%s-%s-hit", mode, kind), Fingerprint: "fp"}
				if _, err := g.Do(ctx, hit, fn); err != nil {
					b.Fatal(err)
				}
				if _, err := g.Do(ctx, hit, fn); err != nil { // fills the cache, if any
					b.Fatal(err)
				}
				calls.n.Store(0)
				i := 0
				for b.Loop() {
					r := hit
					do := fn
					if kind == "miss+write" {
						do = withWrite
					}
					if kind == "miss" || kind == "miss+write" {
						i++
						r.Key = fmt.Sprintf("%s-%s-%d-%d", mode, kind, b.N, i)
					}
					res, err := g.Do(ctx, r, do)
					if err != nil {
						b.Fatal(err)
					}
					if res.Replayed != strings.HasPrefix(kind, "hit") {
						b.Fatalf("Replayed = %v for a %s", res.Replayed, kind)
					}
				}
				b.ReportMetric(float64(calls.n.Load())/float64(b.N), "ddb-calls/op")
			})
		}
	}
}
