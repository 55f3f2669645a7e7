package idem_test

import (
	"context"
	"crypto/rand"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/parcelhq/orderservice/internal/ddb"
	"github.com/parcelhq/orderservice/internal/ddbtest"
	"github.com/parcelhq/orderservice/internal/idem"
)

// env is one test's idempotency table, business table and client.
type env struct {
	t      *testing.T
	client *dynamodb.Client
	table  string // idempotency table
	biz    string // "business" table, partition key pk
}

var bizTable = ddb.Table{Name: "biz", PartitionKey: "pk"}

// commitOp is the write that commits an outcome, by mode and whether fn made
// business writes.
var commitOp = map[idem.Mode]map[bool]string{
	idem.Lease:      {false: "UpdateItem", true: "TransactWriteItems"},
	idem.Optimistic: {false: "PutItem", true: "TransactWriteItems"},
}

func newEnv(t *testing.T, withTTL bool) *env {
	t.Helper()
	def := idem.TableDefinition("idem")
	if !withTTL {
		def = def.WithoutTTL()
	}
	return &env{t: t, client: ddbtest.Client(t), table: ddbtest.Table(t, def).Name, biz: ddbtest.Table(t, bizTable).Name}
}

func (e *env) guard(cfg idem.Config) *idem.Guard {
	cfg.Table = e.table
	return idem.New(e.client, cfg)
}

// record returns the idempotency record of req as stored, or nil.
func (e *env) record(req idem.Request) map[string]types.AttributeValue {
	e.t.Helper()
	return e.item(e.table, idem.AttrID, idem.RecordID(req.Scope, req.Key))
}

func (e *env) item(table, keyAttr, key string) map[string]types.AttributeValue {
	e.t.Helper()
	out, err := e.client.GetItem(context.Background(), &dynamodb.GetItemInput{
		TableName: aws.String(table), ConsistentRead: aws.Bool(true),
		Key: map[string]types.AttributeValue{keyAttr: &types.AttributeValueMemberS{Value: key}},
	})
	if err != nil {
		e.t.Fatalf("GetItem %s: %v", key, err)
	}
	return out.Item
}

// bizItem reports whether the business table holds pk.
func (e *env) bizItem(pk string) bool {
	e.t.Helper()
	return e.item(e.biz, "pk", pk) != nil
}

func (e *env) countBiz() int {
	e.t.Helper()
	out, err := e.client.Scan(context.Background(), &dynamodb.ScanInput{TableName: aws.String(e.biz), ConsistentRead: aws.Bool(true)})
	if err != nil {
		e.t.Fatal(err)
	}
	return int(out.Count)
}

// putBiz enlists (or, outside Do, makes) a put of pk that fails if pk exists.
func (e *env) putBiz(ctx context.Context, pk string) error {
	return ddb.Write(ctx, e.client, types.TransactWriteItem{Put: &types.Put{
		TableName:                           aws.String(e.biz),
		Item:                                map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: pk}},
		ConditionExpression:                 aws.String("attribute_not_exists(pk)"),
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	}})
}

func str(item map[string]types.AttributeValue, attr string) string {
	if s, ok := item[attr].(*types.AttributeValueMemberS); ok {
		return s.Value
	}
	return ""
}

func req(key, fp string) idem.Request {
	return idem.Request{Scope: "tenant-1", Key: key, Fingerprint: fp}
}

func uniqueKey(t *testing.T) string {
	return t.Name() + "-" + rand.Text()
}

// respond returns a fn that counts its runs and answers resp.
func respond(runs *atomic.Int32, resp []byte) func(context.Context) (idem.Outcome, error) {
	return func(context.Context) (idem.Outcome, error) {
		runs.Add(1)
		return idem.Outcome{Response: resp, Keep: true}, nil
	}
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

// clock returns a Now func running offset ahead of the real clock.
func clock(offset time.Duration) func() time.Time {
	return func() time.Time { return time.Now().Add(offset) }
}

// events records the kinds an observer sees.
type events struct {
	mu    sync.Mutex
	kinds []idem.EventKind
	list  []idem.Event
}

func (ev *events) observe(_ context.Context, e idem.Event) {
	ev.mu.Lock()
	defer ev.mu.Unlock()
	ev.kinds = append(ev.kinds, e.Kind)
	ev.list = append(ev.list, e)
}

func (ev *events) count(k idem.EventKind) int {
	ev.mu.Lock()
	defer ev.mu.Unlock()
	n := 0
	for _, got := range ev.kinds {
		if got == k {
			n++
		}
	}
	return n
}

func mustDo(t *testing.T, g *idem.Guard, r idem.Request, fn func(context.Context) (idem.Outcome, error)) idem.Result {
	t.Helper()
	res, err := g.Do(context.Background(), r, fn)
	if err != nil {
		t.Fatalf("Do: %v", err)
	}
	return res
}

var errBoom = errors.New("boom")
