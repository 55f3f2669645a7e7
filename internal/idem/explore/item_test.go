//go:build explore

package explore

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/golang/snappy"

	"github.com/parcelhq/orderservice/internal/ddb"
	"github.com/parcelhq/orderservice/internal/idem"
)

// Item mode: the record lives on the item fn writes (an order, here), or on
// a record-only item when fn writes nothing, in the explorer's item table at
// the key derived from the record id and a generation (Guard.ItemKey). The
// wrapper records every put on that table that landed with what it replaced
// (it asks for ALL_OLD), and the TTL step deletes expired record-only items
// as DynamoDB's TTL would, on a table without TTL.

// itemKey is the harness's Config.Item.NewKey, the function its fn draws
// its order's key with from ddb.KeyRand, as orders.NewIDFrom does for the
// service: "o_" and 16 bytes in hex.
func itemKey(r io.Reader) (string, error) {
	var b [16]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return "", err
	}
	return "o_" + hex.EncodeToString(b[:]), nil
}

// itemState is a schedule's Item-mode state.
type itemState struct {
	keys   [idem.MaxGenerations]string // the derived key of each generation
	gens   map[string]int              // derived key -> generation
	cur    [idem.MaxGenerations]*itemRec
	swept  string           // what the last TTL step deleted
	tokens map[string]*proc // owner token (hex) -> the attempt that wrote it
}

// itemProc is an attempt's Item-mode state.
type itemProc struct {
	puts          []itemPut // its puts that landed, in order
	failAfterLand bool      // a call failed (fail, landfail) after one of its puts landed
}

type itemPut struct {
	gen      int
	rec      *itemRec
	landFail bool // the call that landed it then failed
}

// itemRec is an item of the item table as stored.
type itemRec struct {
	order bool   // fn's item: it has fn's attribute "run"; else record-only
	run   string // the run that wrote fn's item
	ttl   bool   // carries idem.AttrItemTTL
	ttlAt int64
	exp   int64 // idem_exp, epoch s
	fp    string
	data  string
	owner string // hex of idem_owner's 16 bytes; "" if not 16 bytes
}

func decodeItem(m map[string]types.AttributeValue) *itemRec {
	if len(m) == 0 {
		return nil
	}
	r := &itemRec{run: sAttr(m["run"])}
	r.order = m["run"] != nil
	r.ttlAt, r.ttl = nAttr(m[idem.AttrItemTTL])
	r.exp, _ = nAttr(m["idem_exp"])
	switch v := m["idem_fp"].(type) {
	case *types.AttributeValueMemberB:
		r.fp = hex.EncodeToString(v.Value)
	case *types.AttributeValueMemberS:
		r.fp = v.Value
	}
	if b, ok := m["idem_data"].(*types.AttributeValueMemberB); ok {
		r.data = string(b.Value)
		switch sAttr(m["idem_enc"]) {
		case "gzip":
			if z, err := gzip.NewReader(bytes.NewReader(b.Value)); err == nil {
				d, _ := io.ReadAll(z)
				r.data = string(d)
			}
		case "snappy":
			if d, err := snappy.Decode(nil, b.Value); err == nil {
				r.data = string(d)
			}
		}
	}
	if b, ok := m["idem_owner"].(*types.AttributeValueMemberB); ok && len(b.Value) == 16 {
		r.owner = hex.EncodeToString(b.Value)
	}
	return r
}

func (r *itemRec) String() string {
	if r == nil {
		return "nothing"
	}
	kind := "record-only item"
	if r.order {
		kind = "order of " + r.run
	}
	return fmt.Sprintf("%s (fp %s, expires %s)", kind, r.fp, time.Unix(r.exp, 0).UTC().Format("15:04:05"))
}

func sameItem(a, b *itemRec) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.owner == b.owner && a.order == b.order
}

// initItem learns the derived key of every generation from the guard.
func (s *schedule) initItem() {
	s.item.gens = map[string]int{}
	s.item.tokens = map[string]*proc{}
	for g := range idem.MaxGenerations {
		k, err := s.procs[0].guard.ItemKey(s.req().Scope, s.key, g)
		if err != nil {
			panic(err)
		}
		s.item.keys[g], s.item.gens[k] = k, g
	}
}

// priorUses makes the configuration's earlier uses of the key, each through
// the guard (no faults) with another request, and moves the clock past its
// retention after each.
func (s *schedule) priorUses(ctx context.Context) {
	for i, kind := range s.cfg.prior {
		p := s.newProc(fmt.Sprintf("u%d", i), 0, 0, nil, true)
		p.fp, p.writes = "fp-old", kind == 'o'
		s.tracef("     %s, an earlier use (%s), at %s", p.name, map[rune]string{'o': "an order", 'r': "a refusal"}[kind], s.rel(s.virtual()))
		s.wg.Add(1)
		p.main(ctx)
		if p.err != nil {
			s.violate("prior-use", "the earlier use %s failed: %v", p.name, p.err)
		}
		s.advance(mExpire.amount(s.cfg))
	}
	if s.cfg.prior != "" {
		s.tracef("     the attempts start at %s", s.rel(s.virtual()))
	}
}

// itemResponse is what p's fn answers at generation g.
func (p *proc) itemResponse(g int) string {
	if p.writes {
		return p.name + " booked " + p.s.item.keys[g]
	}
	return p.name + " refused " + p.fp
}

// itemFn is Item mode's fn: it draws its order's key from ddb.KeyRand and
// writes the order through the unit of work, as the service's create does,
// or writes nothing and answers with a refusal.
func (p *proc) itemFn(ctx context.Context) (idem.Outcome, error) {
	f := p.at(point{kind: pFn})
	if f == fCrash {
		p.die()
		return idem.Outcome{}, errCrashed
	}
	p.s.record(event{kind: evFnStart, run: p})
	if f == fFnError {
		return idem.Outcome{}, errFn
	}
	if !p.writes {
		return idem.Outcome{Response: []byte(p.name + " refused " + p.fp), Keep: true}, nil
	}
	key, err := itemKey(ddb.KeyRand(ctx))
	if err != nil {
		return idem.Outcome{}, err
	}
	err = ddb.Write(ctx, &api{p: p}, types.TransactWriteItem{Put: &types.Put{
		TableName: aws.String(p.s.env.itemDef.Name),
		Item: map[string]types.AttributeValue{
			"pk":  &types.AttributeValueMemberS{Value: key},
			"run": &types.AttributeValueMemberS{Value: p.name},
		},
		ConditionExpression:      aws.String("attribute_not_exists(#pk)"),
		ExpressionAttributeNames: map[string]string{"#pk": "pk"},
	}})
	if err != nil {
		return idem.Outcome{}, err
	}
	return idem.Outcome{Response: []byte(p.name + " booked " + key), Keep: true}, nil
}

// putItem sends the guard's put of an item with its record, asking for
// ALL_OLD too (the guard's answer never sees it) to learn what it replaced.
func (a *api) putItem(ctx context.Context, in *dynamodb.PutItemInput, o ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	sent := *in
	sent.ReturnValues = types.ReturnValueAllOld
	if a.p.s.cfg.sabotage == "item-unconditional" {
		sent.ConditionExpression, sent.ExpressionAttributeNames, sent.ExpressionAttributeValues = nil, nil, nil
	}
	var out *dynamodb.PutItemOutput
	err := a.send(point{kind: pCall, op: "PutItem"}, func() error {
		var err error
		out, err = a.p.s.env.client.PutItem(ctx, &sent, o...)
		if err == nil {
			a.p.s.landedItem(a.p, in.Item, out.Attributes)
		}
		return err
	}, func(bool) error { return refusal("PutItem", 1, 0) })
	if out != nil && in.ReturnValues != types.ReturnValueAllOld {
		out.Attributes = nil
	}
	if p := a.p; len(p.puts) > 0 && (p.lastFault == fFail || p.lastFault == fLandFail) && err != nil && !p.puts[len(p.puts)-1].landFail {
		p.failAfterLand = true
	}
	return out, err
}

// landedItem records a put on the item table that landed.
func (s *schedule) landedItem(p *proc, item, old map[string]types.AttributeValue) {
	r, o := decodeItem(item), decodeItem(old)
	gen, ok := s.item.gens[sAttr(item["pk"])]
	if !ok {
		s.violate("item-key", "%s put an item at %s, which is no generation's derived key", p.name, sAttr(item["pk"]))
		return
	}
	s.mu.Lock()
	s.item.tokens[r.owner] = p
	s.mu.Unlock()
	landFail := p.lastFault == fLandFail
	s.record(event{kind: evItemPut, run: p, gen: gen, item: r, itemOld: o, landFail: landFail})
	s.mu.Lock()
	s.item.cur[gen] = r
	s.mu.Unlock()
	p.puts = append(p.puts, itemPut{gen: gen, rec: r, landFail: landFail})
}

// ttlDue reports whether TTL has a record-only item to delete now.
func (s *schedule) ttlDue() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range s.item.cur {
		if r != nil && r.ttl && r.ttlAt < s.virtual().Unix() {
			return true
		}
	}
	return false
}

// ttlSweep deletes, as DynamoDB's TTL does, every item whose TTL attribute
// is past (by the true, virtual, clock).
func (s *schedule) ttlSweep() {
	var swept []string
	for g := range idem.MaxGenerations {
		s.mu.Lock()
		r := s.item.cur[g]
		s.mu.Unlock()
		if r == nil || !r.ttl || r.ttlAt >= s.virtual().Unix() {
			continue
		}
		_, err := s.env.client.DeleteItem(context.Background(), &dynamodb.DeleteItemInput{
			TableName:                 aws.String(s.env.itemDef.Name),
			Key:                       map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: s.item.keys[g]}},
			ConditionExpression:       aws.String("#ttl < :now"),
			ExpressionAttributeNames:  map[string]string{"#ttl": idem.AttrItemTTL},
			ExpressionAttributeValues: map[string]types.AttributeValue{":now": &types.AttributeValueMemberN{Value: fmt.Sprint(s.virtual().Unix())}},
		})
		if err != nil {
			s.violate("harness", "harness: TTL delete of generation %d: %v", g, err)
			continue
		}
		s.record(event{kind: evTTL, gen: g, itemOld: r})
		s.mu.Lock()
		s.item.cur[g] = nil
		s.mu.Unlock()
		swept = append(swept, fmt.Sprintf("generation %d's %s", g, r))
	}
	s.item.swept = strings.Join(swept, ", ")
}

// readItems reads every generation's item.
func (s *schedule) readItems(ctx context.Context) ([idem.MaxGenerations]*itemRec, error) {
	var out [idem.MaxGenerations]*itemRec
	keys := make([]map[string]types.AttributeValue, idem.MaxGenerations)
	for g, k := range s.item.keys {
		keys[g] = map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: k}}
	}
	req := map[string]types.KeysAndAttributes{s.env.itemDef.Name: {Keys: keys, ConsistentRead: aws.Bool(true)}}
	for len(req) > 0 {
		got, err := s.env.client.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{RequestItems: req})
		if err != nil {
			return out, err
		}
		for _, it := range got.Responses[s.env.itemDef.Name] {
			out[s.item.gens[sAttr(it["pk"])]] = decodeItem(it)
		}
		req = got.UnprocessedKeys
	}
	return out, nil
}

// answer is what Do answered, or should.
type answer struct {
	kind string // "fresh", "replay", "mismatch", "used-up", "error"
	resp string
	gen  int // fresh: the generation
}

func (a answer) String() string {
	switch a.kind {
	case "fresh", "replay":
		return fmt.Sprintf("%s %q", a.kind, a.resp)
	}
	return a.kind
}

func answerOf(p *proc) answer {
	switch {
	case p.err == nil && p.res.Replayed:
		return answer{kind: "replay", resp: string(p.resp)}
	case p.err == nil:
		return answer{kind: "fresh", resp: string(p.resp)}
	case errors.Is(p.err, idem.ErrKeyUsedUp):
		return answer{kind: "used-up"}
	case errors.Is(p.err, idem.ErrMismatch):
		return answer{kind: "mismatch"}
	}
	return answer{kind: "error", resp: p.err.Error()}
}

// predict says what a faultless attempt like p answers at now on the table
// items: the guard's protocol as the package documentation states it.
func (s *schedule) predict(p *proc, items [idem.MaxGenerations]*itemRec, now time.Time) answer {
	for g, it := range items {
		switch {
		case it == nil:
			return answer{kind: "fresh", resp: p.itemResponse(g), gen: g}
		case it.exp >= now.Add(-skewDur).Unix():
			if it.fp == p.fp {
				return answer{kind: "replay", resp: it.data}
			}
			return answer{kind: "mismatch"}
		case !it.order:
			return answer{kind: "fresh", resp: p.itemResponse(g), gen: g}
		}
	}
	return answer{kind: "used-up"}
}

// newRetry makes a settle attempt with like's request; runRetry runs it.
func (s *schedule) newRetry(name string, like *proc, off time.Duration, cache *idem.Cache) *proc {
	p := s.newProc(name, off, 0, cache, true)
	p.fp, p.writes, p.hint, p.instant = like.fp, like.writes, s.cfg.hint, true
	s.tracef("     %s retries %s's request at %s", name, like.name, s.rel(s.virtual()))
	return p
}

func (s *schedule) runRetry(ctx context.Context, p *proc) *proc {
	s.wg.Add(1)
	p.main(ctx)
	return p
}

// settleItem retries the first attempt's request once every attempt has
// returned or crashed: the retry answers exactly what the table says (the
// live item's response replayed, ErrMismatch, a fresh outcome at the first
// free generation, or ErrKeyUsedUp), a second retry and the first attempt's
// host (its Cache) answer the same.
func (s *schedule) settleItem(ctx context.Context) {
	s.tracef("  the dust settles at %s", s.rel(s.virtual()))
	a0 := s.procs[0]
	items, err := s.readItems(ctx)
	if err != nil {
		s.violate("harness", "harness: read the items: %v", err)
		return
	}
	s1 := s.newRetry("s1", a0, 0, nil)
	want := s.predict(s1, items, s.virtual())
	s.runRetry(ctx, s1)
	if got := answerOf(s1); got.kind != want.kind || got.resp != want.resp {
		s.violate("settle", "a retry after the dust settled answered %s; the items say %s", got, want)
		return
	}
	first := answerOf(s1)
	if first.kind == "fresh" {
		first.kind = "replay"
	}
	s2 := s.runRetry(ctx, s.newRetry("s2", a0, 0, nil))
	if got := answerOf(s2); got != first {
		s.violate("not-exactly-one", "a second retry answered %s after the first got %s: not exactly one outcome", got, answerOf(s1))
	}
	c0 := s.runRetry(ctx, s.newRetry("c0", a0, a0.off, a0.cache))
	if got := answerOf(c0); got != first {
		s.violate("cache-answer", "%s's host (its Cache) answered %s where the table's answer is %s", a0.name, got, first)
	}
}

// checkItem verifies Item mode's invariants on the landed puts, the TTL
// deletions, what each attempt answered and the items as they are.
func (s *schedule) checkItem(ctx context.Context) {
	table, err := s.readItems(ctx)
	if err != nil {
		s.violate("harness", "harness: read the items: %v", err)
		return
	}
	var model [idem.MaxGenerations]*itemRec
	stored := map[string]*itemRec{} // response -> the item that stored it
	running := map[*proc]bool{}
	started := map[*proc]time.Time{} // its host's clock when Do was called
	otherFp := map[*proc]bool{}      // a record with another fingerprint, not expired when it arrived, was there while it ran
	for _, e := range s.log {
		p := e.run
		switch e.kind {
		case evStart:
			running[p], started[p] = true, e.clock
		case evItemPut:
			s.checkPut(e, &model)
			model[e.gen] = e.item
			stored[e.item.data] = e.item
		case evTTL:
			for h := e.gen + 1; h < idem.MaxGenerations; h++ {
				if model[h] != nil {
					s.violate("ttl-hides-record", "TTL deleted generation %d's %s at %s while generation %d holds %s", e.gen, e.itemOld, s.rel(e.at), h, model[h])
				}
			}
			model[e.gen] = nil
		case evReturn:
			s.checkItemReturn(e, &model, stored, started[p], otherFp[p])
			running[p] = false
		}
		for q, on := range running {
			for _, it := range model {
				if on && it != nil && it.fp != q.fp && it.exp >= started[q].Add(-skewDur).Unix() {
					otherFp[q] = true
				}
			}
		}
	}
	for g := range table {
		if !sameItem(table[g], model[g]) {
			s.violate("harness", "harness: generation %d holds %s, the landed writes say %s", g, table[g], model[g])
		}
	}
	live := 0
	for g, it := range table {
		if it == nil {
			continue
		}
		s.checkShape(it, fmt.Sprintf("generation %d's item", g))
		if it.exp >= s.virtual().Unix() {
			live++
		}
		for h := range g {
			if table[h] == nil || !table[h].order {
				s.violate("generation-gap", "generation %d holds %s but generation %d holds %s, not an order", g, it, h, table[h])
			}
		}
	}
	if live > 1 {
		s.violate("two-live-records", "%d items of the key carry a live record at the end", live)
	}
}

// checkShape: orders never carry the TTL attribute, record-only items
// always do (with the record's expiry), and every item carries a record.
func (s *schedule) checkShape(it *itemRec, what string) {
	switch {
	case it.order && it.ttl:
		s.violate("ttl-on-order", "%s, an order, carries %s: TTL would delete it", what, idem.AttrItemTTL)
	case !it.order && !it.ttl:
		s.violate("ttl-missing", "%s, record-only, lacks %s: TTL would never delete it", what, idem.AttrItemTTL)
	case !it.order && it.ttlAt != it.exp:
		s.violate("ttl-missing", "%s, record-only, has %s %d, its record expires %d", what, idem.AttrItemTTL, it.ttlAt, it.exp)
	case it.exp == 0 || it.owner == "":
		s.violate("no-record", "%s lacks its record (expiry or 16-byte owner)", what)
	}
}

// checkPut checks a landed put e against the items as the writes before it
// left them.
func (s *schedule) checkPut(e event, model *[idem.MaxGenerations]*itemRec) {
	p, n, o, g := e.run, e.item, e.itemOld, e.gen
	limit := e.clock.Add(-skewDur).Unix() // the writer's clock, less the skew
	if !sameItem(o, model[g]) {
		s.violate("harness", "harness: %s's put at %s replaced %s, the landed writes say %s", p.name, s.rel(e.at), o, model[g])
	}
	switch {
	case o == nil:
	case o.order:
		s.violate("order-replaced", "%s's put at %s replaced generation %d's %s: an order was written over", p.name, s.rel(e.at), g, o)
	case o.exp >= limit:
		s.violate("live-record-replaced", "%s's put at %s replaced generation %d's %s, not expired by more than ClockSkew by its clock (%s)", p.name, s.rel(e.at), g, o, s.rel(e.clock))
	}
	s.checkShape(n, fmt.Sprintf("%s's item at generation %d", p.name, g))
	if n.order != p.writes || n.run != "" && n.run != p.name {
		s.violate("stored-response", "%s's put at generation %d stored %s", p.name, g, n)
	}
	if n.data != p.itemResponse(g) || n.fp != p.fp || s.item.tokens[n.owner] != p {
		s.violate("stored-response", "%s's put at generation %d stored %q with fingerprint %s, not its response %q and fingerprint %s", p.name, g, n.data, n.fp, p.itemResponse(g), p.fp)
	}
	for h, it := range model {
		if h == g || it == nil || it.exp < e.at.Unix() {
			continue
		}
		kind := "two-live-records"
		if it.fp != p.fp {
			kind = "fingerprint-not-bound"
		}
		s.violate(kind, "%s's put landed at generation %d at %s while generation %d holds %s, whose record is live", p.name, g, s.rel(e.at), h, it)
	}
	for h := range g {
		switch it := model[h]; {
		case it == nil || !it.order:
			s.violate("generation-gap", "%s's put landed at generation %d while generation %d holds %s, not an order", p.name, g, h, it)
		case it.exp >= limit:
			s.violate("early-next-generation", "%s's put landed at generation %d at %s while generation %d's %s had not expired by more than ClockSkew by its clock (%s)", p.name, g, s.rel(e.at), h, it, s.rel(e.clock))
		}
	}
}

// checkItemReturn: every success is the response stored on an item (an own
// success on the attempt's own put, a replay on another's with the same
// fingerprint, not expired, less ClockSkew by the attempt's clock, when it
// arrived); a put that landed and is still there is the attempt's own
// success, or ErrStore when the call failed; every error is explained.
func (s *schedule) checkItemReturn(e event, model *[idem.MaxGenerations]*itemRec, stored map[string]*itemRec, started time.Time, sawOtherFp bool) {
	p := e.run
	err := p.err
	var last *itemPut
	if n := len(p.puts); n > 0 {
		last = &p.puts[n-1]
	}
	switch {
	case err == nil && !p.res.Replayed:
		if last == nil || string(p.resp) != last.rec.data {
			s.violate("unstored-success", "%s answered %q as its own outcome, but no put of it with that response landed", p.name, p.resp)
		}
	case err == nil:
		switch it := stored[string(p.resp)]; {
		case it == nil:
			s.violate("unstored-success", "%s replayed %q, which no item stored", p.name, p.resp)
		case s.item.tokens[it.owner] == p:
			s.violate("own-put-replayed", "%s replayed its own put's response %q as another's", p.name, p.resp)
		case it.fp != p.fp:
			s.violate("fingerprint-not-bound", "%s (fingerprint %s) replayed %q stored with fingerprint %s", p.name, p.fp, p.resp, it.fp)
		case it.exp < started.Add(-skewDur).Unix():
			s.violate("stale-replay", "%s, called at %s by its clock, replayed %q, which had expired %s before", p.name, s.rel(started), p.resp, started.Sub(time.Unix(it.exp, 0)))
		}
	case errors.Is(err, idem.ErrKeyUsedUp):
		for g, it := range model {
			if it == nil || !it.order || it.exp >= e.clock.Add(-skewDur).Unix() {
				s.violate("early-used-up", "%s: %v, though generation %d holds %s", p.name, err, g, it)
				break
			}
		}
	case errors.Is(err, idem.ErrMismatch):
		if !sawOtherFp {
			s.violate("unexplained-mismatch", "%s: %v, though no item of another request, live when it arrived, was there while it ran", p.name, err)
		}
	case errors.Is(err, idem.ErrInProgress):
		if p.recConflicts == 0 {
			s.violate("unexplained-in-progress", "%s: %v, though its put was never refused by a transaction in flight", p.name, err)
		}
	case errors.Is(err, idem.ErrStore):
		if p.faults == 0 {
			s.violate("unexplained-error", "%s: ErrStore without a store fault: %v", p.name, err)
		}
	case errors.Is(err, errFn):
	default:
		// ErrItemWrite, ErrWriteConditionFailed, ErrCommitLost, ErrTooLarge:
		// none has a cause here.
		s.violate("impossible-error", "%s: impossible error: %v", p.name, err)
	}
	if last == nil || !sameItem(model[last.gen], last.rec) {
		return
	}
	// Its last put landed and its item is still there.
	switch {
	case err == nil && !p.res.Replayed && string(p.resp) == last.rec.data:
	case errors.Is(err, idem.ErrStore) && (last.landFail || p.failAfterLand):
	default:
		s.violate("own-put-not-own-success", "%s's put at generation %d landed (its item is there), yet it answered %s", p.name, last.gen, answerOf(p))
	}
}
