package ddb

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// MaxTransactItems is DynamoDB's limit on the actions in one
// TransactWriteItems call.
const MaxTransactItems = 100

// ErrUnitOfWorkFull is returned by UnitOfWork.Add when the writes would not
// fit in one transaction together with the writes the owner of the unit of
// work reserved for itself.
var ErrUnitOfWorkFull = errors.New("ddb: unit of work full: more writes than one DynamoDB transaction holds")

// ErrUnitOfWorkClosed is returned by UnitOfWork.Add once the owner has taken
// the writes for commit (or abandoned them): a write added then would be lost.
var ErrUnitOfWorkClosed = errors.New("ddb: unit of work already closed")

// UnitOfWork collects DynamoDB writes that must commit in one transaction
// with writes made by whoever created it (for example the idempotency record
// of the request that caused them). Business code enlists its writes with
// Write; it never commits them itself and cannot tell who will.
//
// A UnitOfWork is safe for concurrent use.
type UnitOfWork struct {
	mu       sync.Mutex
	items    []types.TransactWriteItem
	capacity int
	closed   bool
	err      error // the first error Add returned
}

// NewUnitOfWork returns an empty unit of work that accepts up to
// MaxTransactItems-reserved writes; reserved is the number of actions its
// owner will add to the same transaction.
func NewUnitOfWork(reserved int) *UnitOfWork {
	return &UnitOfWork{capacity: MaxTransactItems - reserved}
}

// Add enlists items. It returns ErrUnitOfWorkFull, adding none of them, when
// they do not fit, and ErrUnitOfWorkClosed after Close.
func (u *UnitOfWork) Add(items ...types.TransactWriteItem) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	var err error
	switch {
	case u.closed:
		err = ErrUnitOfWorkClosed
	case len(u.items)+len(items) > u.capacity:
		err = ErrUnitOfWorkFull
	default:
		u.items = append(u.items, items...)
		return nil
	}
	if u.err == nil {
		u.err = err
	}
	return err
}

// Err returns the first error Add returned, or nil. A unit of work that
// refused a write must not be committed, whatever its writer did with the
// error: the owner checks Err after Close.
func (u *UnitOfWork) Err() error {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.err
}

// Close stops the unit of work from accepting writes and returns those it
// holds, in the order they were added. Later calls return the same writes.
func (u *UnitOfWork) Close() []types.TransactWriteItem {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.closed = true
	return u.items
}

type unitOfWorkKey struct{}

// WithUnitOfWork returns a context that carries u: writes made through Write
// with that context join u instead of being sent.
func WithUnitOfWork(ctx context.Context, u *UnitOfWork) context.Context {
	return context.WithValue(ctx, unitOfWorkKey{}, u)
}

// UnitOfWorkFrom returns the unit of work ctx carries, or nil.
func UnitOfWorkFrom(ctx context.Context) *UnitOfWork {
	u, _ := ctx.Value(unitOfWorkKey{}).(*UnitOfWork)
	return u
}

// WriteAPI is the part of the DynamoDB API that Write uses.
type WriteAPI interface {
	PutItem(context.Context, *dynamodb.PutItemInput, ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	UpdateItem(context.Context, *dynamodb.UpdateItemInput, ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
	DeleteItem(context.Context, *dynamodb.DeleteItemInput, ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error)
	TransactWriteItems(context.Context, *dynamodb.TransactWriteItemsInput, ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error)
}

// Write makes one write (exactly one of Put, Update, Delete or
// ConditionCheck set in item).
//
// If ctx carries a UnitOfWork, the write is enlisted there and Write returns
// nil without calling DynamoDB (or the error from UnitOfWork.Add): the write
// takes effect only if and when the owner of the unit of work commits it, and
// its condition is checked then. Otherwise the write is sent at once, and
// Write returns DynamoDB's error as is, so that a failed condition is a
// *types.ConditionalCheckFailedException for a Put, Update or Delete (a lone
// ConditionCheck is sent as a one-action transaction and fails with
// *types.TransactionCanceledException).
func Write(ctx context.Context, api WriteAPI, item types.TransactWriteItem) error {
	if u := UnitOfWorkFrom(ctx); u != nil {
		return u.Add(item)
	}
	var err error
	switch {
	case item.Put != nil:
		p := item.Put
		_, err = api.PutItem(ctx, &dynamodb.PutItemInput{
			TableName: p.TableName, Item: p.Item, ConditionExpression: p.ConditionExpression,
			ExpressionAttributeNames: p.ExpressionAttributeNames, ExpressionAttributeValues: p.ExpressionAttributeValues,
			ReturnValuesOnConditionCheckFailure: p.ReturnValuesOnConditionCheckFailure,
		})
	case item.Update != nil:
		p := item.Update
		_, err = api.UpdateItem(ctx, &dynamodb.UpdateItemInput{
			TableName: p.TableName, Key: p.Key, UpdateExpression: p.UpdateExpression, ConditionExpression: p.ConditionExpression,
			ExpressionAttributeNames: p.ExpressionAttributeNames, ExpressionAttributeValues: p.ExpressionAttributeValues,
			ReturnValuesOnConditionCheckFailure: p.ReturnValuesOnConditionCheckFailure,
		})
	case item.Delete != nil:
		p := item.Delete
		_, err = api.DeleteItem(ctx, &dynamodb.DeleteItemInput{
			TableName: p.TableName, Key: p.Key, ConditionExpression: p.ConditionExpression,
			ExpressionAttributeNames: p.ExpressionAttributeNames, ExpressionAttributeValues: p.ExpressionAttributeValues,
			ReturnValuesOnConditionCheckFailure: p.ReturnValuesOnConditionCheckFailure,
		})
	case item.ConditionCheck != nil:
		_, err = api.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{item}})
	default:
		return fmt.Errorf("ddb: Write: item has no action")
	}
	return err
}
