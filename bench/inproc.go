package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/parcelhq/orderservice/functions/createorder/app"
	"github.com/parcelhq/orderservice/internal/ddb"
	"github.com/parcelhq/orderservice/internal/ddbmeter"
	"github.com/parcelhq/orderservice/internal/idem"
	"github.com/parcelhq/orderservice/internal/idem/idemhttp"
	"github.com/parcelhq/orderservice/internal/orders"
	"github.com/parcelhq/orderservice/internal/orders/orderstest"
)

// The kinds of request the in-process phase times, in the order each
// iteration makes them: the two floors, then for each of our modes a miss,
// a hit reaching the other container (not cached), a hit reaching the
// container that committed (cached), two hits through a Guard with no
// cache, and one more with the retry hint (idem.Request.Retry).
const (
	kBare      = "bare conditional PutItem"
	kUnguarded = "unguarded order write (orders.Store.Create)"
)

// modeKinds are the kinds of request of one of our modes.
type modeKinds struct{ miss, hit, cached, guard, hint string }

func kindsOf(m idem.Mode) modeKinds {
	n := m.String()
	return modeKinds{n + ": miss", n + ": hit, not cached", n + ": hit, cached", n + ": hit, Guard.Do without a cache",
		n + ": hit, Guard.Do without a cache, with the retry hint"}
}

// inprocKinds lists every kind, in the order of an iteration.
var inprocKinds = func() []string {
	ks := []string{kBare, kUnguarded}
	for _, m := range ourModes {
		k := kindsOf(m)
		ks = append(ks, k.miss, k.hit, k.cached, k.guard, k.hint)
	}
	return ks
}()

// inprocResult is, per kind, the latency samples and the DynamoDB calls
// they made in all.
type inprocResult struct {
	samples map[string][]time.Duration
	calls   map[string]ddbmeter.Calls
	iters   int
}

// step is one timed request of an iteration.
type step struct {
	kind string
	f    func(context.Context) error
}

type lambdaHandler func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error)

// inproc times each kind of request, interleaved (one of each per iteration,
// so that a noisy moment of the machine hits every kind alike), through
// app.LambdaHandler(app.New(...)) — the handler the bootstrap registers —
// with payload 2.0 events, on a client whose calls are counted. It runs
// warmup iterations first, then iterations until maxIters or maxDur.
//
// Each mode has two handlers on the same tables, two Lambda containers: the
// miss goes to the first, which caches what it committed. A "hit, not
// cached" is the first retry reaching the other container: the record is not
// in its cache (app.New always configures one), so the hit costs what it
// costs without a cache. A "hit, cached" is a retry reaching the container
// that committed, which its cache answers. Then two more retries
// of the same request go to an idem.Guard on the same table configured
// without a cache (Guard.Do directly, with the request the middleware makes:
// scope "", the key, the body's fingerprint), to count a hit without a cache
// rather than assume it.
func inproc(ctx context.Context, endpoint string, tables benchTables, warmup, maxIters int, maxDur time.Duration) (inprocResult, error) {
	counter := ddbmeter.New()
	client, err := ddb.NewClient(ctx, func(o *dynamodb.Options) {
		o.APIOptions = append(o.APIOptions, counter.Register)
	})
	if err != nil {
		return inprocResult{}, err
	}
	logger := app.NewLogger(io.Discard, "INFO")
	handlers := map[idem.Mode][2]lambdaHandler{} // two containers per mode
	for _, mode := range ourModes {
		cfg := tables.inprocConfig(mode)
		var pair [2]lambdaHandler
		for i := range pair {
			h, err := app.New(ctx, cfg, client, logger)
			if err != nil {
				return inprocResult{}, err
			}
			pair[i] = app.LambdaHandler(h)
		}
		handlers[mode] = pair
	}
	stores := map[idem.Mode]*orders.Store{}
	for _, mode := range ourModes {
		stores[mode] = orders.NewStore(client, tables.inprocOrders[mode])
	}
	orderReq, err := orders.DecodeOrder([]byte(orderstest.JSON))
	if err != nil {
		return inprocResult{}, fmt.Errorf("the benchmark's order is invalid: %w", err)
	}
	noCache := map[idem.Mode]*idem.Guard{}
	for _, mode := range ourModes {
		gc := idem.Config{Table: tables.inprocIdem[mode], Mode: mode}
		if mode == idem.Item {
			// As app.New configures Item mode.
			gc.Item = idem.ItemConfig{Table: tables.inprocConfig(mode).Tables()[0], NewKey: orders.NewIDFrom}
		}
		noCache[mode] = idem.New(client, gc)
	}
	fp, err := idemhttp.Fingerprint(http.MethodPost, app.RouteCreateOrder.Key(), "application/json", []byte(orderstest.JSON))
	if err != nil {
		return inprocResult{}, err
	}
	// book is what the create handler does inside the guard: an order put
	// that joins the guard's unit of work, its id drawn from ddb.KeyRand
	// (which Item mode seeds). Optimistic and Item modes run it on a hit
	// too; its write is then discarded.
	book := func(store *orders.Store) func(ctx context.Context) (idem.Outcome, error) {
		return func(ctx context.Context) (idem.Outcome, error) {
			id, err := orders.NewIDFrom(ddb.KeyRand(ctx))
			if err != nil {
				return idem.Outcome{}, err
			}
			o := orders.Book(id, orderReq, time.Now())
			if err := store.Create(ctx, o); err != nil {
				return idem.Outcome{}, err
			}
			return idem.Outcome{Response: orders.EncodeOrder(o), Keep: true}, nil
		}
	}
	guardHit := func(mode idem.Mode, key string, hint bool) func(context.Context) error {
		return func(ctx context.Context) error {
			res, err := noCache[mode].Do(ctx, idem.Request{Key: key, Fingerprint: fp, Retry: hint}, book(stores[mode]))
			if err == nil && !res.Replayed {
				err = errors.New("Guard.Do ran the request instead of replaying the handler's record")
			}
			return err
		}
	}

	res := inprocResult{samples: map[string][]time.Duration{}, calls: map[string]ddbmeter.Calls{}}
	// timed runs f once, and when record is set keeps its latency and calls.
	timed := func(kind string, record bool, f func(context.Context) error) error {
		// Each request gets the function timeout of template.yaml as its
		// deadline, as Lambda gives one.
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		before := counter.Snapshot()
		start := time.Now()
		err := f(rctx)
		d := time.Since(start)
		if err != nil {
			return fmt.Errorf("%s: %w", kind, err)
		}
		if record {
			res.samples[kind] = append(res.samples[kind], d)
			c := res.calls[kind]
			c.Add(counter.Snapshot().Since(before))
			res.calls[kind] = c
		}
		return nil
	}
	post := func(h lambdaHandler, key string, wantReplay bool) func(context.Context) error {
		return func(ctx context.Context) error {
			resp, err := h(ctx, createEvent(key))
			if err != nil {
				return err
			}
			replayed := header(resp.Headers, idemhttp.HeaderReplayed) == "true"
			if resp.StatusCode != http.StatusCreated || replayed != wantReplay {
				return fmt.Errorf("status %d, replayed %v (want 201, %v): %s", resp.StatusCode, replayed, wantReplay, resp.Body)
			}
			return nil
		}
	}

	var deadline time.Time // set when the warm-up ends
	for i := 0; i < warmup+maxIters; i++ {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		if i == warmup {
			deadline = time.Now().Add(maxDur)
		}
		record := i >= warmup
		if record && time.Now().After(deadline) {
			break
		}
		steps := []step{
			{kBare, func(ctx context.Context) error { return barePut(ctx, client, tables.bare) }},
			{kUnguarded, func(ctx context.Context) error {
				id, err := orders.NewID()
				if err != nil {
					return err
				}
				return stores[idem.Lease].Create(ctx, orders.Book(id, orderReq, time.Now()))
			}},
		}
		for _, mode := range ourModes {
			k, key := kindsOf(mode), newKey()
			committer, other := handlers[mode][0], handlers[mode][1]
			steps = append(steps,
				step{k.miss, post(committer, key, false)}, step{k.hit, post(other, key, true)}, step{k.cached, post(committer, key, true)},
				step{k.guard, guardHit(mode, key, false)}, step{k.guard, guardHit(mode, key, false)},
				step{k.hint, guardHit(mode, key, true)})
		}
		for _, s := range steps {
			if err := timed(s.kind, record, s.f); err != nil {
				return res, err
			}
		}
		if record {
			res.iters++
		}
	}
	return res, nil
}

// barePut is the floor a guarded request is compared with: one conditional
// PutItem of a small new item, as an idempotency record's acquire is.
func barePut(ctx context.Context, api *dynamodb.Client, table string) error {
	_, err := api.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: aws.String(table),
		Item: map[string]types.AttributeValue{
			"id":         &types.AttributeValueMemberS{Value: newKey()},
			"status":     &types.AttributeValueMemberS{Value: "IN_PROGRESS"},
			"expires_at": &types.AttributeValueMemberN{Value: fmt.Sprint(time.Now().Add(24 * time.Hour).Unix())},
		},
		ConditionExpression: aws.String("attribute_not_exists(id)"),
	})
	return err
}

// createEvent is the payload 2.0 event API Gateway sends for POST /orders
// with the given idempotency key and no authorizer.
func createEvent(key string) events.APIGatewayV2HTTPRequest {
	now := time.Now().UTC()
	const route = "POST /orders"
	return events.APIGatewayV2HTTPRequest{
		Version: "2.0", RouteKey: route, RawPath: "/orders", Body: orderstest.JSON,
		Headers: map[string]string{"content-type": "application/json", "user-agent": "orderservice-bench", "idempotency-key": key},
		RequestContext: events.APIGatewayV2HTTPRequestContext{
			AccountID: "123456789012", APIID: "local", DomainName: "local.execute-api.us-east-1.amazonaws.com",
			DomainPrefix: "local", Stage: "$default", RouteKey: route, RequestID: newKey(),
			Time: now.Format("02/Jan/2006:15:04:05 -0700"), TimeEpoch: now.UnixMilli(),
			HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: "POST", Path: "/orders", Protocol: "HTTP/1.1", SourceIP: "127.0.0.1", UserAgent: "orderservice-bench"},
		},
	}
}

func header(h map[string]string, name string) string {
	for k, v := range h {
		if strings.EqualFold(k, name) {
			return v
		}
	}
	return ""
}

// newKey returns a fresh random key (32 hex digits).
func newKey() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
