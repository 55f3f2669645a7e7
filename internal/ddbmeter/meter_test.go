package ddbmeter_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/parcelhq/orderservice/internal/ddb"
	"github.com/parcelhq/orderservice/internal/ddbmeter"
	"github.com/parcelhq/orderservice/internal/ddbtest"
)

// failFirst answers the first request after arm with a 500
// InternalServerError, which the SDK retries, and passes every other to the
// real client.
type failFirst struct {
	next  aws.HTTPClient
	armed atomic.Bool
}

func (f *failFirst) arm() { f.armed.Store(true) }

func (f *failFirst) Do(r *http.Request) (*http.Response, error) {
	if f.armed.CompareAndSwap(true, false) {
		return &http.Response{
			StatusCode: http.StatusInternalServerError, Request: r,
			Header: http.Header{"Content-Type": {"application/x-amz-json-1.0"}},
			Body:   io.NopCloser(strings.NewReader(`{"__type":"com.amazonaws.dynamodb.v20120810#InternalServerError","message":"injected"}`)),
		}, nil
	}
	return f.next.Do(r)
}

func s(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }

func TestMeter(t *testing.T) {
	ctx := context.Background()
	ddbtest.Client(t) // fails with instructions when DYNAMODB_ENDPOINT is unset
	table := aws.String(ddbtest.Table(t, ddb.Table{Name: "meter", PartitionKey: "pk"}).Name)
	other := aws.String(ddbtest.Table(t, ddb.Table{Name: "meter-other", PartitionKey: "pk"}).Name)
	m := ddbmeter.New()
	var inject *failFirst
	client, err := ddb.NewClient(ctx, func(o *dynamodb.Options) {
		o.APIOptions = append(o.APIOptions, m.Register)
		inject = &failFirst{next: o.HTTPClient}
		o.HTTPClient = inject
	})
	if err != nil {
		t.Fatal(err)
	}
	newItem := func(pk string) map[string]types.AttributeValue { return map[string]types.AttributeValue{"pk": s(pk)} }
	put := func(pk string) error {
		_, err := client.PutItem(ctx, &dynamodb.PutItemInput{
			TableName: table, Item: newItem(pk), ConditionExpression: aws.String("attribute_not_exists(pk)"),
		})
		return err
	}
	// made returns what the meter counted while f ran; setup runs before,
	// uncounted.
	made := func(t *testing.T, setup, f func() error) ddbmeter.Calls {
		t.Helper()
		if setup != nil {
			if err := setup(); err != nil {
				t.Fatalf("setup: %v", err)
			}
		}
		before := m.Snapshot()
		if err := f(); err != nil {
			t.Fatal(err)
		}
		return m.Snapshot().Since(before)
	}

	for _, tc := range []struct {
		name   string
		setup  func(pk string) error
		call   func(pk string) error
		op     string
		writes float64
		reads  float64
	}{
		{"a put is one operation, one attempt, and the write unit DynamoDB reports", nil, put, "PutItem", 1, 0},
		{"a failed condition is counted and reports no units", put, func(pk string) error {
			var ccf *types.ConditionalCheckFailedException
			if err := put(pk); !errors.As(err, &ccf) {
				return fmt.Errorf("second put of the key: %v, want a failed condition", err)
			}
			return nil
		}, "PutItem", 0, 0},
		{"an update reports its write unit", put, func(pk string) error {
			_, err := client.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: table, Key: newItem(pk),
				UpdateExpression: aws.String("SET n = :n"), ExpressionAttributeValues: map[string]types.AttributeValue{":n": s("1")}})
			return err
		}, "UpdateItem", 1, 0},
		{"a delete reports its write unit", put, func(pk string) error {
			_, err := client.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: table, Key: newItem(pk)})
			return err
		}, "DeleteItem", 1, 0},
		{"a strongly consistent read reports one read unit", put, func(pk string) error {
			_, err := client.GetItem(ctx, &dynamodb.GetItemInput{TableName: table, Key: newItem(pk), ConsistentRead: aws.Bool(true)})
			return err
		}, "GetItem", 0, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pk := t.Name()
			var setup func() error
			if tc.setup != nil {
				setup = func() error { return tc.setup(pk) }
			}
			d := made(t, setup, func() error { return tc.call(pk) })
			if !maps.Equal(d.Ops, map[string]int64{tc.op: 1}) || d.Attempts != 1 || d.WriteUnits != tc.writes || d.ReadUnits != tc.reads {
				t.Errorf("made %+v, want one %s in one attempt, %v write and %v read units", d, tc.op, tc.writes, tc.reads)
			}
		})
	}
	t.Run("a transaction on two tables adds up the units reported for each", func(t *testing.T) {
		var out *dynamodb.TransactWriteItemsOutput
		d := made(t, nil, func() (err error) {
			out, err = client.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{
				{Put: &types.Put{TableName: table, Item: newItem(t.Name())}},
				{Put: &types.Put{TableName: other, Item: newItem(t.Name())}},
			}})
			return err
		})
		var reported float64
		for _, c := range out.ConsumedCapacity {
			reported += aws.ToFloat64(c.CapacityUnits)
		}
		if len(out.ConsumedCapacity) != 2 || reported <= 0 {
			t.Fatalf("DynamoDB reported %+v, want one entry per table (the meter asks for TOTAL)", out.ConsumedCapacity)
		}
		if !maps.Equal(d.Ops, map[string]int64{"TransactWriteItems": 1}) || d.Attempts != 1 || d.WriteUnits != reported {
			t.Errorf("made %+v, want one TransactWriteItems in one attempt, %v write units", d, reported)
		}
	})
	t.Run("a retried operation is one operation and two attempts", func(t *testing.T) {
		d := made(t, nil, func() error {
			inject.arm()
			err := put(t.Name())
			if inject.armed.Load() {
				return errors.New("the injected failure was not sent")
			}
			return err
		})
		if !maps.Equal(d.Ops, map[string]int64{"PutItem": 1}) || d.Attempts != 2 || d.WriteUnits != 1 {
			t.Errorf("made %+v, want one PutItem in two attempts, 1 write unit", d)
		}
	})
	t.Run("concurrent operations are all counted", func(t *testing.T) {
		const n = 16
		d := made(t, nil, func() error {
			var wg sync.WaitGroup
			errs := make([]error, n)
			for i := range n {
				wg.Go(func() { errs[i] = put(fmt.Sprintf("%s-%d", t.Name(), i)) })
			}
			wg.Wait()
			return errors.Join(errs...)
		})
		if d.Ops["PutItem"] != n || d.Attempts != n || d.WriteUnits != n {
			t.Errorf("made %+v, want %d PutItem, attempts and write units", d, n)
		}
	})
}

func TestCalls(t *testing.T) {
	d := ddbmeter.Calls{Ops: map[string]int64{"PutItem": 2, "GetItem": 1}, Attempts: 4, WriteUnits: 2, ReadUnits: 0.5}
	t.Run("calls add up by operation", func(t *testing.T) {
		var sum ddbmeter.Calls
		sum.Add(d)
		sum.Add(d)
		if !maps.Equal(sum.Ops, map[string]int64{"PutItem": 4, "GetItem": 2}) || sum.Total() != 6 || sum.Attempts != 8 || sum.WriteUnits != 4 || sum.ReadUnits != 1 {
			t.Errorf("twice %+v = %+v", d, sum)
		}
		if got := sum.Since(d); !maps.Equal(got.Ops, d.Ops) || got.Attempts != 4 || got.WriteUnits != 2 || got.ReadUnits != 0.5 {
			t.Errorf("the sum since d = %+v, want d", got)
		}
	})
	t.Run("an operation whose count did not change is absent from a difference", func(t *testing.T) {
		later := ddbmeter.Calls{Ops: map[string]int64{"PutItem": 3, "GetItem": 1}, Attempts: 5}
		if got := later.Since(d); !maps.Equal(got.Ops, map[string]int64{"PutItem": 1}) || got.Total() != 1 {
			t.Errorf("since = %+v, want one PutItem only", got)
		}
	})
	t.Run("a snapshot is a copy the meter does not change", func(t *testing.T) {
		m := ddbmeter.New()
		snap := m.Snapshot()
		snap.Ops["PutItem"] = 9
		if got := m.Snapshot(); got.Total() != 0 {
			t.Errorf("the meter counted %+v after its snapshot was changed", got)
		}
	})
}
