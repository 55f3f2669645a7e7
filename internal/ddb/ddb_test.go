package ddb_test

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/parcelhq/orderservice/internal/ddb"
	"github.com/parcelhq/orderservice/internal/ddbtest"
)

var widgets = ddb.Table{Name: "widgets", PartitionKey: "pk", TTLAttribute: "expires_at"}

func putOnce(table, pk string) types.TransactWriteItem {
	return types.TransactWriteItem{Put: &types.Put{
		TableName:           aws.String(table),
		Item:                map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: pk}},
		ConditionExpression: aws.String("attribute_not_exists(pk)"),
	}}
}

func TestEnsureTable(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	client := ddbtest.Client(t)
	tbl := ddbtest.Table(t, widgets)

	t.Run("is idempotent and keeps TTL enabled", func(t *testing.T) {
		if err := ddb.EnsureTable(ctx, client, tbl); err != nil {
			t.Fatalf("second EnsureTable: %v", err)
		}
		out, err := client.DescribeTimeToLive(ctx, &dynamodb.DescribeTimeToLiveInput{TableName: aws.String(tbl.Name)})
		if err != nil {
			t.Fatal(err)
		}
		d := out.TimeToLiveDescription
		if d.TimeToLiveStatus != types.TimeToLiveStatusEnabled || aws.ToString(d.AttributeName) != "expires_at" {
			t.Fatalf("TTL = %s on %q, want ENABLED on expires_at", d.TimeToLiveStatus, aws.ToString(d.AttributeName))
		}
	})

	t.Run("rejects an existing table with another partition key", func(t *testing.T) {
		other := tbl
		other.PartitionKey = "id"
		if err := ddb.EnsureTable(ctx, client, other); err == nil {
			t.Fatal("EnsureTable accepted a table whose partition key differs")
		}
	})
}

func TestWrite(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	client := ddbtest.Client(t)
	tbl := ddbtest.Table(t, widgets.WithoutTTL())

	t.Run("a conditional put writes once and then reports the failed condition", func(t *testing.T) {
		if err := ddb.Write(ctx, client, putOnce(tbl.Name, "a")); err != nil {
			t.Fatalf("first put: %v", err)
		}
		err := ddb.Write(ctx, client, putOnce(tbl.Name, "a"))
		var ccf *types.ConditionalCheckFailedException
		if !errors.As(err, &ccf) {
			t.Fatalf("second put: err = %v, want ConditionalCheckFailedException", err)
		}
		got, err := client.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(tbl.Name),
			Key: map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: "a"}}, ConsistentRead: aws.Bool(true)})
		if err != nil || got.Item == nil {
			t.Fatalf("item a not readable: %v", err)
		}
	})

	t.Run("a write in a unit of work is not sent until its owner commits", func(t *testing.T) {
		u := ddb.NewUnitOfWork(1)
		uctx := ddb.WithUnitOfWork(ctx, u)
		if err := ddb.Write(uctx, client, putOnce(tbl.Name, "b")); err != nil {
			t.Fatalf("enlist: %v", err)
		}
		got, err := client.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(tbl.Name),
			Key: map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: "b"}}, ConsistentRead: aws.Bool(true)})
		if err != nil {
			t.Fatal(err)
		}
		if got.Item != nil {
			t.Fatal("enlisted write reached the table before commit")
		}
		items := u.Close()
		if len(items) != 1 {
			t.Fatalf("unit of work holds %d writes, want 1", len(items))
		}
		if _, err := client.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: items}); err != nil {
			t.Fatalf("commit: %v", err)
		}
		if err := ddb.Write(uctx, client, putOnce(tbl.Name, "c")); !errors.Is(err, ddb.ErrUnitOfWorkClosed) {
			t.Fatalf("write after Close: err = %v, want ErrUnitOfWorkClosed", err)
		}
	})
}

func TestUnitOfWorkCapacity(t *testing.T) {
	t.Parallel()
	u := ddb.NewUnitOfWork(1)
	batch := make([]types.TransactWriteItem, ddb.MaxTransactItems-1)
	if err := u.Add(batch...); err != nil {
		t.Fatalf("adding %d writes with 1 reserved: %v", len(batch), err)
	}
	if err := u.Add(types.TransactWriteItem{}); !errors.Is(err, ddb.ErrUnitOfWorkFull) {
		t.Fatalf("one write past the limit: err = %v, want ErrUnitOfWorkFull", err)
	}
	if n := len(u.Close()); n != ddb.MaxTransactItems-1 {
		t.Fatalf("after a refused Add the unit holds %d writes, want %d", n, ddb.MaxTransactItems-1)
	}
	if err := u.Err(); !errors.Is(err, ddb.ErrUnitOfWorkFull) {
		t.Fatalf("Err() = %v after a refused Add, want ErrUnitOfWorkFull", err)
	}
	if err := ddb.NewUnitOfWork(1).Err(); err != nil {
		t.Fatalf("Err() of a unit that refused nothing = %v", err)
	}
}

func TestKeyRand(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	t.Run("without a source of its own a context gives crypto/rand", func(t *testing.T) {
		var a, b [16]byte
		if _, err := io.ReadFull(ddb.KeyRand(ctx), a[:]); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(ddb.KeyRand(ctx), b[:]); err != nil {
			t.Fatal(err)
		}
		if a == b {
			t.Fatal("two draws gave the same bytes")
		}
	})
	t.Run("a context given a source gives that source, also to derived contexts", func(t *testing.T) {
		src := strings.NewReader("0123456789abcdef")
		derived, cancel := context.WithCancel(ddb.WithKeyRand(ctx, src))
		defer cancel()
		got, err := io.ReadAll(ddb.KeyRand(derived))
		if err != nil || string(got) != "0123456789abcdef" {
			t.Fatalf("read %q, %v; want the source's bytes", got, err)
		}
	})
}
