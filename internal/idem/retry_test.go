package idem_test

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/parcelhq/orderservice/internal/idem"
)

// lostResponses sends every write to the real DynamoDB twice and returns the
// second answer: what the guard sees when a write lands but its response is
// lost and the SDK retries it.
type lostResponses struct {
	idem.API
	writes atomic.Int32
}

func (l *lostResponses) PutItem(ctx context.Context, in *dynamodb.PutItemInput, o ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	l.writes.Add(1)
	_, _ = l.API.PutItem(ctx, in, o...)
	return l.API.PutItem(ctx, in, o...)
}

func (l *lostResponses) UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, o ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	l.writes.Add(1)
	_, _ = l.API.UpdateItem(ctx, in, o...)
	return l.API.UpdateItem(ctx, in, o...)
}

func (l *lostResponses) DeleteItem(ctx context.Context, in *dynamodb.DeleteItemInput, o ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error) {
	l.writes.Add(1)
	_, _ = l.API.DeleteItem(ctx, in, o...)
	return l.API.DeleteItem(ctx, in, o...)
}

func (l *lostResponses) TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, o ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error) {
	l.writes.Add(1)
	_, _ = l.API.TransactWriteItems(ctx, in, o...)
	return l.API.TransactWriteItems(ctx, in, o...)
}

func TestRetriedWritesAreNotMisread(t *testing.T) {
	t.Parallel()
	e := newEnv(t, true)
	api := &lostResponses{API: e.client}
	for _, mode := range []idem.Mode{idem.Lease, idem.Optimistic} {
		for _, withWrite := range []bool{false, true} {
			name := mode.String() + ": a commit retried after it landed is a success, not a lost commit or a replay"
			if withWrite {
				name += ", with business writes"
			}
			t.Run(name, func(t *testing.T) {
				g := idem.New(api, idem.Config{Table: e.table, Mode: mode})
				r := req(uniqueKey(t), "fp")
				res, err := g.Do(context.Background(), r, func(ctx context.Context) (idem.Outcome, error) {
					if withWrite {
						if err := e.putBiz(ctx, r.Key); err != nil {
							return idem.Outcome{}, err
						}
					}
					return idem.Outcome{Response: []byte("done"), Keep: true}, nil
				})
				if err != nil || res.Replayed || string(res.Response) != "done" {
					t.Fatalf("Do = %q replayed=%v err=%v, want this attempt's own success", res.Response, res.Replayed, err)
				}
				if str(e.record(r), "status") != "COMPLETED" || withWrite && !e.bizItem(r.Key) {
					t.Fatal("the commit did not land")
				}
				var runs atomic.Int32
				if res := mustDo(t, g, r, respond(&runs, nil)); !res.Replayed || string(res.Response) != "done" {
					t.Fatal("the retry did not replay")
				}
			})
		}
	}
	if api.writes.Load() == 0 {
		t.Fatal("no write went through the fault injector")
	}
}
