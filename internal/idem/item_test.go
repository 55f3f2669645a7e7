package idem_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
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

// itemKey is the item tests' Config.Item.NewKey: "k_" and 16 bytes in hex.
func itemKey(r io.Reader) (string, error) {
	var b [16]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return "", err
	}
	return "k_" + hex.EncodeToString(b[:]), nil
}

// itemEnv is one test's Item-mode table: partition key pk, with or without
// TTL enabled (the guard is told it is an Item table either way).
type itemEnv struct {
	*env
	def ddb.Table
}

func newItemEnv(t *testing.T, withTTL bool) *itemEnv {
	t.Helper()
	def := idem.ItemTableDefinition(ddb.Table{Name: "items", PartitionKey: "pk"})
	made := def
	if !withTTL {
		made = def.WithoutTTL()
	}
	def.Name = ddbtest.Table(t, made).Name
	return &itemEnv{env: &env{t: t, client: ddbtest.Client(t), biz: def.Name}, def: def}
}

func (e *itemEnv) itemGuard(cfg idem.Config) *idem.Guard {
	return e.itemGuardOn(e.client, cfg)
}

func (e *itemEnv) itemGuardOn(api idem.API, cfg idem.Config) *idem.Guard {
	cfg.Mode = idem.Item
	cfg.Item = idem.ItemConfig{Table: e.def, NewKey: itemKey}
	return idem.New(api, cfg)
}

// items returns every item of the table.
func (e *itemEnv) items() []map[string]types.AttributeValue {
	e.t.Helper()
	out, err := e.client.Scan(context.Background(), &dynamodb.ScanInput{TableName: aws.String(e.biz), ConsistentRead: aws.Bool(true)})
	if err != nil {
		e.t.Fatal(err)
	}
	return out.Items
}

// itemsOf returns the items whose "of" attribute is of: those a test's fn
// wrote.
func (e *itemEnv) itemsOf(of string) (written []map[string]types.AttributeValue) {
	for _, it := range e.items() {
		if str(it, "of") == of {
			written = append(written, it)
		}
	}
	return written
}

// itemsWithout returns the items that lack attr (record-only items, for "of").
func (e *itemEnv) itemsWithout(attr string) (found []map[string]types.AttributeValue) {
	for _, it := range e.items() {
		if it[attr] == nil {
			found = append(found, it)
		}
	}
	return found
}

// book is an fn that writes one new item at the key it draws from
// ddb.KeyRand, tagged with the test's name (of) and run number, and answers
// with the key and the run.
func (e *itemEnv) book(of string, runs *atomic.Int32) func(context.Context) (idem.Outcome, error) {
	return func(ctx context.Context) (idem.Outcome, error) {
		run := runs.Add(1)
		key, err := itemKey(ddb.KeyRand(ctx))
		if err != nil {
			return idem.Outcome{}, err
		}
		err = ddb.Write(ctx, e.client, types.TransactWriteItem{Put: &types.Put{
			TableName: aws.String(e.biz),
			Item: map[string]types.AttributeValue{
				"pk":  &types.AttributeValueMemberS{Value: key},
				"of":  &types.AttributeValueMemberS{Value: of},
				"run": &types.AttributeValueMemberN{Value: fmt.Sprint(run)},
			},
			ConditionExpression:      aws.String("attribute_not_exists(#k)"),
			ExpressionAttributeNames: map[string]string{"#k": "pk"},
		}})
		return idem.Outcome{Response: fmt.Appendf(nil, "%s run %d", key, run), Keep: true}, err
	}
}

// refuse is an fn that writes nothing and answers with a stored refusal.
func refuse(runs *atomic.Int32) func(context.Context) (idem.Outcome, error) {
	return func(context.Context) (idem.Outcome, error) {
		runs.Add(1)
		return idem.Outcome{Response: []byte("400 invalid"), Keep: true}, nil
	}
}

func TestItem(t *testing.T) {
	t.Parallel()
	e := newItemEnv(t, true)
	g := e.itemGuard(idem.Config{})
	ctx := context.Background()

	t.Run("a miss writes fn's one item carrying the record, and a retry replays it and writes nothing", func(t *testing.T) {
		t.Parallel()
		r := req(uniqueKey(t), "fp")
		var runs atomic.Int32
		first := mustDo(t, g, r, e.book(t.Name(), &runs))
		second := mustDo(t, g, r, e.book(t.Name(), &runs))
		if first.Replayed || !second.Replayed || !bytes.Equal(first.Response, second.Response) {
			t.Fatalf("got %q (replayed %v) then %q (replayed %v)", first.Response, first.Replayed, second.Response, second.Replayed)
		}
		got := e.itemsOf(t.Name())
		if len(got) != 1 || runOf(got[0]) != "1" {
			t.Fatalf("items %v, want run 1's only", got)
		}
		it := got[0]
		if str(it, "idem_fp") != "fp" || it["idem_exp"] == nil || it["idem_owner"] == nil || it["idem_data"] == nil {
			t.Fatalf("item %v does not carry the record", it)
		}
		if it[idem.AttrItemTTL] != nil {
			t.Fatal("fn's item carries the TTL attribute: TTL would delete it")
		}
	})

	t.Run("the same key gives the same item key in every attempt, another key another", func(t *testing.T) {
		t.Parallel()
		r := req(uniqueKey(t), "fp")
		var runs atomic.Int32
		a := mustDo(t, g, r, e.book(t.Name(), &runs))
		other := mustDo(t, g, req(uniqueKey(t), "fp"), e.book(t.Name(), &runs))
		if bytes.Equal(a.Response[:34], other.Response[:34]) {
			t.Fatalf("two keys drew the same item key %s", a.Response[:34])
		}
		otherScope := r
		otherScope.Scope = "tenant-2"
		if b := mustDo(t, g, otherScope, e.book(t.Name(), &runs)); b.Replayed || bytes.Equal(a.Response[:34], b.Response[:34]) {
			t.Fatal("the same key in another scope met the first scope's item")
		}
	})

	t.Run("another fingerprint with the same key is ErrMismatch and writes nothing", func(t *testing.T) {
		t.Parallel()
		r := req(uniqueKey(t), "fp-1")
		var runs atomic.Int32
		mustDo(t, g, r, e.book(t.Name(), &runs))
		r.Fingerprint = "fp-2"
		if _, err := g.Do(ctx, r, e.book(t.Name(), &runs)); !errors.Is(err, idem.ErrMismatch) {
			t.Fatalf("err = %v, want ErrMismatch", err)
		}
		if got := e.itemsOf(t.Name()); len(got) != 1 || str(got[0], "idem_fp") != "fp-1" {
			t.Fatalf("items %v, want the first request's only", got)
		}
	})

	t.Run("a hex fingerprint is stored as its bytes and still tells a replay from a mismatch", func(t *testing.T) {
		t.Parallel()
		fp := hex.EncodeToString(randomBytes(32))
		r := req(uniqueKey(t), fp)
		var runs atomic.Int32
		first := mustDo(t, g, r, e.book(t.Name(), &runs))
		got := e.itemsOf(t.Name())
		if len(got) != 1 || hex.EncodeToString(binOf(got[0], "idem_fp")) != fp {
			t.Fatalf("items %v, want one with the fingerprint's 32 bytes", got)
		}
		if res := mustDo(t, g, r, e.book(t.Name(), &runs)); !res.Replayed || !bytes.Equal(res.Response, first.Response) {
			t.Fatal("the same hex fingerprint did not replay")
		}
		upper := req(r.Key, strings.ToUpper(fp))
		if _, err := g.Do(ctx, upper, e.book(t.Name(), &runs)); !errors.Is(err, idem.ErrMismatch) {
			t.Fatalf("another spelling of the fingerprint: err = %v, want ErrMismatch (fingerprints compare exactly)", err)
		}
	})

	t.Run("concurrent duplicates write exactly one item and all answer the winner's response", func(t *testing.T) {
		t.Parallel()
		r := req(uniqueKey(t), "fp")
		const n = 40
		var runs atomic.Int32
		results := make([]idem.Result, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() { results[i], errs[i] = g.Do(ctx, r, e.book(t.Name(), &runs)) })
		}
		wg.Wait()
		fresh := 0
		for i := range n {
			if errs[i] != nil {
				t.Fatalf("request %d: %v", i, errs[i])
			}
			if !results[i].Replayed {
				fresh++
			}
			if !bytes.Equal(results[i].Response, results[0].Response) {
				t.Fatalf("request %d got %q, request 0 got %q", i, results[i].Response, results[0].Response)
			}
		}
		got := e.itemsOf(t.Name())
		if fresh != 1 || len(got) != 1 {
			t.Fatalf("%d requests committed and %d items written, want 1 and 1", fresh, len(got))
		}
		if want := fmt.Sprintf("%s run %s", str(got[0], "pk"), runOf(got[0])); string(results[0].Response) != want {
			t.Fatalf("answer %q is not the stored item's run %q", results[0].Response, want)
		}
	})

	t.Run("concurrent requests with one key and different bodies, some writing and some not, leave one item and one answer", func(t *testing.T) {
		t.Parallel()
		key := uniqueKey(t)
		const n = 30
		var runs atomic.Int32
		results := make([]idem.Result, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			fn, fp := e.book(t.Name(), &runs), fmt.Sprint("fp-book-", i)
			if i%2 == 1 {
				fn, fp = refuse(&runs), fmt.Sprint("fp-refuse-", i)
			}
			wg.Go(func() { results[i], errs[i] = g.Do(ctx, req(key, fp), fn) })
		}
		wg.Wait()
		winners := 0
		for i := range n {
			switch {
			case errs[i] == nil && !results[i].Replayed:
				winners++
			case !errors.Is(errs[i], idem.ErrMismatch):
				t.Fatalf("request %d: %q, %v; want the win or ErrMismatch", i, results[i].Response, errs[i])
			}
		}
		if winners != 1 || len(e.itemsOf(t.Name())) > 1 {
			t.Fatalf("%d winners, %d booked items; want 1 and at most 1", winners, len(e.itemsOf(t.Name())))
		}
	})

	t.Run("an outcome without a write is a record-only item that binds the key: a writing retry with another body is ErrMismatch", func(t *testing.T) {
		t.Parallel()
		r := req(uniqueKey(t), "fp-invalid")
		var runs atomic.Int32
		mustDo(t, g, r, refuse(&runs))
		if res := mustDo(t, g, r, refuse(&runs)); !res.Replayed || string(res.Response) != "400 invalid" {
			t.Fatalf("retry got %q (replayed %v), want the stored refusal", res.Response, res.Replayed)
		}
		fixed := r
		fixed.Fingerprint = "fp-valid"
		if _, err := g.Do(ctx, fixed, e.book(t.Name(), &runs)); !errors.Is(err, idem.ErrMismatch) {
			t.Fatalf("writing retry with another body: err = %v, want ErrMismatch", err)
		}
		if got := e.itemsOf(t.Name()); len(got) != 0 {
			t.Fatalf("the mismatched retry wrote %v", got)
		}
		// The same body that writes, with the key a refusal bound, replays the refusal too.
		if res := mustDo(t, g, r, e.book(t.Name(), &runs)); !res.Replayed || string(res.Response) != "400 invalid" {
			t.Fatalf("got %q (replayed %v), want the stored refusal", res.Response, res.Replayed)
		}
	})

	t.Run("a record-only item carries the TTL attribute and lives at the key fn would have drawn", func(t *testing.T) {
		t.Parallel()
		r := req(uniqueKey(t), "fp")
		var runs atomic.Int32
		mustDo(t, g, r, refuse(&runs))
		key := derivedKey(t, g, r)
		only := e.item(e.biz, "pk", key)
		if only == nil || only[idem.AttrItemTTL] == nil || str(only, "idem_fp") != "fp" {
			t.Fatalf("item at the derived key %s = %v, want the record-only item with the TTL attribute", key, only)
		}
	})

	t.Run("Keep=false writes nothing and a retry runs afresh", func(t *testing.T) {
		t.Parallel()
		r := req(uniqueKey(t), "fp")
		var runs atomic.Int32
		book := e.book(t.Name(), &runs)
		res, err := g.Do(ctx, r, func(ctx context.Context) (idem.Outcome, error) {
			out, err := book(ctx)
			out.Keep = false
			return out, err
		})
		if err != nil || res.Replayed {
			t.Fatalf("Do = %q, %v", res.Response, err)
		}
		if got := e.itemsOf(t.Name()); len(got) != 0 {
			t.Fatalf("Keep=false wrote %v", got)
		}
		if res := mustDo(t, g, r, e.book(t.Name(), &runs)); res.Replayed {
			t.Fatal("the retry replayed")
		}
	})

	t.Run("fn's error writes nothing", func(t *testing.T) {
		t.Parallel()
		r := req(uniqueKey(t), "fp")
		var runs atomic.Int32
		book := e.book(t.Name(), &runs)
		_, err := g.Do(ctx, r, func(ctx context.Context) (idem.Outcome, error) {
			_, _ = book(ctx)
			return idem.Outcome{}, errBoom
		})
		if !errors.Is(err, errBoom) || len(e.itemsOf(t.Name())) != 0 {
			t.Fatalf("err = %v, items %v", err, e.itemsOf(t.Name()))
		}
	})

	t.Run("a response that takes the item over one write unit is stored compressed, a small one as it is, and both replay as they were", func(t *testing.T) {
		t.Parallel()
		for _, size := range []int{200, 3000} {
			var runs atomic.Int32
			book := e.book(t.Name(), &runs)
			resp := bytes.Repeat([]byte("order json "), size/11)
			r := req(uniqueKey(t), "fp")
			withResp := func(ctx context.Context) (idem.Outcome, error) {
				out, err := book(ctx)
				out.Response = resp
				return out, err
			}
			mustDo(t, g, r, withResp)
			it := e.item(e.biz, "pk", derivedKey(t, g, r))
			if compressed := str(it, "idem_enc") != ""; compressed != (size > 1024) || compressed && len(binOf(it, "idem_data")) >= len(resp) {
				t.Fatalf("a %d-byte response: idem_enc %q, %d bytes stored", size, str(it, "idem_enc"), len(binOf(it, "idem_data")))
			}
			if again := mustDo(t, g, r, withResp); !again.Replayed || !bytes.Equal(again.Response, resp) {
				t.Fatalf("a %d-byte response did not replay as it was", size)
			}
		}
	})

	t.Run("an incompressible outcome over 400 KB with the item is ErrTooLarge and writes nothing", func(t *testing.T) {
		t.Parallel()
		var runs atomic.Int32
		book := e.book(t.Name(), &runs)
		_, err := g.Do(ctx, req(uniqueKey(t), "fp"), func(ctx context.Context) (idem.Outcome, error) {
			out, err := book(ctx)
			out.Response = randomBytes(410_000)
			return out, err
		})
		if !errors.Is(err, idem.ErrTooLarge) || len(e.itemsOf(t.Name())) != 0 {
			t.Fatalf("err = %v, items %d", err, len(e.itemsOf(t.Name())))
		}
	})

	t.Run("a put whose response was lost and that the SDK retried is this attempt's success", func(t *testing.T) {
		t.Parallel()
		api := &lostResponses{API: e.client}
		lossy := e.itemGuardOn(api, idem.Config{})
		r := req(uniqueKey(t), "fp")
		var runs atomic.Int32
		res, err := lossy.Do(ctx, r, e.book(t.Name(), &runs))
		if err != nil || res.Replayed || api.writes.Load() != 1 {
			t.Fatalf("Do = %q replayed=%v err=%v after %d writes, want this attempt's own success", res.Response, res.Replayed, err, api.writes.Load())
		}
		if again := mustDo(t, g, r, e.book(t.Name(), &runs)); !again.Replayed || !bytes.Equal(again.Response, res.Response) {
			t.Fatal("the retry did not replay the first answer")
		}
	})
}

func TestItemWritesItRefuses(t *testing.T) {
	t.Parallel()
	e := newItemEnv(t, true)
	g := e.itemGuard(idem.Config{})
	put := func(ctx context.Context, key string, cond string, extra map[string]types.AttributeValue) error {
		item := map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: key}, "of": &types.AttributeValueMemberS{Value: "refused"}}
		for k, v := range extra {
			item[k] = v
		}
		p := &types.Put{TableName: aws.String(e.biz), Item: item}
		if cond != "" {
			p.ConditionExpression = aws.String(cond)
		}
		return ddb.Write(ctx, e.client, types.TransactWriteItem{Put: p})
	}
	derived := func(ctx context.Context) string {
		k, _ := itemKey(ddb.KeyRand(ctx))
		return k
	}
	cases := []struct {
		name string
		fn   func(ctx context.Context) error
	}{
		{"two puts", func(ctx context.Context) error {
			k := derived(ctx)
			_ = put(ctx, k, "", nil)
			return put(ctx, k+"-2", "", nil)
		}},
		{"an update", func(ctx context.Context) error {
			return ddb.Write(ctx, e.client, types.TransactWriteItem{Update: &types.Update{TableName: aws.String(e.biz),
				Key: map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: derived(ctx)}}, UpdateExpression: aws.String("SET x = :x"),
				ExpressionAttributeValues: map[string]types.AttributeValue{":x": &types.AttributeValueMemberN{Value: "1"}}}})
		}},
		{"a put at a key not drawn from ddb.KeyRand", func(ctx context.Context) error {
			return put(ctx, "k_random-"+rand32(), "", nil)
		}},
		{"a put on another table", func(ctx context.Context) error {
			return ddb.Write(ctx, e.client, types.TransactWriteItem{Put: &types.Put{TableName: aws.String(e.biz + "-other"),
				Item: map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: derived(ctx)}}}})
		}},
		{"a put with another condition", func(ctx context.Context) error {
			return put(ctx, derived(ctx), "attribute_exists(pk)", nil)
		}},
		{"a put of an item with an attribute in the guard's prefix", func(ctx context.Context) error {
			return put(ctx, derived(ctx), "", map[string]types.AttributeValue{"idem_fp": &types.AttributeValueMemberS{Value: "forged"}})
		}},
	}
	for _, tc := range cases {
		t.Run("fn making "+tc.name+" is ErrItemWrite and nothing is written", func(t *testing.T) {
			t.Parallel()
			_, err := g.Do(context.Background(), req(uniqueKey(t), "fp"), func(ctx context.Context) (idem.Outcome, error) {
				return idem.Outcome{Response: []byte("x"), Keep: true}, tc.fn(ctx)
			})
			if !errors.Is(err, idem.ErrItemWrite) {
				t.Fatalf("err = %v, want ErrItemWrite", err)
			}
		})
	}
	t.Cleanup(func() {
		for _, it := range e.items() {
			if str(it, "of") == "refused" {
				t.Errorf("a refused unit of work wrote %v", it)
			}
		}
	})
}

// derivedKey returns the key fn draws for r's first generation under g (an
// fn that fails, so nothing is written).
func derivedKey(t *testing.T, g *idem.Guard, r idem.Request) string {
	t.Helper()
	var key string
	_, err := g.Do(context.Background(), r, func(ctx context.Context) (idem.Outcome, error) {
		key, _ = itemKey(ddb.KeyRand(ctx))
		return idem.Outcome{}, errBoom
	})
	if !errors.Is(err, errBoom) {
		t.Fatalf("derivedKey: %v", err)
	}
	if k, err := g.ItemKey(r.Scope, r.Key, 0); err != nil || k != key {
		t.Fatalf("ItemKey = %q, %v; fn drew %q", k, err, key)
	}
	return key
}

func binOf(item map[string]types.AttributeValue, attr string) []byte {
	if b, ok := item[attr].(*types.AttributeValueMemberB); ok {
		return b.Value
	}
	return nil
}

func runOf(item map[string]types.AttributeValue) string {
	if n, ok := item["run"].(*types.AttributeValueMemberN); ok {
		return n.Value
	}
	return ""
}

func rand32() string { return hex.EncodeToString(randomBytes(16)) }

// TestItemRetention runs on a table without TTL, where an expired record is
// still there to be read, as on DynamoDB for up to 48 hours.
func TestItemRetention(t *testing.T) {
	t.Parallel()
	e := newItemEnv(t, false)
	ctx := context.Background()
	at := func(offset time.Duration) *idem.Guard {
		return e.itemGuard(idem.Config{Retention: time.Hour, Now: clock(offset)})
	}

	t.Run("a key used again after its retention books a new item at the next generation and leaves the old one as it was", func(t *testing.T) {
		t.Parallel()
		r := req(uniqueKey(t), "fp")
		var runs atomic.Int32
		old := mustDo(t, at(0), r, e.book(t.Name(), &runs))
		before := e.itemsOf(t.Name())
		fresh := mustDo(t, at(2*time.Hour), r, e.book(t.Name(), &runs))
		if fresh.Replayed || bytes.Equal(fresh.Response[:34], old.Response[:34]) {
			t.Fatalf("after retention got %q (replayed %v), want a new item", fresh.Response, fresh.Replayed)
		}
		after := e.itemsOf(t.Name())
		if len(after) != 2 {
			t.Fatalf("%d items, want the old and the new", len(after))
		}
		for _, it := range after {
			if str(it, "pk") == str(before[0], "pk") && !bytes.Equal(binOf(it, "idem_owner"), binOf(before[0], "idem_owner")) {
				t.Fatal("the old item was written over")
			}
		}
		if again := mustDo(t, at(2*time.Hour), r, e.book(t.Name(), &runs)); !again.Replayed || !bytes.Equal(again.Response, fresh.Response) {
			t.Fatalf("a retry of the second use got %q, want its replay %q", again.Response, fresh.Response)
		}
		if _, err := at(2*time.Hour).Do(ctx, req(r.Key, "fp-2"), e.book(t.Name(), &runs)); !errors.Is(err, idem.ErrMismatch) {
			t.Fatalf("another body against the second use: err = %v, want ErrMismatch", err)
		}
	})

	t.Run("an expired record-only item is written over in place", func(t *testing.T) {
		t.Parallel()
		r := req(uniqueKey(t), "fp-invalid")
		var runs atomic.Int32
		mustDo(t, at(0), r, refuse(&runs))
		key := derivedKey(t, at(0), r)
		res := mustDo(t, at(2*time.Hour), req(r.Key, "fp-valid"), e.book(t.Name(), &runs))
		if res.Replayed || len(e.itemsOf(t.Name())) != 1 {
			t.Fatalf("got %q (replayed %v), want a new booking", res.Response, res.Replayed)
		}
		if it := e.item(e.biz, "pk", key); str(it, "of") != t.Name() || it[idem.AttrItemTTL] != nil {
			t.Fatalf("item at the first generation's key = %v, want the booking, without the TTL attribute", it)
		}
	})

	t.Run("a refusal stored at a later generation binds the key like one at the first, and once it is gone the key books there", func(t *testing.T) {
		t.Parallel()
		r := req(uniqueKey(t), "fp-valid")
		var runs atomic.Int32
		mustDo(t, at(0), r, e.book(t.Name(), &runs)) // generation 0: a booking
		bad := req(r.Key, "fp-invalid-"+r.Key)
		mustDo(t, at(2*time.Hour), bad, refuse(&runs)) // generation 1: a refusal
		if _, err := at(2*time.Hour).Do(ctx, r, e.book(t.Name(), &runs)); !errors.Is(err, idem.ErrMismatch) {
			t.Fatalf("a writing request against the refusal at generation 1: err = %v, want ErrMismatch", err)
		}
		if n := len(e.itemsOf(t.Name())); n != 1 {
			t.Fatalf("%d booked items, want the first only", n)
		}
		// TTL deletes the expired refusal; generation 0 still holds the
		// booking, so the next use of the key books at generation 1.
		for _, it := range e.itemsWithout("of") {
			if str(it, "idem_fp") == bad.Fingerprint {
				if _, err := e.client.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: aws.String(e.biz),
					Key: map[string]types.AttributeValue{"pk": it["pk"]}}); err != nil {
					t.Fatal(err)
				}
			}
		}
		res := mustDo(t, at(4*time.Hour), r, e.book(t.Name(), &runs))
		if got := e.itemsOf(t.Name()); res.Replayed || len(got) != 2 {
			t.Fatalf("replayed=%v with %d booked items, want a second booking", res.Replayed, len(got))
		}
		gen1, err := at(0).ItemKey(r.Scope, r.Key, 1)
		if err != nil || !bytes.HasPrefix(res.Response, []byte(gen1)) {
			t.Fatalf("the second booking %q is not at generation 1's key %q (%v)", res.Response, gen1, err)
		}
	})

	t.Run("a key used again after every generation is ErrKeyUsedUp, a kind of ErrMismatch", func(t *testing.T) {
		t.Parallel()
		r := req(uniqueKey(t), "fp")
		var runs atomic.Int32
		for i := range idem.MaxGenerations {
			if res := mustDo(t, at(time.Duration(i)*2*time.Hour), r, e.book(t.Name(), &runs)); res.Replayed {
				t.Fatalf("use %d replayed", i)
			}
		}
		_, err := at(time.Duration(idem.MaxGenerations)*2*time.Hour).Do(ctx, r, e.book(t.Name(), &runs))
		if !errors.Is(err, idem.ErrKeyUsedUp) || !errors.Is(err, idem.ErrMismatch) {
			t.Fatalf("err = %v, want ErrKeyUsedUp", err)
		}
		if got := len(e.itemsOf(t.Name())); got != idem.MaxGenerations {
			t.Fatalf("%d items, want %d", got, idem.MaxGenerations)
		}
	})
}

// TestItemFaults: DynamoDB failures around the one put of Item mode.
func TestItemFaults(t *testing.T) {
	t.Parallel()
	e := newItemEnv(t, true)
	ctx := context.Background()

	for _, landed := range []bool{false, true} {
		name := "a put that failed without landing is ErrStore, and the retry books the one item"
		if landed {
			name = "a put that landed with its answer lost is ErrStore, and the retry replays that booking"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ev := &events{}
			g := e.itemGuardOn(newFailingWrite(e.client, "PutItem", landed), idem.Config{Observer: ev.observe})
			r := req(uniqueKey(t), "fp")
			var runs atomic.Int32
			_, err := g.Do(ctx, r, e.book(t.Name(), &runs))
			wantStoreError(t, err, ev)
			res := mustDo(t, e.itemGuard(idem.Config{}), r, e.book(t.Name(), &runs))
			if got := e.itemsOf(t.Name()); len(got) != 1 || res.Replayed != landed || runOf(got[0]) != map[bool]string{false: "2", true: "1"}[landed] {
				t.Fatalf("retry replayed=%v, items %v", res.Replayed, got)
			}
		})
	}

	t.Run("a put refused by transactions in flight is retried and then lands", func(t *testing.T) {
		t.Parallel()
		api := newConflicting(e.client, "PutItem", 2)
		r := req(uniqueKey(t), "fp")
		var runs atomic.Int32
		res := mustDo(t, e.itemGuardOn(api, idem.Config{}), r, e.book(t.Name(), &runs))
		if res.Replayed || api.refused.Load() != 2 || len(e.itemsOf(t.Name())) != 1 {
			t.Fatalf("replayed=%v after %d refusals, %d items", res.Replayed, api.refused.Load(), len(e.itemsOf(t.Name())))
		}
	})

	t.Run("a put refused on every try is ErrInProgress and writes nothing", func(t *testing.T) {
		t.Parallel()
		api := newConflicting(e.client, "PutItem", 100)
		var runs atomic.Int32
		_, err := e.itemGuardOn(api, idem.Config{}).Do(ctx, req(uniqueKey(t), "fp"), e.book(t.Name(), &runs))
		if !errors.Is(err, idem.ErrInProgress) || len(e.itemsOf(t.Name())) != 0 {
			t.Fatalf("err = %v, items %d; want ErrInProgress and none", err, len(e.itemsOf(t.Name())))
		}
	})

	t.Run("a failed condition without ALL_OLD is judged on the item as read", func(t *testing.T) {
		t.Parallel()
		r := req(uniqueKey(t), "fp")
		var runs atomic.Int32
		first := mustDo(t, e.itemGuard(idem.Config{}), r, e.book(t.Name(), &runs))
		blind := e.itemGuardOn(noAllOld{e.client}, idem.Config{})
		if res := mustDo(t, blind, r, e.book(t.Name(), &runs)); !res.Replayed || !bytes.Equal(res.Response, first.Response) {
			t.Fatalf("got %q (replayed %v), want the replay", res.Response, res.Replayed)
		}
		if _, err := blind.Do(ctx, req(r.Key, "fp-2"), e.book(t.Name(), &runs)); !errors.Is(err, idem.ErrMismatch) {
			t.Fatalf("err = %v, want ErrMismatch", err)
		}
	})
}
