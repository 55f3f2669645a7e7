package idem_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/parcelhq/orderservice/internal/ddb"
	"github.com/parcelhq/orderservice/internal/idem"
)

func TestLimits(t *testing.T) {
	t.Parallel()
	e := newEnv(t, true)
	bigPut := func(ctx context.Context, pk string) error {
		return ddb.Write(ctx, e.client, types.TransactWriteItem{Put: &types.Put{
			TableName: aws.String(e.biz),
			Item: map[string]types.AttributeValue{
				"pk":   &types.AttributeValueMemberS{Value: pk},
				"blob": &types.AttributeValueMemberB{Value: randomBytes(300_000)},
			},
		}})
	}
	cases := []struct {
		name    string
		fn      func(ctx context.Context, key string) (idem.Outcome, error)
		wantErr error
	}{
		{"an incompressible outcome over 400 KB is ErrTooLarge", func(ctx context.Context, key string) (idem.Outcome, error) {
			return idem.Outcome{Response: randomBytes(450_000), Keep: true}, e.putBiz(ctx, key)
		}, idem.ErrTooLarge},
		{"more writes than one transaction holds is ErrTooManyWrites", func(ctx context.Context, key string) (idem.Outcome, error) {
			for i := range ddb.MaxTransactItems {
				if err := e.putBiz(ctx, fmt.Sprintf("%s-%d", key, i)); err != nil {
					return idem.Outcome{}, err
				}
			}
			return idem.Outcome{Keep: true}, nil
		}, idem.ErrTooManyWrites},
		{"a refused write the handler ignored is ErrTooManyWrites, not a commit without it", func(ctx context.Context, key string) (idem.Outcome, error) {
			for i := range ddb.MaxTransactItems {
				_ = e.putBiz(ctx, fmt.Sprintf("%s-%d", key, i)) // the last one is refused; the error is dropped
			}
			return idem.Outcome{Keep: true}, nil
		}, idem.ErrTooManyWrites},
		{"writes over 4 MB in all are ErrTooManyWrites", func(ctx context.Context, key string) (idem.Outcome, error) {
			for i := range 15 {
				if err := bigPut(ctx, fmt.Sprintf("%s-%d", key, i)); err != nil {
					return idem.Outcome{}, err
				}
			}
			return idem.Outcome{Keep: true}, nil
		}, idem.ErrTooManyWrites},
	}
	for _, mode := range []idem.Mode{idem.Lease, idem.Optimistic} {
		var ev events
		g := e.guard(idem.Config{Mode: mode, Observer: ev.observe})
		for _, c := range cases {
			t.Run(fmt.Sprintf("%s: %s, stores nothing and lets a retry run", mode, c.name), func(t *testing.T) {
				r := req(uniqueKey(t), "fp")
				_, err := g.Do(context.Background(), r, func(ctx context.Context) (idem.Outcome, error) { return c.fn(ctx, r.Key) })
				if !errors.Is(err, c.wantErr) {
					t.Fatalf("err = %v, want %v", err, c.wantErr)
				}
				if e.record(r) != nil {
					t.Fatal("a record was stored")
				}
				if e.bizItem(r.Key) || e.bizItem(r.Key+"-0") {
					t.Fatal("a business write landed")
				}
				var runs atomic.Int32
				if res := mustDo(t, g, r, respond(&runs, []byte("small"))); res.Replayed {
					t.Fatal("the retry replayed instead of running")
				}
			})
		}
		t.Run(mode.String()+": a compressible outcome over 400 KB fits and replays identical", func(t *testing.T) {
			r := req(uniqueKey(t), "fp")
			big := []byte(strings.Repeat(`{"parcel":"ok"},`, 60_000)) // ~960 KB
			var runs atomic.Int32
			mustDo(t, g, r, respond(&runs, big))
			if res := mustDo(t, g, r, respond(&runs, nil)); !bytes.Equal(res.Response, big) || !res.Replayed {
				t.Fatal("the replay differs")
			}
		})
		if ev.count(idem.TooLarge) != len(cases) {
			t.Errorf("%s: TooLarge events = %d, want %d", mode, ev.count(idem.TooLarge), len(cases))
		}
	}
}
