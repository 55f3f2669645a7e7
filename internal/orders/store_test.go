package orders_test

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/parcelhq/orderservice/internal/ddb"
	"github.com/parcelhq/orderservice/internal/ddbtest"
	"github.com/parcelhq/orderservice/internal/orders"
)

// newStore returns a store on a fresh orders table of DynamoDB Local, and
// the client under it.
func newStore(t *testing.T) (*orders.Store, *dynamodb.Client, string) {
	t.Helper()
	client := ddbtest.Client(t)
	tbl := ddbtest.Table(t, orders.TableDefinition("orders"))
	return orders.NewStore(client, tbl.Name), client, tbl.Name
}

// sampleOrder returns a booked order with the given id; its numbers and time
// are the awkward kind: a fractional weight and dimension, and nanoseconds.
func sampleOrder(t *testing.T, id string) orders.Order {
	t.Helper()
	req := orders.Request{
		Sender:   orders.Party{Name: "Ann Lee", Address: orders.Address{Line1: "1 George St", Line2: "Level 2", Suburb: "Sydney", State: "NSW", Postcode: "2000", Country: "AU"}},
		Receiver: orders.Party{Name: "Bo Chen", Address: orders.Address{Line1: "9 Queen St", Suburb: "Brisbane", State: "QLD", Postcode: "4000", Country: "AU"}},
		Parcel:   orders.Parcel{Weight: 2500, Length: 305, Width: 200, Height: 100, Description: "books"},
	}
	o := orders.Book(id, req, time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC))
	o.CreatedAt = o.CreatedAt.Add(123456789) // a store must keep whatever precision it is given
	return o
}

func mustID(t *testing.T) string {
	t.Helper()
	id, err := orders.NewID()
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func TestTableDefinition(t *testing.T) {
	t.Parallel()
	got := orders.TableDefinition("orders-prod")
	if got != (ddb.Table{Name: "orders-prod", PartitionKey: "order_id"}) {
		t.Fatalf("TableDefinition = %+v, want orders-prod keyed by order_id without TTL", got)
	}
}

func TestStore(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store, client, table := newStore(t)

	t.Run("an order read back encodes to the same bytes as the one stored", func(t *testing.T) {
		t.Parallel()
		o := sampleOrder(t, mustID(t))
		if err := store.Create(ctx, o); err != nil {
			t.Fatalf("Create: %v", err)
		}
		got, err := store.Get(ctx, o.ID)
		if err != nil {
			t.Fatalf("Get: %v", err)
		}
		if want, have := orders.EncodeOrder(o), orders.EncodeOrder(got); !bytes.Equal(want, have) {
			t.Fatalf("round trip changed the order:\nstored %s\nread   %s", want, have)
		}
	})

	t.Run("creating an order whose id exists fails with ErrExists and keeps the original", func(t *testing.T) {
		t.Parallel()
		first := sampleOrder(t, mustID(t))
		if err := store.Create(ctx, first); err != nil {
			t.Fatalf("Create: %v", err)
		}
		second := first
		second.Receiver.Name = "Mallory"
		second.Price.Amount = "0.01"
		if err := store.Create(ctx, second); !errors.Is(err, orders.ErrExists) {
			t.Fatalf("second Create: err = %v, want ErrExists", err)
		}
		got, err := store.Get(ctx, first.ID)
		if err != nil {
			t.Fatalf("Get: %v", err)
		}
		if !bytes.Equal(orders.EncodeOrder(got), orders.EncodeOrder(first)) {
			t.Fatalf("the original was changed: %s", orders.EncodeOrder(got))
		}
	})

	t.Run("an order created in a unit of work is stored only when the unit is committed", func(t *testing.T) {
		t.Parallel()
		o := sampleOrder(t, mustID(t))
		u := ddb.NewUnitOfWork(1)
		if err := store.Create(ddb.WithUnitOfWork(ctx, u), o); err != nil {
			t.Fatalf("Create in unit of work: %v", err)
		}
		if _, err := store.Get(ctx, o.ID); !errors.Is(err, orders.ErrNotFound) {
			t.Fatalf("before commit Get: err = %v, want ErrNotFound", err)
		}
		items := u.Close()
		if len(items) != 1 || items[0].Put == nil || aws.ToString(items[0].Put.TableName) != table {
			t.Fatalf("unit of work holds %+v, want one put on %s", items, table)
		}
		if _, err := client.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: items}); err != nil {
			t.Fatalf("commit: %v", err)
		}
		got, err := store.Get(ctx, o.ID)
		if err != nil {
			t.Fatalf("after commit Get: %v", err)
		}
		if !bytes.Equal(orders.EncodeOrder(got), orders.EncodeOrder(o)) {
			t.Fatalf("committed order differs: %s", orders.EncodeOrder(got))
		}
	})

	t.Run("an enlisted create of an existing id fails the transaction and keeps the original", func(t *testing.T) {
		t.Parallel()
		o := sampleOrder(t, mustID(t))
		if err := store.Create(ctx, o); err != nil {
			t.Fatalf("Create: %v", err)
		}
		u := ddb.NewUnitOfWork(0)
		clash := o
		clash.Status = "cancelled"
		if err := store.Create(ddb.WithUnitOfWork(ctx, u), clash); err != nil {
			t.Fatalf("enlist: %v", err)
		}
		_, err := client.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: u.Close()})
		var tce *types.TransactionCanceledException
		if !errors.As(err, &tce) {
			t.Fatalf("commit: err = %v, want TransactionCanceledException", err)
		}
		got, err := store.Get(ctx, o.ID)
		if err != nil || got.Status != orders.StatusBooked {
			t.Fatalf("Get = %+v, %v; want the booked original", got, err)
		}
	})

	t.Run("an item of another component at an order id is not an order: ErrNotFound", func(t *testing.T) {
		t.Parallel()
		id := mustID(t)
		_, err := client.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(table), Item: map[string]types.AttributeValue{
			"order_id":  &types.AttributeValueMemberS{Value: id},
			"other_tag": &types.AttributeValueMemberS{Value: "not an order"},
		}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := store.Get(ctx, id); !errors.Is(err, orders.ErrNotFound) {
			t.Fatalf("Get: err = %v, want ErrNotFound", err)
		}
	})

	t.Run("an order's item with attributes of another component reads back as the order", func(t *testing.T) {
		t.Parallel()
		o := sampleOrder(t, mustID(t))
		if err := store.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
		_, err := client.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: aws.String(table),
			Key:              map[string]types.AttributeValue{"order_id": &types.AttributeValueMemberS{Value: o.ID}},
			UpdateExpression: aws.String("SET other_tag = :v"), ExpressionAttributeValues: map[string]types.AttributeValue{":v": &types.AttributeValueMemberB{Value: []byte("x")}}})
		if err != nil {
			t.Fatal(err)
		}
		got, err := store.Get(ctx, o.ID)
		if err != nil || !bytes.Equal(orders.EncodeOrder(got), orders.EncodeOrder(o)) {
			t.Fatalf("Get = %s, %v; want the order", orders.EncodeOrder(got), err)
		}
	})

	t.Run("getting an unknown id fails with ErrNotFound", func(t *testing.T) {
		t.Parallel()
		if _, err := store.Get(ctx, mustID(t)); !errors.Is(err, orders.ErrNotFound) {
			t.Fatalf("Get: err = %v, want ErrNotFound", err)
		}
	})
}
