package idem

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/parcelhq/orderservice/internal/ddb"
)

// attempt is a lease held by this process.
type attempt struct {
	id         string
	owner      string
	leaseUntil time.Time
}

// doLease implements Do in Lease mode.
func (g *Guard) doLease(ctx context.Context, id string, req Request, fn func(context.Context) (Outcome, error)) (Result, error) {
	// Every turn of this loop is bounded: a refusal by a transaction in
	// flight comes back at most maxConflictRetries times, and every wait for
	// the holder draws on one patience of Config.Wait.
	wait := g.patience()
	for refusals := 0; ; {
		att, rec, err := g.acquire(ctx, id, req)
		if err != nil {
			return Result{}, err
		}
		if att != nil {
			return g.runLeased(ctx, att, req, fn)
		}
		if rec == nil {
			// Refused by a transaction in flight that has ended since: the
			// key is free. Within Wait try again after a pause, a few
			// times; otherwise say "retry now".
			if refusals < maxConflictRetries && wait.pause(ctx, conflictDelay(refusals)) {
				refusals++
				continue
			}
			if err := ctx.Err(); err != nil {
				return Result{}, err
			}
			g.emit(ctx, Event{Kind: Conflict, ID: id, Scope: req.Scope})
			return Result{}, &InProgressError{}
		}
		res, err := g.judge(ctx, req, rec)
		if !errors.Is(err, ErrInProgress) || g.cfg.Wait == 0 {
			return res, err
		}
		rec, done, werr := g.waitFor(ctx, id, req.Fingerprint, wait)
		switch {
		case werr != nil:
			return Result{}, werr
		case !done:
			return res, err // the InProgressError from before the wait, with its hint
		case g.live(rec, g.cfg.Now()):
			return g.judge(ctx, req, rec) // completed: replay; another request's: mismatch
		}
		// The first attempt gave the key up (released, or its lease lapsed): try again.
	}
}

// acquire tries to take the lease with one conditional PutItem. It returns
// the attempt when it did (also when the put landed on an earlier try of the
// SDK and a retry was then refused: the record carries this attempt's owner
// token); else the live record that blocked it; else neither, when DynamoDB
// refused the put because of a transaction in flight and the record as read
// afterwards blocks no longer, so the caller may try again at once. On
// ErrStore it has released any lease it may hold.
func (g *Guard) acquire(ctx context.Context, id string, req Request) (*attempt, *record, error) {
	now := g.cfg.Now()
	lease := g.cfg.Lease
	if d, ok := ctx.Deadline(); ok {
		lease = min(lease, time.Until(d)) // a context's deadline is on the real clock, not Config.Now's
	}
	if lease <= 0 {
		return nil, nil, context.DeadlineExceeded
	}
	att := &attempt{id: id, owner: newOwner(), leaseUntil: now.Add(lease)}
	item := map[string]types.AttributeValue{
		AttrID:          sv(id),
		attrStatus:      sv(statusInProgress),
		attrFingerprint: sv(req.Fingerprint),
		attrOwner:       sv(att.owner),
		attrLeaseUntil:  nv(att.leaseUntil.UnixMilli()),
		AttrExpiresAt:   nv(g.leaseExpiresAt(now, att.leaseUntil)),
	}
	out, err := g.api.PutItem(ctx, &dynamodb.PutItemInput{
		TableName:                           aws.String(g.cfg.Table),
		Item:                                item,
		ConditionExpression:                 aws.String(takeoverCondition),
		ExpressionAttributeNames:            g.takeoverNames(),
		ExpressionAttributeValues:           g.takeoverValues(now),
		ReturnValues:                        types.ReturnValueAllOld,
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	if err == nil {
		g.emit(ctx, Event{Kind: Miss, ID: id, Scope: req.Scope})
		if str(out.Attributes[attrStatus]) == statusInProgress {
			g.emit(ctx, Event{Kind: LeaseTakeover, ID: id, Scope: req.Scope})
		}
		return att, nil, nil
	}
	rec, err := g.refusedBy(ctx, id, err)
	switch {
	case err != nil:
		g.emit(ctx, Event{Kind: StoreError, ID: id, Scope: req.Scope, Err: err})
		// The put may have landed with its answer lost: give back the lease
		// this attempt may hold, so retries need not wait for it to lapse.
		// Fenced by att's owner token, it deletes nothing else; its own
		// failure adds nothing to the error already reported.
		if released, _ := g.deleteFenced(ctx, att); released {
			g.emit(ctx, Event{Kind: Released, ID: id, Scope: req.Scope})
		}
		return nil, nil, err
	case rec != nil && rec.owner == att.owner && rec.status == statusInProgress:
		// An earlier try of this very PutItem landed: the lease is ours.
		g.emit(ctx, Event{Kind: Miss, ID: id, Scope: req.Scope})
		return att, nil, nil
	case rec == nil:
		return nil, nil, nil
	}
	return nil, rec, nil
}

// refusedBy returns the record that refused an acquire with err: the ALL_OLD
// item of a failed condition, or else the record as read now (when the
// failed condition returned none, or a transaction in flight refused the
// put); nil when the read finds none, or, after a refusal by a transaction
// in flight, one that no longer blocks. Any other err, or a failed read, is
// ErrStore.
func (g *Guard) refusedBy(ctx context.Context, id string, err error) (*record, error) {
	if old, failed := conditionFailed(err); failed {
		rec, derr := decodeRecord(old)
		if derr != nil {
			return nil, storeErr("acquire", derr)
		}
		if rec != nil {
			return rec, nil
		}
		return g.getRecord(ctx, id) // asked for ALL_OLD but got nothing back
	}
	if _, refused := conflicted(err); refused {
		// The record is being written by a transaction in flight (its
		// holder committing, say): nothing was written; judge the record as
		// it reads now.
		rec, err := g.getRecord(ctx, id)
		if err != nil || !g.live(rec, g.cfg.Now()) {
			return nil, err
		}
		return rec, nil
	}
	return nil, storeErr("acquire", err)
}

// runLeased runs fn under att and commits or releases.
func (g *Guard) runLeased(ctx context.Context, att *attempt, req Request, fn func(context.Context) (Outcome, error)) (Result, error) {
	uow := ddb.NewUnitOfWork(1)
	// fn's context ends the commit budget before the lease.
	fnCtx, cancel := withFnTimeout(ddb.WithUnitOfWork(ctx, uow), g.fnTime(att.leaseUntil.Sub(g.cfg.Now())))
	defer cancel()
	step(ctx, StepAcquired)
	out, err := callFn(fnCtx, fn, func() {
		uow.Close()
		g.release(ctx, att, req)
	})
	writes := uow.Close()
	if uerr := uow.Err(); uerr != nil && err == nil {
		// fn ignored a refused write: committing the rest would lose it.
		err = fmt.Errorf("%w: %w", ErrTooManyWrites, uerr)
	}
	if errors.Is(err, ErrTooManyWrites) {
		g.emit(ctx, Event{Kind: TooLarge, ID: att.id, Scope: req.Scope, Err: err})
	}
	if err != nil {
		g.release(ctx, att, req)
		return Result{}, err
	}
	if err := ctx.Err(); err != nil {
		g.release(ctx, att, req)
		return Result{}, fmt.Errorf("idem: request ended before commit: %w", err)
	}
	step(ctx, StepHandled)
	if !out.Keep {
		g.release(ctx, att, req)
		return Result{Response: out.Response}, nil
	}
	enc := encodeResponse(out.Response, recordOverheadBytes+len(req.Fingerprint))
	now := g.cfg.Now()
	set := enc.attributes()
	exp := g.expiresAt(now)
	set[AttrExpiresAt] = nv(exp)
	if err := g.checkSize(ctx, req, att.id, set, writes); err != nil {
		g.release(ctx, att, req)
		return Result{}, err
	}
	if err := g.commitLeased(ctx, att, req, set, writes); err != nil {
		return Result{}, err
	}
	g.remember(att.id, req.Fingerprint, out.Response, time.Unix(exp, 0))
	g.emit(ctx, Event{Kind: Committed, ID: att.id, Scope: req.Scope})
	step(ctx, StepCommitted)
	return Result{Response: out.Response}, nil
}

// checkSize enforces the item and transaction limits on a record with the
// given attributes (besides those every record has) and writes.
func (g *Guard) checkSize(ctx context.Context, req Request, id string, attrs map[string]types.AttributeValue, writes []types.TransactWriteItem) error {
	size := ddb.ItemSize(attrs) + recordOverheadBytes + len(req.Fingerprint)
	var err error
	if size > maxItemBytes {
		err = fmt.Errorf("%w: record of about %d bytes exceeds DynamoDB's %d", ErrTooLarge, size, maxItemBytes)
	} else {
		err = transactionSize(writes, size)
	}
	if err != nil {
		g.emit(ctx, Event{Kind: TooLarge, ID: id, Scope: req.Scope, Err: err})
	}
	return err
}

// commitLeased makes the record COMPLETED with the attributes in set
// (status, data, expiry, optional encoding), fenced by
// att, together with writes in one transaction (or one UpdateItem when there
// are none).
func (g *Guard) commitLeased(ctx context.Context, att *attempt, req Request, set map[string]types.AttributeValue, writes []types.TransactWriteItem) error {
	names := fenceNames()
	names["#data"], names["#exp"], names["#lease"], names["#enc"] = attrData, AttrExpiresAt, attrLeaseUntil, attrEncoding
	values := fenceValues(att.owner)
	values[":completed"], values[":data"], values[":exp"] = set[attrStatus], set[attrData], set[AttrExpiresAt]
	expr := "SET #status = :completed, #data = :data, #exp = :exp"
	if enc, ok := set[attrEncoding]; ok {
		values[":enc"] = enc
		expr += ", #enc = :enc REMOVE #lease"
	} else {
		expr += " REMOVE #lease, #enc"
	}

	var err error
	if len(writes) == 0 {
		in := &dynamodb.UpdateItemInput{
			TableName: aws.String(g.cfg.Table), Key: g.key(att.id),
			UpdateExpression: aws.String(expr), ConditionExpression: aws.String(fenceCondition),
			ExpressionAttributeNames: names, ExpressionAttributeValues: values,
			ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
		}
		err = retryConflicts(ctx, func(int) error {
			_, err := g.api.UpdateItem(ctx, in)
			return err
		})
		if item, failed := conditionFailed(err); failed {
			return g.fenceFailed(ctx, att, req, item)
		}
	} else {
		items := append(writes[:len(writes):len(writes)], types.TransactWriteItem{Update: &types.Update{
			TableName: aws.String(g.cfg.Table), Key: g.key(att.id),
			UpdateExpression: aws.String(expr), ConditionExpression: aws.String(fenceCondition),
			ExpressionAttributeNames: names, ExpressionAttributeValues: values,
			ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
		}})
		err = retryConflicts(ctx, func(try int) error {
			// The token names this try of the commit, so an SDK retry of a
			// transaction that landed succeeds instead of failing its fence.
			_, err := g.api.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{
				TransactItems: items, ClientRequestToken: commitToken(att.owner, try),
			})
			return err
		})
		var tce *types.TransactionCanceledException
		if err != nil && errors.As(err, &tce) {
			if reasonFailed(tce, len(writes)) {
				return g.fenceFailed(ctx, att, req, tce.CancellationReasons[len(writes)].Item)
			}
			if i, ok := firstFailed(tce, len(writes)); ok {
				g.release(ctx, att, req)
				return &WriteConditionError{Index: i, Item: tce.CancellationReasons[i].Item, Err: err}
			}
		}
		if wc := writeConflict(err, len(writes)); wc != nil {
			g.release(ctx, att, req)
			return wc
		}
	}
	if err != nil {
		op := "commit"
		if _, refused := conflicted(err); refused {
			// The record's action, still refused after the retries (a
			// refusal of fn's writes alone is a write conflict, above):
			// another attempt of this key has a transaction in flight on the
			// record (one that this live lease makes fail, or a takeover's
			// if the lease lapsed). Nothing was written, but fn ran, and in
			// this mode its effects outside DynamoDB may have happened: not
			// ErrInProgress, which promises that nothing ran. The lease is
			// released: keeping it would only make a retry wait for it to
			// lapse before running fn again all the same.
			op = "commit refused on every try by a transaction in flight on the record; nothing was written"
		}
		err = storeErr(op, err)
		g.emit(ctx, Event{Kind: StoreError, ID: att.id, Scope: req.Scope, Err: err})
		g.release(ctx, att, req)
		return err
	}
	return nil
}

// fenceFailed interprets a commit whose fence failed, given the record as it
// was then: already COMPLETED by this very attempt means an earlier try of
// the same commit landed (the SDK retried after a lost response), which is
// success; anything else means the lease was taken over.
func (g *Guard) fenceFailed(ctx context.Context, att *attempt, req Request, item map[string]types.AttributeValue) error {
	if str(item[attrOwner]) == att.owner && str(item[attrStatus]) == statusCompleted {
		return nil
	}
	g.emit(ctx, Event{Kind: CommitLost, ID: att.id, Scope: req.Scope, Err: ErrCommitLost})
	return ErrCommitLost
}

// reasonFailed reports whether the action at index i failed its condition.
func reasonFailed(tce *types.TransactionCanceledException, i int) bool {
	return i < len(tce.CancellationReasons) && aws.ToString(tce.CancellationReasons[i].Code) == "ConditionalCheckFailed"
}

// firstFailed returns the index of the first of the first n actions that
// failed its condition.
func firstFailed(tce *types.TransactionCanceledException, n int) (int, bool) {
	for i := 0; i < n && i < len(tce.CancellationReasons); i++ {
		if reasonFailed(tce, i) {
			return i, true
		}
	}
	return 0, false
}

// release gives up att's lease with a fenced DeleteItem. It cannot undo a
// commit (the fence requires IN_PROGRESS) nor touch another attempt's record
// (the fence requires att's owner token); a failed fence changes nothing. A
// store error leaves the lease to lapse.
func (g *Guard) release(ctx context.Context, att *attempt, req Request) {
	released, err := g.deleteFenced(ctx, att)
	switch {
	case err != nil:
		g.emit(ctx, Event{Kind: StoreError, ID: att.id, Scope: req.Scope, Err: storeErr("release", err)})
	case released:
		g.emit(ctx, Event{Kind: Released, ID: att.id, Scope: req.Scope})
	}
}

// deleteFenced deletes att's record if att still holds it IN_PROGRESS. It
// reports whether it deleted it, and DynamoDB's error other than the failed
// fence.
func (g *Guard) deleteFenced(ctx context.Context, att *attempt) (bool, error) {
	rctx, cancel := detached(ctx)
	defer cancel()
	_, err := g.api.DeleteItem(rctx, &dynamodb.DeleteItemInput{
		TableName: aws.String(g.cfg.Table), Key: g.key(att.id),
		ConditionExpression:       aws.String(fenceCondition),
		ExpressionAttributeNames:  fenceNames(),
		ExpressionAttributeValues: fenceValues(att.owner),
	})
	if _, failed := conditionFailed(err); failed {
		return false, nil
	}
	return err == nil, err
}
