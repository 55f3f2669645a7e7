package ddbmeter_test

import (
	"context"
	"errors"
	"io"
	"maps"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/parcelhq/orderservice/internal/ddb"
	"github.com/parcelhq/orderservice/internal/ddbmeter"
	"github.com/parcelhq/orderservice/internal/ddbtest"
)

// failFirst answers its first request with a 500 InternalServerError, which
// the SDK retries, and passes every other to the real client.
type failFirst struct {
	next   aws.HTTPClient
	failed atomic.Bool
}

func (f *failFirst) Do(r *http.Request) (*http.Response, error) {
	if f.failed.CompareAndSwap(false, true) {
		return &http.Response{
			StatusCode: http.StatusInternalServerError, Request: r,
			Header: http.Header{"Content-Type": {"application/x-amz-json-1.0"}},
			Body:   io.NopCloser(strings.NewReader(`{"__type":"com.amazonaws.dynamodb.v20120810#InternalServerError","message":"injected"}`)),
		}, nil
	}
	return f.next.Do(r)
}

func TestMeter(t *testing.T) {
	ctx := context.Background()
	ddbtest.Client(t) // fails with instructions when DYNAMODB_ENDPOINT is unset
	table := ddbtest.Table(t, ddb.Table{Name: "meter", PartitionKey: "pk"}).Name
	m := ddbmeter.New()
	var inject *failFirst
	client, err := ddb.NewClient(ctx, func(o *dynamodb.Options) {
		o.APIOptions = append(o.APIOptions, m.Register)
		inject = &failFirst{next: o.HTTPClient}
		inject.failed.Store(true) // armed by the retry case only
		o.HTTPClient = inject
	})
	if err != nil {
		t.Fatal(err)
	}
	put := func(pk string) error {
		_, err := client.PutItem(ctx, &dynamodb.PutItemInput{
			TableName:           aws.String(table),
			Item:                map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: pk}},
			ConditionExpression: aws.String("attribute_not_exists(pk)"),
		})
		return err
	}
	made := func(f func()) ddbmeter.Calls {
		before := m.Snapshot()
		f()
		return m.Snapshot().Since(before)
	}

	t.Run("a put is one operation, one attempt, and the write unit DynamoDB reports", func(t *testing.T) {
		d := made(func() {
			if err := put("a"); err != nil {
				t.Fatal(err)
			}
		})
		if !maps.Equal(d.Ops, map[string]int64{"PutItem": 1}) || d.Attempts != 1 || d.WriteUnits != 1 || d.ReadUnits != 0 {
			t.Errorf("made %+v, want one PutItem, one attempt, 1 write unit", d)
		}
	})
	t.Run("a failed condition is counted and reports no units", func(t *testing.T) {
		d := made(func() {
			var ccf *types.ConditionalCheckFailedException
			if err := put("a"); !errors.As(err, &ccf) {
				t.Fatalf("second put of the key: %v, want a failed condition", err)
			}
		})
		if !maps.Equal(d.Ops, map[string]int64{"PutItem": 1}) || d.Attempts != 1 || d.WriteUnits != 0 {
			t.Errorf("made %+v, want one PutItem, one attempt, no units", d)
		}
	})
	t.Run("a strongly consistent read reports one read unit", func(t *testing.T) {
		d := made(func() {
			_, err := client.GetItem(ctx, &dynamodb.GetItemInput{
				TableName: aws.String(table), ConsistentRead: aws.Bool(true),
				Key: map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: "a"}},
			})
			if err != nil {
				t.Fatal(err)
			}
		})
		if !maps.Equal(d.Ops, map[string]int64{"GetItem": 1}) || d.ReadUnits != 1 || d.WriteUnits != 0 {
			t.Errorf("made %+v, want one GetItem and 1 read unit", d)
		}
	})
	t.Run("a retried operation is one operation and two attempts", func(t *testing.T) {
		inject.failed.Store(false)
		d := made(func() {
			if err := put("b"); err != nil {
				t.Fatal(err)
			}
		})
		if !inject.failed.Load() {
			t.Fatal("the injected failure was not sent")
		}
		if !maps.Equal(d.Ops, map[string]int64{"PutItem": 1}) || d.Attempts != 2 || d.WriteUnits != 1 {
			t.Errorf("made %+v, want one PutItem in two attempts, 1 write unit", d)
		}
	})
	t.Run("calls add up and subtract by operation", func(t *testing.T) {
		var sum ddbmeter.Calls
		d := ddbmeter.Calls{Ops: map[string]int64{"PutItem": 2, "GetItem": 1}, Attempts: 4, WriteUnits: 2, ReadUnits: 0.5}
		sum.Add(d)
		sum.Add(d)
		if sum.Total() != 6 || sum.Attempts != 8 || sum.WriteUnits != 4 || sum.ReadUnits != 1 {
			t.Errorf("twice %+v = %+v", d, sum)
		}
		if got := sum.Since(d); !maps.Equal(got.Ops, d.Ops) || got.Attempts != 4 {
			t.Errorf("sum since d = %+v, want d", got)
		}
		if got := d.Since(d); len(got.Ops) != 0 || got.Total() != 0 {
			t.Errorf("d since d = %+v, want nothing", got)
		}
	})
}
