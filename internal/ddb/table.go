package ddb

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// Table describes a DynamoDB table the way this service uses it: a string
// partition key, no sort key, on-demand capacity, and optionally a TTL
// attribute (a Number holding epoch seconds).
//
// A Table value is the single definition from which local tables, test
// tables and the checks against template.yaml are made.
type Table struct {
	Name         string
	PartitionKey string
	TTLAttribute string // empty: no TTL
}

// WithName returns a copy of t with another table name.
func (t Table) WithName(name string) Table { t.Name = name; return t }

// WithoutTTL returns a copy of t that has no TTL attribute, for tables whose
// expired items must stay readable (real DynamoDB may delete them up to 48
// hours after expiry).
func (t Table) WithoutTTL() Table { t.TTLAttribute = ""; return t }

// CreateTableInput returns the CreateTable request for t.
func (t Table) CreateTableInput() *dynamodb.CreateTableInput {
	return &dynamodb.CreateTableInput{
		TableName:   aws.String(t.Name),
		BillingMode: types.BillingModePayPerRequest,
		AttributeDefinitions: []types.AttributeDefinition{
			{AttributeName: aws.String(t.PartitionKey), AttributeType: types.ScalarAttributeTypeS},
		},
		KeySchema: []types.KeySchemaElement{
			{AttributeName: aws.String(t.PartitionKey), KeyType: types.KeyTypeHash},
		},
	}
}

// TableAPI is the part of the DynamoDB API that CreateTable and DeleteTable
// use.
type TableAPI interface {
	CreateTable(context.Context, *dynamodb.CreateTableInput, ...func(*dynamodb.Options)) (*dynamodb.CreateTableOutput, error)
	DescribeTable(context.Context, *dynamodb.DescribeTableInput, ...func(*dynamodb.Options)) (*dynamodb.DescribeTableOutput, error)
	DeleteTable(context.Context, *dynamodb.DeleteTableInput, ...func(*dynamodb.Options)) (*dynamodb.DeleteTableOutput, error)
	UpdateTimeToLive(context.Context, *dynamodb.UpdateTimeToLiveInput, ...func(*dynamodb.Options)) (*dynamodb.UpdateTimeToLiveOutput, error)
}

// EnsureTable creates t unless a table of that name exists, waits until it
// is ACTIVE, and enables TTL on t.TTLAttribute when one is set. It is safe to
// call again and from several processes at once.
//
// It returns an error when the table cannot be created or described, or when
// an existing table's partition key differs from t.PartitionKey (a table made
// by another version of the service).
func EnsureTable(ctx context.Context, api TableAPI, t Table) error {
	_, err := api.CreateTable(ctx, t.CreateTableInput())
	var inUse *types.ResourceInUseException
	if err != nil && !errors.As(err, &inUse) {
		return fmt.Errorf("ddb: create table %s: %w", t.Name, err)
	}
	waiter := dynamodb.NewTableExistsWaiter(api, func(o *dynamodb.TableExistsWaiterOptions) {
		o.MinDelay = 50 * time.Millisecond
		o.MaxDelay = time.Second
	})
	out, err := waiter.WaitForOutput(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(t.Name)}, 2*time.Minute)
	if err != nil {
		return fmt.Errorf("ddb: wait for table %s: %w", t.Name, err)
	}
	if got := hashKey(out.Table.KeySchema); got != t.PartitionKey {
		return fmt.Errorf("ddb: table %s has partition key %q, want %q", t.Name, got, t.PartitionKey)
	}
	if t.TTLAttribute == "" {
		return nil
	}
	_, err = api.UpdateTimeToLive(ctx, &dynamodb.UpdateTimeToLiveInput{
		TableName: aws.String(t.Name),
		TimeToLiveSpecification: &types.TimeToLiveSpecification{
			AttributeName: aws.String(t.TTLAttribute),
			Enabled:       aws.Bool(true),
		},
	})
	if err != nil && !isTTLAlreadyEnabled(err) {
		return fmt.Errorf("ddb: enable TTL on %s.%s: %w", t.Name, t.TTLAttribute, err)
	}
	return nil
}

// DeleteTable deletes the table named name; a table that does not exist is
// not an error.
func DeleteTable(ctx context.Context, api TableAPI, name string) error {
	_, err := api.DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: aws.String(name)})
	var notFound *types.ResourceNotFoundException
	if err != nil && !errors.As(err, &notFound) {
		return fmt.Errorf("ddb: delete table %s: %w", name, err)
	}
	return nil
}

func hashKey(schema []types.KeySchemaElement) string {
	for _, k := range schema {
		if k.KeyType == types.KeyTypeHash {
			return aws.ToString(k.AttributeName)
		}
	}
	return ""
}

// isTTLAlreadyEnabled reports the ValidationException DynamoDB returns when
// TTL is already enabled on the table, which makes EnsureTable idempotent.
func isTTLAlreadyEnabled(err error) bool {
	var apiErr interface{ ErrorMessage() string }
	if !errors.As(err, &apiErr) {
		return false
	}
	return strings.Contains(strings.ToLower(apiErr.ErrorMessage()), "already enabled")
}
