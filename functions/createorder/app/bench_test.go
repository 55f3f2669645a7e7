package app

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/parcelhq/orderservice/internal/ddbtest"
	"github.com/parcelhq/orderservice/internal/idem"
	"github.com/parcelhq/orderservice/internal/idem/idemhttp"
	"github.com/parcelhq/orderservice/internal/orders"
	"github.com/parcelhq/orderservice/internal/orders/orderstest"
)

// BenchmarkCreate measures one POST /orders that creates an order, through
// LambdaHandler(New(...)) with a payload 2.0 event as the bootstrap serves
// it, in each guard mode, against DynamoDB Local; and, as the floor it is
// compared with, a loop making only the DynamoDB calls that mode makes for a
// create (the same operations, items of the same shape), on the same client.
//
// Besides ns/op (mostly DynamoDB Local's time) it reports cpu-us/op: this
// process's CPU time (user and system, GC included) per create, the figure
// issue 11 compares with the floor's. Run it alone on a quiet machine:
//
//	go test -run '^$' -bench Create -benchmem ./functions/createorder/app
func BenchmarkCreate(b *testing.B) {
	ctx := context.Background()
	client := ddbtest.Client(b)
	cfg := Config{OrdersTable: "orders", IdempotencyTable: "idempotency", Retention: 24 * time.Hour, AuthMode: AuthNone}
	tables := cfg.Tables()
	cfg.OrdersTable = ddbtest.Table(b, tables[0]).Name
	cfg.IdempotencyTable = ddbtest.Table(b, tables[1]).Name

	for _, mode := range []idem.Mode{idem.Lease, idem.Optimistic, idem.Item} {
		b.Run(mode.String()+"/app", func(b *testing.B) {
			c := cfg
			c.Mode = mode
			h, err := New(ctx, c, client, NewLogger(io.Discard, "INFO"))
			if err != nil {
				b.Fatal(err)
			}
			serve := LambdaHandler(h)
			measureCPU(b, func() { invoke(b, serve, benchEvent(benchKey()), false) })
		})
		// A retry reaching another container: a handler of its own, whose
		// cache never saw the key, answers from the table.
		b.Run(mode.String()+"/replay-uncached", func(b *testing.B) {
			c := cfg
			c.Mode = mode
			first, err := New(ctx, c, client, NewLogger(io.Discard, "INFO"))
			if err != nil {
				b.Fatal(err)
			}
			ev := benchEvent(benchKey())
			invoke(b, LambdaHandler(first), ev, false)
			other, err := New(ctx, c, client, NewLogger(io.Discard, "INFO"), WithGuardConfig(func(g *idem.Config) { g.Cache = nil }))
			if err != nil {
				b.Fatal(err)
			}
			serve := LambdaHandler(other)
			measureCPU(b, func() { invoke(b, serve, ev, true) })
		})
		if mode == idem.Lease {
			// A retry answered from this container's cache: everything but
			// DynamoDB and the order handler (the adapter, the request log,
			// the middleware and its fingerprint), in either mode alike.
			b.Run("replay-cached", func(b *testing.B) {
				h, err := New(ctx, cfg, client, NewLogger(io.Discard, "INFO"))
				if err != nil {
					b.Fatal(err)
				}
				serve := LambdaHandler(h)
				ev := benchEvent(benchKey())
				invoke(b, serve, ev, false)
				measureCPU(b, func() { invoke(b, serve, ev, true) })
			})
		}
		b.Run(mode.String()+"/floor", func(b *testing.B) {
			f := newFloor(b, client, cfg)
			measureCPU(b, func() {
				if err := f.create(ctx, mode); err != nil {
					b.Fatal(err)
				}
			})
		})
	}
}

// invoke serves ev as one Lambda invocation (whose context has a deadline)
// and fails b unless the answer is 201, and when replayed, a replay.
func invoke(b *testing.B, serve func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error), ev events.APIGatewayV2HTTPRequest, replayed bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := serve(ctx, ev)
	if err != nil || resp.StatusCode != http.StatusCreated || replayed && resp.Headers["Idempotent-Replayed"] != "true" {
		b.Fatalf("invoke (replay expected: %v): %d %v: %v %s", replayed, resp.StatusCode, err, resp.Headers, resp.Body)
	}
}

// measureCPU runs op in b.Loop and reports this process's CPU time per op.
func measureCPU(b *testing.B, op func()) {
	b.ReportAllocs()
	op() // warm the connection and the caches of the first call
	start := processCPU()
	for b.Loop() {
		op()
	}
	b.ReportMetric(float64((processCPU()-start).Microseconds())/float64(b.N), "cpu-us/op")
}

func processCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func benchKey() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// benchEvent is the payload 2.0 event API Gateway sends for POST /orders
// with the given key and no authorizer.
func benchEvent(key string) events.APIGatewayV2HTTPRequest {
	now := time.Now().UTC()
	const route = "POST /orders"
	return events.APIGatewayV2HTTPRequest{
		Version: "2.0", RouteKey: route, RawPath: "/orders", Body: orderstest.JSON,
		Headers: map[string]string{"content-type": "application/json", "user-agent": "bench", "idempotency-key": key},
		RequestContext: events.APIGatewayV2HTTPRequestContext{
			AccountID: "123456789012", APIID: "local", DomainName: "local.execute-api.us-east-1.amazonaws.com",
			DomainPrefix: "local", Stage: "$default", RouteKey: route, RequestID: key,
			Time: now.Format("02/Jan/2006:15:04:05 -0700"), TimeEpoch: now.UnixMilli(),
			HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: "POST", Path: "/orders", Protocol: "HTTP/1.1", SourceIP: "127.0.0.1", UserAgent: "bench"},
		},
	}
}

// floor makes, per create, only the DynamoDB calls a guarded create makes,
// with items like the real ones, built once.
type floor struct {
	api         *dynamodb.Client
	orders      string
	idem        string
	order       map[string]types.AttributeValue
	response    []byte
	fingerprint string
}

func newFloor(b testing.TB, api *dynamodb.Client, cfg Config) *floor {
	req, err := orders.DecodeOrder([]byte(orderstest.JSON))
	if err != nil {
		b.Fatal(err)
	}
	o := orders.Book("o-floor", req, time.Now())
	item, err := attributevalue.MarshalMap(o)
	if err != nil {
		b.Fatal(err)
	}
	return &floor{api: api, orders: cfg.OrdersTable, idem: cfg.IdempotencyTable, order: item,
		response: make([]byte, 640), fingerprint: benchKey() + benchKey()}
}

func (f *floor) create(ctx context.Context, mode idem.Mode) error {
	id, owner := benchKey()+benchKey(), benchKey()
	now := time.Now()
	order := make(map[string]types.AttributeValue, len(f.order))
	for k, v := range f.order {
		order[k] = v
	}
	order["order_id"] = &types.AttributeValueMemberS{Value: benchKey()}
	putOrder := &types.Put{
		TableName: aws.String(f.orders), Item: order,
		ConditionExpression: aws.String("attribute_not_exists(#id)"), ExpressionAttributeNames: map[string]string{"#id": "order_id"},
	}
	n := func(i int64) types.AttributeValue {
		return &types.AttributeValueMemberN{Value: strconv.FormatInt(i, 10)}
	}
	s := func(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }
	switch mode {
	case idem.Item:
		// The order item carrying the record, under Item mode's condition.
		order["idem_fp"] = &types.AttributeValueMemberB{Value: []byte(f.fingerprint[:32])}
		order["idem_data"] = &types.AttributeValueMemberB{Value: f.response}
		order["idem_exp"] = n(now.Add(24 * time.Hour).Unix())
		order["idem_owner"] = &types.AttributeValueMemberB{Value: []byte(owner[:16])}
		_, err := f.api.PutItem(ctx, &dynamodb.PutItemInput{
			TableName: aws.String(f.orders), Item: order,
			ConditionExpression:                 aws.String("attribute_not_exists(#pk) OR (attribute_exists(#ttl) AND #exp < :now_s)"),
			ExpressionAttributeNames:            map[string]string{"#pk": "order_id", "#ttl": idem.AttrItemTTL, "#exp": "idem_exp"},
			ExpressionAttributeValues:           map[string]types.AttributeValue{":now_s": n(now.Unix())},
			ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
		})
		return err
	case idem.Optimistic:
		_, err := f.api.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{
			ClientRequestToken: aws.String(owner),
			TransactItems: []types.TransactWriteItem{{Put: putOrder}, {Put: &types.Put{
				TableName: aws.String(f.idem),
				Item: map[string]types.AttributeValue{
					"id": s(id), "status": s("COMPLETED"), "fingerprint": s(f.fingerprint), "owner": s(owner),
					"data": &types.AttributeValueMemberB{Value: f.response}, "expires_at": n(now.Add(24 * time.Hour).Unix()),
				},
				ConditionExpression:                 aws.String("attribute_not_exists(#id)"),
				ExpressionAttributeNames:            map[string]string{"#id": "id"},
				ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
			}}},
		})
		return err
	}
	_, err := f.api.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: aws.String(f.idem),
		Item: map[string]types.AttributeValue{
			"id": s(id), "status": s("IN_PROGRESS"), "fingerprint": s(f.fingerprint), "owner": s(owner),
			"lease_until": n(now.Add(30 * time.Second).UnixMilli()), "expires_at": n(now.Add(24 * time.Hour).Unix()),
		},
		ConditionExpression:                 aws.String("attribute_not_exists(#id)"),
		ExpressionAttributeNames:            map[string]string{"#id": "id"},
		ReturnValues:                        types.ReturnValueAllOld,
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	if err != nil {
		return fmt.Errorf("acquire: %w", err)
	}
	_, err = f.api.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{
		ClientRequestToken: aws.String(owner),
		TransactItems: []types.TransactWriteItem{{Put: putOrder}, {Update: &types.Update{
			TableName: aws.String(f.idem), Key: map[string]types.AttributeValue{"id": s(id)},
			UpdateExpression:         aws.String("SET #status = :completed, #data = :data, #exp = :exp REMOVE #lease"),
			ConditionExpression:      aws.String("#owner = :me AND #status = :in_progress"),
			ExpressionAttributeNames: map[string]string{"#status": "status", "#data": "data", "#exp": "expires_at", "#lease": "lease_until", "#owner": "owner"},
			ExpressionAttributeValues: map[string]types.AttributeValue{
				":completed": s("COMPLETED"), ":data": &types.AttributeValueMemberB{Value: f.response},
				":exp": n(now.Add(24 * time.Hour).Unix()), ":me": s(owner), ":in_progress": s("IN_PROGRESS"),
			},
			ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
		}}},
	})
	return err
}

// BenchmarkRequestLog measures the request log alone: the stats a guarded
// create collects and its JSON line with the EMF metrics, around a handler
// that does nothing else.
func BenchmarkRequestLog(b *testing.B) {
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		countEvent(r.Context(), idem.Event{Kind: idem.Miss})
		countEvent(r.Context(), idem.Event{Kind: idem.Committed})
		noteOutcome(r, idemhttp.OutcomeStored, nil)
		w.WriteHeader(http.StatusCreated)
	})
	h := logRequests(NewLogger(io.Discard, "INFO"), next)
	r := httptest.NewRequest(http.MethodPost, "/orders", nil)
	w := httptest.NewRecorder()
	b.ReportAllocs()
	for b.Loop() {
		h.ServeHTTP(w, r)
	}
}
