package orders

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/parcelhq/orderservice/internal/ddb"
)

// ErrExists is returned by Store.Create, sent directly, when an order with
// the same id is already stored.
var ErrExists = errors.New("orders: order already exists")

// ErrNotFound is returned by Store.Get when no order has the id.
var ErrNotFound = errors.New("orders: order not found")

// keyAttr is the orders table's partition key.
const keyAttr = "order_id"

// createdAtAttr is an attribute every order's item has (see Get).
const createdAtAttr = "created_at"

// TableDefinition returns the orders table named name: partition key
// order_id (a string), no TTL: orders are kept.
func TableDefinition(name string) ddb.Table {
	return ddb.Table{Name: name, PartitionKey: keyAttr}
}

// StoreAPI is the part of the DynamoDB API the Store uses: ddb.Write's
// writes and GetItem. *dynamodb.Client satisfies it.
type StoreAPI interface {
	ddb.WriteAPI
	GetItem(context.Context, *dynamodb.GetItemInput, ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
}

// Store keeps orders in one DynamoDB table, one item per order. An item holds
// the order's fields under their JSON names, except that the parcel's weight
// and dimensions are whole grams and millimetres (weight_g, length_mm, ...)
// and created_at is an RFC 3339 string with nanoseconds, so that an order
// read back is equal to the one stored.
type Store struct {
	api   StoreAPI
	table string
}

// NewStore returns a Store on the table named table.
func NewStore(api StoreAPI, table string) *Store {
	return &Store{api: api, table: table}
}

// Create stores o, on the condition that no order with o.ID exists: it never
// overwrites.
//
// The write goes through ddb.Write. When ctx carries a ddb.UnitOfWork the
// put is only enlisted there and Create returns nil (or the unit's error,
// such as ddb.ErrUnitOfWorkFull); its condition is checked when the unit's
// owner commits, and a clash then fails that transaction. Otherwise the put
// is sent at once, and Create returns an error wrapping ErrExists when the
// id is taken, or DynamoDB's error.
func (s *Store) Create(ctx context.Context, o Order) error {
	err := ddb.Write(ctx, s.api, types.TransactWriteItem{Put: &types.Put{
		TableName:                aws.String(s.table),
		Item:                     orderItem(o),
		ConditionExpression:      aws.String("attribute_not_exists(#id)"),
		ExpressionAttributeNames: map[string]string{"#id": keyAttr},
	}})
	var ccf *types.ConditionalCheckFailedException
	switch {
	case errors.As(err, &ccf):
		return fmt.Errorf("%w: %s", ErrExists, o.ID)
	case err != nil:
		return fmt.Errorf("orders: put order %s: %w", o.ID, err)
	}
	return nil
}

// Get returns the order with the given id, read with strong consistency. It
// returns an error wrapping ErrNotFound when there is none, or DynamoDB's
// error, or an error when the stored item cannot be decoded.
//
// Other components may keep items of their own at an order id in the table
// (and attributes of their own on an order's item, which Get ignores); an
// item without an order's created_at is not an order, and Get reports
// ErrNotFound for it.
func (s *Store) Get(ctx context.Context, id string) (Order, error) {
	out, err := s.api.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      aws.String(s.table),
		Key:            map[string]types.AttributeValue{keyAttr: &types.AttributeValueMemberS{Value: id}},
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return Order{}, fmt.Errorf("orders: get order %s: %w", id, err)
	}
	if _, isOrder := out.Item[createdAtAttr]; !isOrder {
		return Order{}, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	var o Order
	if err := attributevalue.UnmarshalMap(out.Item, &o); err != nil {
		return Order{}, fmt.Errorf("orders: decode order %s: %w", id, err)
	}
	return o, nil
}
