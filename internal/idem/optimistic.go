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

// doOptimistic implements Do in Optimistic mode: run fn, then one write that
// commits fn's writes and the COMPLETED record if there is no live record,
// or learns the live record from the cancellation.
func (g *Guard) doOptimistic(ctx context.Context, id string, req Request, fn func(context.Context) (Outcome, error)) (Result, error) {
	uow := ddb.NewUnitOfWork(1)
	out, writes, err := g.runUnleased(ctx, ddb.WithUnitOfWork(ctx, uow), uow, id, req, fn)
	if err != nil {
		return Result{}, err
	}
	step(ctx, StepHandled)
	if !out.Keep {
		return g.unkept(ctx, id, req, out.Response)
	}
	now := g.cfg.Now()
	item := encodeResponse(out.Response, recordOverheadBytes+len(req.Fingerprint)).attributes()
	item[AttrID] = sv(id)
	item[attrFingerprint] = sv(req.Fingerprint)
	exp := g.expiresAt(now)
	item[AttrExpiresAt] = nv(exp)
	token := newOwner()
	item[attrOwner] = sv(token)
	if err := g.checkSize(ctx, req, id, item, writes); err != nil {
		return Result{}, err
	}
	put := &types.Put{
		TableName:                           aws.String(g.cfg.Table),
		Item:                                item,
		ConditionExpression:                 aws.String(takeoverCondition),
		ExpressionAttributeNames:            g.takeoverNames(),
		ExpressionAttributeValues:           g.takeoverValues(now),
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	}
	var (
		winner map[string]types.AttributeValue
		lost   bool
	)
	if len(writes) == 0 {
		in := &dynamodb.PutItemInput{
			TableName: put.TableName, Item: put.Item, ConditionExpression: put.ConditionExpression,
			ExpressionAttributeNames: put.ExpressionAttributeNames, ExpressionAttributeValues: put.ExpressionAttributeValues,
			ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
		}
		err = retryConflicts(ctx, func(int) error {
			_, err := g.api.PutItem(ctx, in)
			return err
		})
		winner, lost = conditionFailed(err)
	} else {
		items := append(writes[:len(writes):len(writes)], types.TransactWriteItem{Put: put})
		err = retryConflicts(ctx, func(try int) error {
			// A concurrent duplicate's commit in flight cancels this one with
			// TransactionConflict; the next try then meets its record.
			_, err := g.api.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{
				TransactItems: items, ClientRequestToken: commitToken(token, try), // an SDK retry of a landed try succeeds
			})
			return err
		})
		var tce *types.TransactionCanceledException
		if err != nil && errors.As(err, &tce) {
			if reasonFailed(tce, len(writes)) {
				winner, lost = tce.CancellationReasons[len(writes)].Item, true
			} else if i, ok := firstFailed(tce, len(writes)); ok {
				return Result{}, &WriteConditionError{Index: i, Item: tce.CancellationReasons[i].Item, Err: err}
			}
		}
		if wc := writeConflict(err, len(writes)); wc != nil {
			return Result{}, wc
		}
	}
	if _, refused := conflicted(err); refused {
		// Still colliding on the record after the retries: another attempt
		// is committing this key right now. Nothing of this attempt was
		// written.
		g.emit(ctx, Event{Kind: Conflict, ID: id, Scope: req.Scope})
		return Result{}, &InProgressError{}
	}
	if lost && str(winner[attrOwner]) == token {
		lost, err = false, nil // an SDK retry of this very commit, which had landed
	}
	if lost {
		return g.replayWinner(ctx, id, req, winner)
	}
	if err != nil {
		err = storeErr("commit", err)
		g.emit(ctx, Event{Kind: StoreError, ID: id, Scope: req.Scope, Err: err})
		return Result{}, err
	}
	g.remember(id, req.Fingerprint, out.Response, time.Unix(exp, 0))
	g.emit(ctx, Event{Kind: Miss, ID: id, Scope: req.Scope})
	g.emit(ctx, Event{Kind: Committed, ID: id, Scope: req.Scope})
	step(ctx, StepCommitted)
	return Result{Response: out.Response}, nil
}

// replayWinner answers from the live record that beat this attempt's commit;
// with Config.Wait it waits for a Lease-mode winner to complete.
func (g *Guard) replayWinner(ctx context.Context, id string, req Request, item map[string]types.AttributeValue) (Result, error) {
	rec, err := decodeRecord(item)
	if err == nil && rec == nil {
		rec, err = g.getRecord(ctx, id) // no ALL_OLD item: read it
	}
	if err != nil {
		err = storeErr("read winner", err)
		g.emit(ctx, Event{Kind: StoreError, ID: id, Scope: req.Scope, Err: err})
		return Result{}, err
	}
	if rec == nil {
		// The winner was released between the cancellation and the read; the
		// caller's retry will run afresh.
		g.emit(ctx, Event{Kind: Conflict, ID: id, Scope: req.Scope})
		return Result{}, &InProgressError{}
	}
	return g.answerLive(ctx, id, req, rec, nil)
}

// unkept answers an outcome fn did not keep, which Optimistic mode has not
// written, the way Lease mode's acquire would have: the key's record, read
// once, decides first (a replay, ErrMismatch or ErrInProgress, after
// Config.Wait), and only when no live record blocks the key is resp returned
// as it is. A failed read is ErrStore: without the record there is no
// telling whether the key belongs to another request.
func (g *Guard) unkept(ctx context.Context, id string, req Request, resp []byte) (Result, error) {
	rec, err := g.getRecord(ctx, id)
	if err != nil {
		g.emit(ctx, Event{Kind: StoreError, ID: id, Scope: req.Scope, Err: err})
		return Result{}, err
	}
	if !g.live(rec, g.cfg.Now()) {
		return Result{Response: resp}, nil
	}
	return g.answerLive(ctx, id, req, rec, &Result{Response: resp})
}

// answerLive answers from rec, a live record that is not this attempt's;
// with Config.Wait it waits for an in-progress holder to complete. When the
// holder gives the key up meanwhile, it returns freed, or ErrInProgress with
// RetryAfter 0 when freed is nil (the attempt's own outcome is lost).
func (g *Guard) answerLive(ctx context.Context, id string, req Request, rec *record, freed *Result) (Result, error) {
	res, err := g.judge(ctx, req, rec)
	if !errors.Is(err, ErrInProgress) || g.cfg.Wait == 0 {
		return res, err
	}
	got, done, werr := g.waitFor(ctx, id, req.Fingerprint, g.patience())
	switch {
	case werr != nil:
		return Result{}, werr
	case done && g.live(got, g.cfg.Now()):
		return g.judge(ctx, req, got)
	case done && freed != nil:
		return *freed, nil
	case done:
		// The holder gave the key up. This attempt's outcome is discarded
		// (its commit was refused); the key is free, so retry at once.
		return Result{}, &InProgressError{}
	}
	return res, err
}

// runUnleased runs fn with fnCtx (ctx carrying uow, and whatever else fn's
// context needs), ending fnCtx the commit budget before ctx's deadline, and
// returns fn's outcome and the writes it made through uow, for a mode
// without a lease (Optimistic, Item). It returns fn's error; ErrTooManyWrites
// (and emits TooLarge) when fn's writes do not fit or fn ignored a refused
// write, since committing the rest would lose it; and ctx's error when ctx
// ended while fn ran.
func (g *Guard) runUnleased(ctx, fnCtx context.Context, uow *ddb.UnitOfWork, id string, req Request, fn func(context.Context) (Outcome, error)) (Outcome, []types.TransactWriteItem, error) {
	if d, ok := ctx.Deadline(); ok {
		var cancel context.CancelFunc
		fnCtx, cancel = withFnTimeout(fnCtx, g.fnTime(time.Until(d)))
		defer cancel()
	}
	out, err := callFn(fnCtx, fn, func() { uow.Close() })
	writes := uow.Close()
	if uerr := uow.Err(); uerr != nil && err == nil {
		err = fmt.Errorf("%w: %w", ErrTooManyWrites, uerr)
	}
	if errors.Is(err, ErrTooManyWrites) {
		g.emit(ctx, Event{Kind: TooLarge, ID: id, Scope: req.Scope, Err: err})
	}
	if err == nil {
		err = ctx.Err()
	}
	return out, writes, err
}
