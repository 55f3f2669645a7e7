//go:build explore

package explore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/parcelhq/orderservice/internal/idem"
)

type evKind uint8

const (
	evAcquire evKind = iota + 1 // an IN_PROGRESS record landed
	evCommit                    // a COMPLETED record landed (with fn's writes, if any)
	evRelease                   // a DeleteItem of the record landed
	evFnStart                   // fn's side effect happened
	evReturn                    // Do returned to the caller
	evStart                     // Do was called
	evItemPut                   // Item mode: a put of an item with its record landed
	evTTL                       // Item mode: TTL deleted an expired record-only item
)

// event is something that happened, at virtual time at, in landing order.
type event struct {
	kind     evKind
	run      *proc
	at       time.Time
	rec      *rec // evAcquire, evCommit: the record as written
	old      *rec // the record a put replaced (nil: none)
	replaces bool // a put: old says what it replaced

	clock    time.Time // the clock of run's host at (virtual time when run is nil)
	gen      int       // evItemPut, evTTL: the generation
	item     *itemRec  // evItemPut: the item as written
	itemOld  *itemRec  // evItemPut: what it replaced; evTTL: what TTL deleted
	landFail bool      // evItemPut: the call then failed
}

func (s *schedule) record(e event) {
	e.at, e.clock = s.virtual(), s.virtual()
	if e.run != nil {
		e.clock = e.run.clock()
	}
	s.mu.Lock()
	s.log = append(s.log, e)
	s.mu.Unlock()
	switch e.kind {
	case evAcquire:
		s.tracef("     %s acquired: lease until %s, expires %s", e.run.name, s.rel(e.rec.leaseUntil), s.rel(time.Unix(e.rec.expiresAt, 0)))
	case evCommit:
		s.tracef("     %s committed %q, expires %s", e.run.name, e.rec.data, s.rel(time.Unix(e.rec.expiresAt, 0)))
	case evRelease:
		s.tracef("     %s released the record", e.run.name)
	case evFnStart:
		s.tracef("     %s fn ran (side effect) at %s", e.run.name, s.rel(e.at))
	case evItemPut:
		s.tracef("     %s's put landed at generation %d: %s %q, replacing %s", e.run.name, e.gen, e.item, e.item.data, e.itemOld)
	}
}

// landedPut records a put of the record that landed.
func (s *schedule) landedPut(p *proc, item, old map[string]types.AttributeValue, replaces bool) {
	r := decodeRec(item)
	s.owner(r.owner, p)
	kind := evAcquire
	if r.status == "COMPLETED" {
		kind = evCommit
	}
	s.record(event{kind: kind, run: p, rec: r, old: decodeRec(old), replaces: replaces})
}

// landedUpdate records a commit by UpdateItem that landed: the record is
// read back as it now is (nothing else runs meanwhile).
func (s *schedule) landedUpdate(p *proc, _ map[string]types.AttributeValue) {
	r, err := s.readRecord(context.Background())
	if err != nil || r == nil {
		s.violate("harness", "harness: read back a landed commit of %s: %v (record %v)", p.name, err, r)
		return
	}
	s.record(event{kind: evCommit, run: p, rec: r})
}

func (s *schedule) owner(token string, p *proc) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.owners == nil {
		s.owners = map[string]*proc{}
	}
	s.owners[token] = p
}

func (s *schedule) recordKey() map[string]types.AttributeValue {
	return map[string]types.AttributeValue{idem.AttrID: &types.AttributeValueMemberS{Value: idem.RecordID(s.req().Scope, s.key)}}
}

func (s *schedule) readRecord(ctx context.Context) (*rec, error) {
	out, err := s.env.client.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(s.env.table), Key: s.recordKey(), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return nil, err
	}
	return decodeRec(out.Item), nil
}

// readTables returns the record and the runs that have a business item.
func (s *schedule) readTables(ctx context.Context) (*rec, map[string]bool, error) {
	keys := make([]map[string]types.AttributeValue, len(s.all))
	for i, p := range s.all {
		keys[i] = map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: s.bizKey(p)}}
	}
	req := map[string]types.KeysAndAttributes{
		s.env.table: {Keys: []map[string]types.AttributeValue{s.recordKey()}, ConsistentRead: aws.Bool(true)},
		s.env.biz:   {Keys: keys, ConsistentRead: aws.Bool(true)},
	}
	var r *rec
	biz := map[string]bool{}
	for len(req) > 0 {
		out, err := s.env.client.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{RequestItems: req})
		if err != nil {
			return nil, nil, err
		}
		for _, it := range out.Responses[s.env.table] {
			r = decodeRec(it)
		}
		for _, it := range out.Responses[s.env.biz] {
			biz[sAttr(it["run"])] = true
		}
		req = out.UnprocessedKeys
	}
	return r, biz, nil
}

// retry runs a settle attempt (no faults, no waiting for the scheduler) to
// its end.
func (s *schedule) retry(ctx context.Context, name string, off time.Duration, cache *idem.Cache) *proc {
	p := s.newProc(name, off, 0, cache, true)
	p.hint, p.instant = s.cfg.hint, true
	s.tracef("     %s retries at %s", name, s.rel(s.virtual()))
	s.wg.Add(1)
	p.main(ctx)
	return p
}

// settle retries the key once every attempt has returned or crashed: a
// retry replays or creates exactly one outcome; it may meet a live lease only
// if the lease's holder crashed or failed to release it, and then succeeds
// once every lease lapsed. The first attempt's host, whose Cache may hold the
// outcome, answers the same.
func (s *schedule) settle(ctx context.Context) {
	s.tracef("  the dust settles at %s", s.rel(s.virtual()))
	last := s.retry(ctx, "s1", 0, nil)
	if errors.Is(last.err, idem.ErrInProgress) {
		r, err := s.readRecord(ctx)
		var q *proc
		if r != nil {
			q = s.owners[r.owner]
		}
		switch {
		case err != nil:
			s.violate("harness", "harness: %v", err)
		case r == nil || r.status != "IN_PROGRESS":
			s.violate("settle", "a retry after the dust settled got %v, but the record is %+v", last.err, r)
		case q == nil:
			s.violate("harness", "harness: the record's owner %s is no attempt's", r.owner)
		case !q.crashed && !q.deleteFaulted && r.leaseUntil.After(s.virtual().Add(q.off)):
			// (A lease over by its holder's clock blocks others for up to
			// ClockSkew more, by design.)
			s.violate("key-blocked", "key blocked: %s returned (%s) without crashing or failing a release, yet its lease holds the key for %s more by its clock; a retry after the dust settled got %v",
				q.name, q.outcomeString(), r.leaseUntil.Sub(s.virtual().Add(q.off)), last.err)
		}
		s.advance(mLapse.amount(s.cfg))
		s.tracef("  every lease lapses: clock at %s", s.rel(s.virtual()))
		last = s.retry(ctx, "s2", 0, nil)
		if last.err != nil {
			s.violate("settle", "after every lease lapsed, a retry failed: %v", last.err)
		}
	} else if last.err != nil {
		s.violate("settle", "a retry after the dust settled failed: %v", last.err)
	}
	if last.err != nil {
		return
	}
	// A later retry answers the same, unless the outcome expired meanwhile
	// (by that retry's clock) and it made a new one: check verifies that it
	// replaced only an expired record.
	again := s.retry(ctx, "s3", 0, nil)
	if again.err != nil || !again.same(last) {
		s.violate("not-exactly-one", "a second retry answered %q (replayed %v, err %v) after the first got %q: not exactly one outcome", again.resp, again.res.Replayed, again.err, last.resp)
	}
	host := s.retry(ctx, "c0", s.procs[0].off, s.procs[0].cache)
	if host.err != nil || !host.same(again) {
		s.violate("cache-answer", "%s's host (its Cache) answered %q (replayed %v, err %v) where the table's answer is %q", s.procs[0].name, host.resp, host.res.Replayed, host.err, again.resp)
	}
}

// same reports whether p, which succeeded after prev did, answered prev's
// response, or made an outcome of its own.
func (p *proc) same(prev *proc) bool {
	return bytes.Equal(p.resp, prev.resp) || (!p.res.Replayed && string(p.resp) == p.response())
}

func (p *proc) outcomeString() string {
	switch {
	case !p.returned:
		return "did not return"
	case p.err != nil:
		return "error: " + p.err.Error()
	}
	return fmt.Sprintf("%q", p.resp)
}

// hold is what the checker knows of one attempt's claim on the key.
type hold struct {
	acquired, fnRan, committed, released, replaced bool
	running, sawOther                              bool      // in Do; saw another attempt's record meanwhile
	started                                        time.Time // its host's clock when Do was called
	lease                                          time.Time // by the holder's clock
	exp                                            int64     // its COMPLETED record's expiry
}

// check verifies the invariants on the landed writes and the tables.
func (s *schedule) check(ctx context.Context) {
	table, biz, err := s.readTables(ctx)
	if err != nil {
		s.violate("harness", "harness: read the tables: %v", err)
		return
	}
	st := map[*proc]*hold{}
	for _, p := range s.all {
		st[p] = &hold{}
	}
	var cur *rec
	var curRun *proc
	committed := map[string]int64{} // responses committed so far -> their expires_at (Unix seconds)
	for _, e := range s.log {
		h := st[e.run]
		if e.kind == evStart {
			h.running, h.started = true, e.clock
		}
		switch e.kind {
		case evAcquire, evCommit:
			if e.kind == evCommit && !e.replaces {
				// Lease-mode commit: fenced by the holder's token.
				if cur == nil || cur.status != "IN_PROGRESS" || curRun != e.run {
					s.violate("fence", "%s's commit landed at %s though it did not hold the record (%s): the fence failed", e.run.name, s.rel(e.at), s.describe(cur, curRun))
				}
			} else {
				if !sameRec(e.old, cur) {
					s.violate("harness", "harness: %s's put at %s replaced %+v, the landed writes say %s", e.run.name, s.rel(e.at), e.old, s.describe(cur, curRun))
				}
				if o := e.old; o != nil {
					who := s.describe(o, s.owners[o.owner])
					if o.status == "IN_PROGRESS" && o.leaseUntil.UnixMilli() >= e.at.UnixMilli() {
						s.violate("takeover-live-lease", "%s took over %s at %s with %s of its lease left", e.run.name, who, s.rel(e.at), o.leaseUntil.Sub(e.at))
					}
					if o.status == "COMPLETED" && o.expiresAt >= e.at.Unix() {
						s.violate("second-outcome", "%s replaced %s at %s, %s before it expired: a second outcome for one key within retention", e.run.name, who, s.rel(e.at), time.Unix(o.expiresAt, 0).Sub(e.at))
					}
				}
				if curRun != nil && curRun != e.run {
					st[curRun].replaced = true
				}
			}
			cur, curRun = e.rec, e.run
			if e.kind == evAcquire {
				h.acquired, h.lease = true, e.rec.leaseUntil
			} else {
				h.committed, h.exp = true, e.rec.expiresAt
				committed[e.rec.data] = e.rec.expiresAt
			}
		case evRelease:
			if cur == nil || cur.status != "IN_PROGRESS" || curRun != e.run {
				s.violate("release-foreign", "%s's release at %s deleted a record it did not hold (%s)", e.run.name, s.rel(e.at), s.describe(cur, curRun))
			}
			cur, curRun, h.released = nil, nil, true
		case evFnStart:
			if s.cfg.mode == idem.Lease {
				s.checkFn(e, st, cur, curRun)
			}
			h.fnRan = true
		case evReturn:
			s.checkReturn(e, h, committed)
			h.running = false
		}
		if cur != nil {
			for q, hq := range st {
				if hq.running && q != curRun {
					hq.sawOther = true
				}
			}
		}
	}
	switch {
	case !sameRec(table, cur):
		s.violate("harness", "harness: the table holds %+v, the landed writes say %s", table, s.describe(cur, curRun))
	case cur != nil && cur.status == "COMPLETED" && table.data != curRun.response():
		s.violate("stored-response", "the COMPLETED record of %s holds %q", curRun.name, table.data)
	}
	for _, p := range s.all {
		switch h := st[p]; {
		case !s.cfg.writes && biz[p.name]:
			s.violate("harness", "harness: a business item of %s in a configuration without writes", p.name)
		case s.cfg.writes && biz[p.name] && !h.committed:
			s.violate("not-atomic", "%s's business item is stored without its COMPLETED record: not atomic", p.name)
		case s.cfg.writes && !biz[p.name] && h.committed:
			s.violate("not-atomic", "%s's COMPLETED record is stored without its business item: not atomic", p.name)
		}
	}
}

// checkFn: in Lease mode fn runs at most once per key, unless an earlier
// run's lease truly lapsed (by its holder's clock) before it committed, or
// it gave the key up (released it, having failed); and never again within
// the retention of a committed outcome.
func (s *schedule) checkFn(e event, st map[*proc]*hold, cur *rec, curRun *proc) {
	if cur == nil || cur.status != "IN_PROGRESS" || curRun != e.run {
		s.violate("fn-without-lease", "fn ran in %s at %s while it did not hold the record (%s)", e.run.name, s.rel(e.at), s.describe(cur, curRun))
	}
	for q, h := range st {
		if q == e.run {
			continue
		}
		if h.fnRan && h.acquired && !h.committed && !h.released && !e.at.Add(q.off).After(h.lease) {
			s.violate("double-execution", "double execution: fn ran in %s at %s while %s, whose fn had run, still held its lease for %s (by its clock)", e.run.name, s.rel(e.at), q.name, h.lease.Sub(e.at.Add(q.off)))
		}
		if h.committed && h.exp >= e.at.Unix() {
			s.violate("double-execution", "double execution: fn ran in %s at %s within the retention of %s's committed outcome", e.run.name, s.rel(e.at), q.name)
		}
	}
}

// checkReturn: every success an attempt returned is the stored response (its
// own commit, or a replay of one that was live, by the attempt's clock less
// ClockSkew, at some moment while Do ran: an outcome that expired before the
// request arrived is never replayed, one that expired while it ran may be);
// the errors are those its faults explain.
func (s *schedule) checkReturn(e event, h *hold, committed map[string]int64) {
	p := e.run
	switch err := p.err; {
	case err == nil && !p.res.Replayed:
		if !h.committed || string(p.resp) != p.response() {
			s.violate("unstored-success", "%s answered %q as its own outcome, but it committed nothing", p.name, p.resp)
		}
	case err == nil:
		exp, ok := committed[string(p.resp)]
		if !ok {
			s.violate("unstored-success", "%s replayed %q, which no attempt committed", p.name, p.resp)
		} else if exp < h.started.Add(-skewDur).Unix() {
			s.violate("stale-replay", "%s, called at %s by its clock, replayed %q, which had expired %s before", p.name, s.rel(h.started), p.resp, h.started.Sub(time.Unix(exp, 0)))
		}
	case errors.Is(err, idem.ErrMismatch), errors.Is(err, idem.ErrTooLarge), errors.Is(err, idem.ErrTooManyWrites):
		s.violate("impossible-error", "%s: impossible error: %v", p.name, err)
	case errors.Is(err, idem.ErrWriteConditionFailed):
		// fn's write has a condition that always holds: only a refusal of
		// it by a transaction in flight explains this.
		if p.bizConflicts == 0 {
			s.violate("impossible-error", "%s: %v, though fn's write was never refused", p.name, err)
		}
	case errors.Is(err, idem.ErrInProgress):
		// "Key in use" needs another attempt's record, or a refusal of this
		// attempt's write of the record by a transaction in flight.
		if !h.sawOther && p.recConflicts == 0 {
			s.violate("unexplained-in-progress", "%s: %v, though no other attempt held a record of the key while it ran and its record was never refused (refusals of fn's write: %d)", p.name, err, p.bizConflicts)
		}
	case errors.Is(err, idem.ErrCommitLost):
		if !h.replaced {
			s.violate("unexplained-error", "%s: ErrCommitLost though no other attempt took its record over", p.name)
		}
	case errors.Is(err, idem.ErrStore):
		if p.faults == 0 {
			s.violate("unexplained-error", "%s: ErrStore without a store fault: %v", p.name, err)
		}
	case errors.Is(err, errFn), errors.Is(err, context.DeadlineExceeded):
	default:
		s.violate("unexplained-error", "%s: unexpected error: %v", p.name, err)
	}
}

func sameRec(a, b *rec) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.status == b.status && a.owner == b.owner
}

func (s *schedule) describe(r *rec, p *proc) string {
	if r == nil {
		return "no record"
	}
	name := "?"
	if p != nil {
		name = p.name
	}
	if r.status == "IN_PROGRESS" {
		return fmt.Sprintf("%s's IN_PROGRESS record (lease until %s)", name, s.rel(r.leaseUntil))
	}
	return fmt.Sprintf("%s's %s record (expires %s)", name, r.status, s.rel(time.Unix(r.expiresAt, 0)))
}
