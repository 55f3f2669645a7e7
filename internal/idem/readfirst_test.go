package idem_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/parcelhq/orderservice/internal/ddb"
	"github.com/parcelhq/orderservice/internal/idem"
)

// opCounter wraps the real client and counts the calls of each operation
// the guard makes through idem.API, including those a fault wrapper below
// it fails before they reach the SDK (which internal/ddbmeter, counting
// inside the SDK, would not see).
type opCounter struct {
	idem.API
	mu    sync.Mutex
	calls map[string]int
	read  []map[string]types.AttributeValue // the items GetItem answered with
}

func countOps(api idem.API) *opCounter { return &opCounter{API: api, calls: map[string]int{}} }

func (c *opCounter) count(op string) {
	c.mu.Lock()
	c.calls[op]++
	c.mu.Unlock()
}

// took returns the calls counted so far and starts counting afresh.
func (c *opCounter) took() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	got := c.calls
	c.calls = map[string]int{}
	return got
}

func (c *opCounter) GetItem(ctx context.Context, in *dynamodb.GetItemInput, o ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	c.count("GetItem")
	out, err := c.API.GetItem(ctx, in, o...)
	if err == nil {
		c.mu.Lock()
		c.read = append(c.read, out.Item)
		c.mu.Unlock()
	}
	return out, err
}

func (c *opCounter) PutItem(ctx context.Context, in *dynamodb.PutItemInput, o ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	c.count("PutItem")
	return c.API.PutItem(ctx, in, o...)
}

func (c *opCounter) UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, o ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	c.count("UpdateItem")
	return c.API.UpdateItem(ctx, in, o...)
}

func (c *opCounter) DeleteItem(ctx context.Context, in *dynamodb.DeleteItemInput, o ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error) {
	c.count("DeleteItem")
	return c.API.DeleteItem(ctx, in, o...)
}

func (c *opCounter) TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, o ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error) {
	c.count("TransactWriteItems")
	return c.API.TransactWriteItems(ctx, in, o...)
}

// hinted returns r with the retry hint.
func hinted(r idem.Request) idem.Request { r.Retry = true; return r }

// hintMode is one guard mode as the retry-hint tests use it: a guard over
// api, and an fn that makes the mode's business write and counts its runs.
type hintMode struct {
	mode  idem.Mode
	guard func(api idem.API, cfg idem.Config) *idem.Guard
	api   idem.API
	fn    func(runs *atomic.Int32) func(context.Context) (idem.Outcome, error)
}

func hintModes(t *testing.T) []hintMode {
	e := newEnv(t, true)
	ie := newItemEnv(t, true)
	writer := func(runs *atomic.Int32) func(context.Context) (idem.Outcome, error) {
		return func(ctx context.Context) (idem.Outcome, error) {
			n := runs.Add(1)
			pk := fmt.Sprintf("%s-%d-%s", t.Name(), n, rand32())
			return idem.Outcome{Response: []byte("booked " + pk), Keep: true}, e.putBiz(ctx, pk)
		}
	}
	on := func(mode idem.Mode) func(idem.API, idem.Config) *idem.Guard {
		return func(api idem.API, cfg idem.Config) *idem.Guard {
			cfg.Mode, cfg.Table = mode, e.table
			return idem.New(api, cfg)
		}
	}
	return []hintMode{
		{idem.Lease, on(idem.Lease), e.client, writer},
		{idem.Optimistic, on(idem.Optimistic), e.client, writer},
		{idem.Item, ie.itemGuardOn, ie.client, func(runs *atomic.Int32) func(context.Context) (idem.Outcome, error) {
			return ie.book(t.Name(), runs)
		}},
	}
}

func TestRetryHint(t *testing.T) {
	t.Parallel()
	for _, m := range hintModes(t) {
		t.Run(m.mode.String(), func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()

			t.Run("a hinted retry of an answered request replays it with one read and no run of fn", func(t *testing.T) {
				t.Parallel()
				api := countOps(m.api)
				var ev events
				g := m.guard(api, idem.Config{Observer: ev.observe})
				r := req(uniqueKey(t), "fp")
				var runs atomic.Int32
				first := mustDo(t, g, r, m.fn(&runs))
				api.took()
				again := mustDo(t, g, hinted(r), m.fn(&runs))
				if !again.Replayed || !bytes.Equal(again.Response, first.Response) || runs.Load() != 1 {
					t.Fatalf("hinted retry got %q (replayed %v) after %d runs; want the replay of %q and one run", again.Response, again.Replayed, runs.Load(), first.Response)
				}
				if got := api.took(); !maps.Equal(got, map[string]int{"GetItem": 1}) {
					t.Fatalf("the hinted retry made %v, want one GetItem", got)
				}
				last := ev.list[len(ev.list)-1]
				if last.Kind != idem.Hit || !last.ReadFirst {
					t.Fatalf("last event %+v, want a Hit with ReadFirst", last)
				}
			})

			t.Run("a hinted request with another fingerprint is ErrMismatch after one read and runs nothing", func(t *testing.T) {
				t.Parallel()
				api := countOps(m.api)
				g := m.guard(api, idem.Config{})
				r := req(uniqueKey(t), "fp-1")
				var runs atomic.Int32
				mustDo(t, g, r, m.fn(&runs))
				api.took()
				if _, err := g.Do(ctx, hinted(req(r.Key, "fp-2")), m.fn(&runs)); !errors.Is(err, idem.ErrMismatch) {
					t.Fatalf("err = %v, want ErrMismatch", err)
				}
				if got := api.took(); runs.Load() != 1 || !maps.Equal(got, map[string]int{"GetItem": 1}) {
					t.Fatalf("%d runs and calls %v, want one run (the first) and one GetItem", runs.Load(), got)
				}
			})

			t.Run("a hint for a key never used costs one read, reported, then the request runs and commits as without it", func(t *testing.T) {
				t.Parallel()
				api := countOps(m.api)
				var ev events
				g := m.guard(api, idem.Config{Observer: ev.observe})
				r := req(uniqueKey(t), "fp")
				var runs atomic.Int32
				first := mustDo(t, g, hinted(r), m.fn(&runs))
				if first.Replayed || runs.Load() != 1 {
					t.Fatalf("got %q (replayed %v) after %d runs, want a fresh run", first.Response, first.Replayed, runs.Load())
				}
				if got := api.took(); got["GetItem"] != 1 {
					t.Fatalf("calls %v, want exactly one GetItem besides the protocol's writes", got)
				}
				if len(ev.list) < 2 || ev.list[0].Kind != idem.RetryReadMissed || ev.list[0].Err != nil || ev.list[1].Kind != idem.Miss {
					t.Fatalf("events %+v, want RetryReadMissed (no error), then the protocol's Miss", ev.list)
				}
				if again := mustDo(t, g, r, m.fn(&runs)); !again.Replayed || !bytes.Equal(again.Response, first.Response) {
					t.Fatalf("an unhinted retry got %q (replayed %v), want the replay of the hinted first", again.Response, again.Replayed)
				}
			})

			t.Run("a hint whose read fails is left to the protocol, which replays", func(t *testing.T) {
				t.Parallel()
				r := req(uniqueKey(t), "fp")
				var runs atomic.Int32
				first := mustDo(t, m.guard(m.api, idem.Config{}), r, m.fn(&runs))
				api := countOps(failingRead{m.api})
				var ev events
				g := m.guard(api, idem.Config{Observer: ev.observe})
				again, err := g.Do(ctx, hinted(r), m.fn(&runs))
				if err != nil || !again.Replayed || !bytes.Equal(again.Response, first.Response) {
					t.Fatalf("got %q (replayed %v), %v; want the replay", again.Response, again.Replayed, err)
				}
				if got := api.took(); got["GetItem"] != 1 {
					t.Fatalf("calls %v, want the one (failed) GetItem of the hint besides the protocol's", got)
				}
				if len(ev.list) == 0 || ev.list[0].Kind != idem.RetryReadMissed || !errors.Is(ev.list[0].Err, idem.ErrStore) {
					t.Fatalf("events %+v, want RetryReadMissed with the read's ErrStore first", ev.list)
				}
			})

			t.Run("a hinted retry answers the replay where fn would fail this time", func(t *testing.T) {
				t.Parallel()
				g := m.guard(m.api, idem.Config{})
				r := req(uniqueKey(t), "fp")
				var runs atomic.Int32
				first := mustDo(t, g, r, m.fn(&runs))
				failing := func(context.Context) (idem.Outcome, error) { return idem.Outcome{}, errBoom }
				if m.mode != idem.Lease {
					// Without the hint these modes run fn before they
					// consult the record, and answer its error.
					if _, err := g.Do(ctx, r, failing); !errors.Is(err, errBoom) {
						t.Fatalf("unhinted: err = %v, want fn's error", err)
					}
				}
				res, err := g.Do(ctx, hinted(r), failing)
				if err != nil || !res.Replayed || !bytes.Equal(res.Response, first.Response) {
					t.Fatalf("hinted: got %q (replayed %v), %v; want the replay", res.Response, res.Replayed, err)
				}
			})
		})
	}
}

// TestRetryHintLeavesTheRestToTheProtocol covers records the read does not
// answer from: a lease in force, a record expired, and in Item mode the
// generations of a key used again after its retention.
func TestRetryHintLeavesTheRestToTheProtocol(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("a hint for a key whose first request still runs is ErrInProgress, as without it", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, true)
		g := e.guard(idem.Config{Lease: time.Minute})
		r := req(uniqueKey(t), "fp")
		entered, release := make(chan struct{}), make(chan struct{})
		done := make(chan error, 1)
		go func() {
			_, err := g.Do(ctx, r, func(context.Context) (idem.Outcome, error) {
				close(entered)
				<-release
				return idem.Outcome{Response: []byte("first"), Keep: true}, nil
			})
			done <- err
		}()
		<-entered
		t.Cleanup(func() {
			close(release)
			if err := <-done; err != nil {
				t.Errorf("the first request: %v", err)
			}
		})
		var runs atomic.Int32
		if _, err := g.Do(ctx, hinted(r), respond(&runs, []byte("second"))); !errors.Is(err, idem.ErrInProgress) || runs.Load() != 0 {
			t.Fatalf("err = %v after %d runs, want ErrInProgress and no run", err, runs.Load())
		}
	})

	t.Run("a hint judges expiry as the protocol does: replayed within ClockSkew of it, afresh beyond", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, false)
		r := req(uniqueKey(t), "fp")
		var runs atomic.Int32
		cfg := func(at time.Duration) idem.Config {
			return idem.Config{Retention: time.Hour, ClockSkew: 10 * time.Second, Now: clock(at)}
		}
		first := mustDo(t, e.guard(cfg(0)), r, respond(&runs, []byte("old")))
		api := countOps(e.client)
		c := cfg(time.Hour + 5*time.Second)
		c.Table = e.table
		within := idem.New(api, c)
		if res := mustDo(t, within, hinted(r), respond(&runs, []byte("new"))); !res.Replayed || !bytes.Equal(res.Response, first.Response) {
			t.Fatalf("5 s past expiry (skew 10 s): got %q (replayed %v), want the replay", res.Response, res.Replayed)
		}
		if got := api.took(); !maps.Equal(got, map[string]int{"GetItem": 1}) {
			t.Fatalf("5 s past expiry: calls %v, want the hint's one GetItem", got)
		}
		if res := mustDo(t, e.guard(cfg(time.Hour+20*time.Second)), hinted(r), respond(&runs, []byte("new"))); res.Replayed || string(res.Response) != "new" {
			t.Fatalf("20 s past expiry (skew 10 s): got %q (replayed %v), want a fresh run", res.Response, res.Replayed)
		}
	})

	t.Run("a hint for a key past its retention runs the request afresh", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, false)
		r := req(uniqueKey(t), "fp")
		var runs atomic.Int32
		mustDo(t, e.guard(idem.Config{Retention: time.Hour}), r, respond(&runs, []byte("old")))
		later := e.guard(idem.Config{Retention: time.Hour, Now: clock(2 * time.Hour)})
		if res := mustDo(t, later, hinted(r), respond(&runs, []byte("new"))); res.Replayed || string(res.Response) != "new" {
			t.Fatalf("got %q (replayed %v), want a fresh run", res.Response, res.Replayed)
		}
	})

	t.Run("in Item mode a hint finds a later use's record at its generation", func(t *testing.T) {
		t.Parallel()
		e := newItemEnv(t, false)
		api := countOps(e.client)
		at := func(offset time.Duration) *idem.Guard {
			return e.itemGuardOn(api, idem.Config{Retention: time.Hour, Now: clock(offset)})
		}
		r := req(uniqueKey(t), "fp")
		var runs atomic.Int32
		mustDo(t, at(0), r, e.book(t.Name(), &runs))
		second := mustDo(t, at(2*time.Hour), r, e.book(t.Name(), &runs))
		api.took()
		before := runs.Load()
		again := mustDo(t, at(2*time.Hour), hinted(r), e.book(t.Name(), &runs))
		if !again.Replayed || !bytes.Equal(again.Response, second.Response) || runs.Load() != before {
			t.Fatalf("got %q (replayed %v) after %d more runs, want the second use's replay %q and none", again.Response, again.Replayed, runs.Load()-before, second.Response)
		}
		if got := api.took(); !maps.Equal(got, map[string]int{"GetItem": 2}) {
			t.Fatalf("calls %v, want a GetItem of each generation's item", got)
		}
	})

	t.Run("in Item mode a hint reads only the record's attributes, and replays a response stored compressed", func(t *testing.T) {
		t.Parallel()
		e := newItemEnv(t, true)
		api := countOps(e.client)
		g := e.itemGuardOn(api, idem.Config{})
		r := req(uniqueKey(t), "fp")
		order := strings.Repeat("order line ", 200) // fn's attribute, ~2 KB
		book := func(ctx context.Context) (idem.Outcome, error) {
			key, err := itemKey(ddb.KeyRand(ctx))
			if err != nil {
				return idem.Outcome{}, err
			}
			err = ddb.Write(ctx, e.client, types.TransactWriteItem{Put: &types.Put{
				TableName: aws.String(e.biz),
				Item:      map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: key}, "order": &types.AttributeValueMemberS{Value: order}},
			}})
			return idem.Outcome{Response: []byte("booked " + order), Keep: true}, err
		}
		first := mustDo(t, g, r, book)
		api.took()
		again := mustDo(t, g, hinted(r), func(context.Context) (idem.Outcome, error) {
			return idem.Outcome{}, errors.New("fn ran for a hinted retry of a stored outcome")
		})
		if !again.Replayed || !bytes.Equal(again.Response, first.Response) {
			t.Fatalf("hinted retry got %.40q… (replayed %v), want the replay", again.Response, again.Replayed)
		}
		if got := api.took(); !maps.Equal(got, map[string]int{"GetItem": 1}) {
			t.Fatalf("the hinted retry made %v, want one GetItem", got)
		}
		read := api.read[len(api.read)-1]
		if _, ok := read["order"]; ok || read["pk"] != nil {
			t.Errorf("the hint's read fetched fn's attributes: %v", slices.Sorted(maps.Keys(read)))
		}
		if enc, _ := read["idem_enc"].(*types.AttributeValueMemberS); enc == nil || enc.Value == "" {
			t.Errorf("the response was stored uncompressed (read %v): the case does not test the encoding's attribute", slices.Sorted(maps.Keys(read)))
		}
	})

	t.Run("in Item mode a hint meeting an expired record-only item leaves it to the put, which writes over it", func(t *testing.T) {
		t.Parallel()
		e := newItemEnv(t, false)
		api := countOps(e.client)
		at := func(offset time.Duration) *idem.Guard {
			return e.itemGuardOn(api, idem.Config{Retention: time.Hour, Now: clock(offset)})
		}
		r := req(uniqueKey(t), "fp-invalid")
		var runs atomic.Int32
		mustDo(t, at(0), r, refuse(&runs))
		api.took()
		res := mustDo(t, at(2*time.Hour), hinted(req(r.Key, "fp-valid")), e.book(t.Name(), &runs))
		if res.Replayed || len(e.itemsOf(t.Name())) != 1 {
			t.Fatalf("got %q (replayed %v), want a new booking", res.Response, res.Replayed)
		}
		if got := api.took(); !maps.Equal(got, map[string]int{"GetItem": 1, "PutItem": 1}) {
			t.Fatalf("calls %v, want one GetItem and the put", got)
		}
	})
}
