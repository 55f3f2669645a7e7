//go:build explore

package explore

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"

	"github.com/parcelhq/orderservice/internal/idem"
)

// api is one attempt's DynamoDB client: the real one, with a step point
// before every call where the scheduler injects the fault it chose, and a
// record of every write to the idempotency record that landed. It models
// nothing: every call that is not refused by an injected fault is sent to
// DynamoDB Local as the guard made it (a put of the record also asks for
// ALL_OLD, which the guard's answer never sees, so that the harness learns
// what it replaced).
type api struct{ p *proc }

var _ idem.API = (*api)(nil)

var (
	errInjected = errors.New("explore: injected failure; the request did not land")
	errLandFail = errors.New("explore: injected failure after the request was sent; it may have landed")
)

func opErr(op string, err error) error {
	return &smithy.OperationError{ServiceID: "DynamoDB", OperationName: op, Err: err}
}

// refusal is the error DynamoDB returns for a write colliding with a
// transaction in flight: TransactionConflictException for a single-item
// write, a TransactionCanceledException whose reason for action at is
// TransactionConflict (the others None) for a transaction.
func refusal(op string, actions, at int) error {
	if op != "TransactWriteItems" {
		return opErr(op, &types.TransactionConflictException{Message: aws.String("Transaction is ongoing for the item")})
	}
	reasons := make([]types.CancellationReason, actions)
	for i := range reasons {
		reasons[i].Code = aws.String("None")
	}
	reasons[at].Code = aws.String("TransactionConflict")
	return opErr(op, &types.TransactionCanceledException{Message: aws.String("Transaction cancelled, please refer cancellation reasons for specific reasons [TransactionConflict]"), CancellationReasons: reasons})
}

// send runs one call through the step point: call sends it to DynamoDB (and
// records what landed); conflict is the refusal for a fault.
func (a *api) send(pt point, call func() error, conflict func(onBiz bool) error) error {
	p := a.p
	for {
		f := p.at(pt)
		p.lastFault = f
		switch f {
		case fCrash:
			p.die()
			return errCrashed
		case fFail:
			return opErr(pt.op, errInjected)
		case fConflict:
			return conflict(false)
		case fBizConflict:
			return conflict(true)
		}
		err := call()
		switch f {
		case fLost:
			p.s.tracef("     %s %s: response lost (%s); the SDK sends it again", p.name, pt.op, outcome(err))
			continue
		case fLandCrash:
			p.s.tracef("     %s %s: landed (%s)", p.name, pt.op, outcome(err))
			p.die()
			return errCrashed
		case fLandFail:
			p.s.tracef("     %s %s: sent (%s), then failed", p.name, pt.op, outcome(err))
			return opErr(pt.op, errLandFail)
		}
		return err
	}
}

func outcome(err error) string {
	if err == nil {
		return "ok"
	}
	var ccf *types.ConditionalCheckFailedException
	var tce *types.TransactionCanceledException
	switch {
	case errors.As(err, &ccf):
		return "condition failed"
	case errors.As(err, &tce):
		return "cancelled"
	}
	return err.Error()
}

func (a *api) isRecord(table *string) bool { return aws.ToString(table) == a.p.s.env.table }

func (a *api) GetItem(ctx context.Context, in *dynamodb.GetItemInput, o ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	var out *dynamodb.GetItemOutput
	err := a.send(point{kind: pCall, op: "GetItem"}, func() error {
		// The slice is what ends a Config.Wait loop. Settle retries wait
		// for nothing (Wait 0), and their reads (the retry hint's) take no
		// time, so that each answers at the instant the settle judges the
		// items at.
		if !a.p.instant {
			a.p.s.advance(readSlice)
		}
		var err error
		out, err = a.p.s.env.client.GetItem(ctx, in, o...)
		if err == nil && out.Item != nil && a.p.s.cfg.sabotage == "stale-read" {
			// Self-test: the record read (on the record table, or an
			// Item-mode item) is served with its expiry a day on, so the
			// reader takes an expired outcome for a live one.
			for _, attr := range []string{idem.AttrExpiresAt, "idem_exp"} {
				if n, ok := nAttr(out.Item[attr]); ok {
					out.Item[attr] = &types.AttributeValueMemberN{Value: strconv.FormatInt(n+86400, 10)}
				}
			}
		}
		return err
	}, nil)
	return out, err
}

func (a *api) PutItem(ctx context.Context, in *dynamodb.PutItemInput, o ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	if aws.ToString(in.TableName) == a.p.s.env.itemDef.Name {
		return a.putItem(ctx, in, o...)
	}
	observe := a.isRecord(in.TableName)
	sent := *in
	if observe {
		sent.ReturnValues = types.ReturnValueAllOld
	}
	var out *dynamodb.PutItemOutput
	err := a.send(point{kind: pCall, op: "PutItem"}, func() error {
		var err error
		out, err = a.p.s.env.client.PutItem(ctx, &sent, o...)
		if err == nil && observe {
			a.p.s.landedPut(a.p, in.Item, out.Attributes, true)
		}
		return err
	}, func(bool) error { return refusal("PutItem", 1, 0) })
	if out != nil && in.ReturnValues != types.ReturnValueAllOld {
		out.Attributes = nil
	}
	return out, err
}

func (a *api) UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, o ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	var out *dynamodb.UpdateItemOutput
	err := a.send(point{kind: pCall, op: "UpdateItem"}, func() error {
		var err error
		out, err = a.p.s.env.client.UpdateItem(ctx, in, o...)
		if err == nil && a.isRecord(in.TableName) {
			a.p.s.landedUpdate(a.p, in.ExpressionAttributeValues)
		}
		return err
	}, func(bool) error { return refusal("UpdateItem", 1, 0) })
	return out, err
}

func (a *api) DeleteItem(ctx context.Context, in *dynamodb.DeleteItemInput, o ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error) {
	sent := *in
	if a.p.s.cfg.sabotage == "unfenced-delete" {
		sent.ConditionExpression, sent.ExpressionAttributeNames, sent.ExpressionAttributeValues = nil, nil, nil
	}
	var out *dynamodb.DeleteItemOutput
	err := a.send(point{kind: pCall, op: "DeleteItem"}, func() error {
		var err error
		out, err = a.p.s.env.client.DeleteItem(ctx, &sent, o...)
		if err == nil && a.isRecord(in.TableName) {
			a.p.s.record(event{kind: evRelease, run: a.p})
		}
		return err
	}, func(bool) error { return refusal("DeleteItem", 1, 0) })
	return out, err
}

func (a *api) TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, o ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error) {
	n := len(in.TransactItems)
	rec := -1 // the action on the idempotency record
	for i, it := range in.TransactItems {
		if (it.Put != nil && a.isRecord(it.Put.TableName)) || (it.Update != nil && a.isRecord(it.Update.TableName)) {
			rec = i
		}
	}
	var out *dynamodb.TransactWriteItemsOutput
	err := a.send(point{kind: pCall, op: "TransactWriteItems", items: n}, func() error {
		var old map[string]types.AttributeValue
		if rec >= 0 && in.TransactItems[rec].Put != nil {
			// What the put will replace: nothing else runs meanwhile.
			got, err := a.p.s.env.client.GetItem(ctx, &dynamodb.GetItemInput{
				TableName: in.TransactItems[rec].Put.TableName, Key: map[string]types.AttributeValue{idem.AttrID: in.TransactItems[rec].Put.Item[idem.AttrID]},
				ConsistentRead: aws.Bool(true),
			})
			if err != nil {
				return err
			}
			old = got.Item
		}
		var err error
		out, err = a.p.s.env.client.TransactWriteItems(ctx, in, o...)
		token := aws.ToString(in.ClientRequestToken)
		if err == nil && rec >= 0 && !a.p.tokens[token] {
			// A success with a token that landed before is DynamoDB's
			// idempotent answer to a retry, not a second write.
			a.p.tokens[token] = true
			if it := in.TransactItems[rec]; it.Put != nil {
				a.p.s.landedPut(a.p, it.Put.Item, old, true)
			} else {
				a.p.s.landedUpdate(a.p, it.Update.ExpressionAttributeValues)
			}
		}
		return err
	}, func(onBiz bool) error {
		at := n - 1
		if rec >= 0 {
			at = rec
		}
		if onBiz {
			at = (rec + 1) % n // an action that is not the record's
		}
		return refusal("TransactWriteItems", n, at)
	})
	return out, err
}

// rec is an idempotency record as stored.
type rec struct {
	status     string
	owner      string // the owner token
	leaseUntil time.Time
	expiresAt  int64 // epoch s
	data       string
}

func decodeRec(item map[string]types.AttributeValue) *rec {
	if len(item) == 0 {
		return nil
	}
	r := &rec{status: sAttr(item["status"]), owner: sAttr(item["owner"])}
	if ms, ok := nAttr(item["lease_until"]); ok {
		r.leaseUntil = time.UnixMilli(ms)
	}
	r.expiresAt, _ = nAttr(item[idem.AttrExpiresAt])
	if b, ok := item["data"].(*types.AttributeValueMemberB); ok {
		r.data = string(b.Value)
	}
	return r
}

func sAttr(v types.AttributeValue) string {
	if s, ok := v.(*types.AttributeValueMemberS); ok {
		return s.Value
	}
	return ""
}

func nAttr(v types.AttributeValue) (int64, bool) {
	n, ok := v.(*types.AttributeValueMemberN)
	if !ok {
		return 0, false
	}
	i, err := strconv.ParseInt(n.Value, 10, 64)
	return i, err == nil
}
