package idem

import (
	"context"
	"time"
)

// readFirst answers a request that says it is a retry (Request.Retry) from
// its stored outcome with consistent reads, before fn runs and before
// anything is written: one GetItem of the record (Item mode: of each
// generation's derived key, up to the one in use). It answers (ok true)
// only from a live COMPLETED record, as the mode's protocol would from the
// same record: a replay, or ErrMismatch for another request's. Anything
// else (no record, one in progress, one expired, a read that failed) is
// left to the protocol (ok false), which then decides the request as it
// does without the hint; so a wrong hint costs those reads more, a right one
// saves fn's run and a conditional write or transaction, and neither binds
// the key to another outcome.
func (g *Guard) readFirst(ctx context.Context, id string, req Request) (Result, error, bool) {
	now := g.cfg.Now()
	rec, err := g.readFirstRecord(ctx, id, now)
	if rec == nil || rec.status != statusCompleted || !g.live(rec, now) {
		g.emit(ctx, Event{Kind: RetryReadMissed, ID: id, Scope: req.Scope, Err: err})
		return Result{}, nil, false
	}
	res, err := g.judgeRead(ctx, req, rec, true)
	return res, err, true
}

// readFirstRecord returns the record of id that would answer a request at
// now, or nil when there is none, with the error (ErrStore) when it cannot
// be read or does not decode. In Item mode that is the record of the first
// generation whose item is not an order with an expired record (those send
// an attempt on to the next generation); nil when that item is missing or
// is not a record.
func (g *Guard) readFirstRecord(ctx context.Context, id string, now time.Time) (*record, error) {
	if g.cfg.Mode != Item {
		return g.getRecord(ctx, id)
	}
	for gen := 0; gen < MaxGenerations; gen++ {
		key, err := g.cfg.Item.NewKey(newKeyStream(itemSeed(id, gen)))
		if err != nil {
			return nil, err
		}
		item, err := g.getItem(ctx, key, recordAttrs)
		if err != nil {
			return nil, storeErr("read first", err)
		}
		if len(item) == 0 {
			return nil, nil
		}
		if _, isRecord := item[itemExpiresAt]; !isRecord {
			return nil, nil
		}
		rec, err := decodeItemRecord(id, item)
		if err != nil {
			return nil, storeErr("read first", err)
		}
		_, recordOnly := item[AttrItemTTL]
		if g.live(rec, now) || recordOnly {
			return rec, nil
		}
	}
	return nil, nil
}
