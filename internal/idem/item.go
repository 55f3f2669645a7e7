package idem

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/parcelhq/orderservice/internal/ddb"
)

// ItemConfig says where Item mode keeps its records: on the one new item fn
// writes, in the table fn writes it to, at a key fn draws from
// ddb.KeyRand(ctx) (see the package documentation).
type ItemConfig struct {
	// Table is the table of fn's items, as ItemTableDefinition returns it:
	// its Name and PartitionKey (a string) are where every record of this
	// mode lives, and record-only items carry its TTL attribute.
	Table ddb.Table
	// NewKey makes the partition key of fn's new item from the bytes it
	// reads from r; it must be the very function fn uses on
	// ddb.KeyRand(ctx) (for orders: orders.NewIDFrom), and read r first,
	// before anything else in fn draws from it. The guard calls it to learn
	// the key of a record-only item and to check fn's item.
	NewKey func(r io.Reader) (string, error)
}

// Item-mode record attributes, on fn's item or on a record-only item. The
// prefix is reserved: fn's item must have no attribute that starts with it.
const (
	// AttrItemTTL is the TTL attribute of an Item-mode table (a Number,
	// epoch seconds). Only record-only items carry it, so TTL never deletes
	// fn's items; it also marks an item as record-only, the only kind a
	// later attempt may write over once it expired.
	AttrItemTTL = itemAttrPrefix + "ttl"

	itemAttrPrefix  = "idem_"
	itemFingerprint = itemAttrPrefix + "fp"
	itemData        = itemAttrPrefix + "data"
	itemEncoding    = itemAttrPrefix + "enc"
	itemExpiresAt   = itemAttrPrefix + "exp" // epoch s: the key's expiry, on every record
	itemOwner       = itemAttrPrefix + "owner"
)

// recordAttrs names, as a ProjectionExpression, the attributes an Item-mode
// item's record is read from (decodeItemRecord, and whether the item is
// record-only): a read that only judges the record fetches these, not fn's
// attributes. DynamoDB bills a read by the whole item's size either way;
// the projection saves decoding fn's attributes on both sides.
const recordAttrs = itemExpiresAt + ", " + itemFingerprint + ", " + itemData + ", " + itemEncoding + ", " + AttrItemTTL

// ItemTableDefinition returns t, the table of fn's items in Item mode, with
// TTL on AttrItemTTL, so that record-only items are deleted once expired and
// fn's items never are. It panics when t already has another TTL attribute:
// a DynamoDB table has one, and fn's items must not carry it.
func ItemTableDefinition(t ddb.Table) ddb.Table {
	if t.TTLAttribute != "" && t.TTLAttribute != AttrItemTTL {
		panic("idem: table " + t.Name + " already has TTL on " + t.TTLAttribute)
	}
	t.TTLAttribute = AttrItemTTL
	return t
}

// MaxGenerations bounds how often one (scope, key) can be used again after
// its retention in Item mode: each use takes the next generation's derived
// key, since the earlier ones hold fn's items, which are never written over.
// Past it Do answers ErrKeyUsedUp.
const MaxGenerations = 8

// itemCondition admits the Put of a record, on fn's item or a record-only
// item, only where there is no item, or a record-only item (it carries the
// TTL attribute) whose record expired more than ClockSkew ago: fn's items are
// never written over, however old their record.
const itemCondition = "attribute_not_exists(#pk) OR (attribute_exists(#ttl) AND #exp < :now_s)"

// doItem implements Do in Item mode: for generation 0, 1, ... run fn with the
// generation's key randomness, then one conditional PutItem of fn's item (or
// a record-only item) carrying the record; a failed condition returns the
// item in the way, which answers the request (replay, ErrMismatch) or, an
// expired record on fn's item of an earlier use of the key, sends the
// attempt to the next generation.
func (g *Guard) doItem(ctx context.Context, id string, req Request, fn func(context.Context) (Outcome, error)) (Result, error) {
	var token itemToken
	_, _ = rand.Read(token[:]) // never fails (crypto/rand)
	gen := 0
	for tries := 0; tries < MaxGenerations+2; tries++ {
		res, next, err := g.itemAttempt(ctx, id, gen, token, req, fn)
		switch next {
		case itemDone:
			return res, err
		case itemNextGeneration:
			gen++
			if gen == MaxGenerations {
				g.emit(ctx, Event{Kind: Mismatch, ID: id, Scope: req.Scope})
				return Result{}, fmt.Errorf("%w (%d generations)", ErrKeyUsedUp, MaxGenerations)
			}
		}
		// itemAgain: the item in the way vanished (TTL) or expired meanwhile.
	}
	err := storeErr("item commit", errors.New("the item at the derived key kept changing"))
	g.emit(ctx, Event{Kind: StoreError, ID: id, Scope: req.Scope, Err: err})
	return Result{}, err
}

type itemNext int

const (
	itemDone           itemNext = iota // res, err answer the request
	itemNextGeneration                 // an earlier use of the key holds this generation
	itemAgain                          // try this generation again
	itemCommitted                      // this attempt's own put had landed
)

// itemAttempt runs fn for one generation and commits or judges.
func (g *Guard) itemAttempt(ctx context.Context, id string, gen int, token itemToken, req Request, fn func(context.Context) (Outcome, error)) (Result, itemNext, error) {
	seed := itemSeed(id, gen)
	uow := ddb.NewUnitOfWork(1)
	fnCtx := ddb.WithKeyRand(ddb.WithUnitOfWork(ctx, uow), newKeyStream(seed))
	out, writes, err := g.runUnleased(ctx, fnCtx, uow, id, req, fn)
	if err != nil {
		return Result{}, itemDone, err
	}
	step(ctx, StepHandled)
	if !out.Keep {
		return Result{Response: out.Response}, itemDone, nil
	}
	key, err := g.cfg.Item.NewKey(newKeyStream(seed))
	if err != nil {
		return Result{}, itemDone, fmt.Errorf("idem: item key: %w", err)
	}
	item, err := g.itemFor(key, writes)
	if err != nil {
		return Result{}, itemDone, err
	}
	now := g.cfg.Now()
	exp := g.expiresAt(now)
	recordOnly := len(writes) == 0
	item[itemFingerprint] = fingerprintValue(req.Fingerprint)
	raw := out.Response
	if raw == nil {
		raw = []byte{}
	}
	item[itemData] = &types.AttributeValueMemberB{Value: raw}
	item[itemExpiresAt] = nv(exp)
	item[itemOwner] = &types.AttributeValueMemberB{Value: token[:]}
	if recordOnly {
		item[AttrItemTTL] = nv(exp)
	}
	size := ddb.ItemSize(item)
	if size > writeUnitBytes {
		// Over one write unit: store the response compressed if that is
		// smaller (it is for a typical order, whose JSON repeats its id).
		other := size - len(raw) + len(itemEncoding) + len(encodingSnappy)
		if enc := encodeResponseAt(out.Response, 0, other); enc.encoding != "" {
			item[itemData] = &types.AttributeValueMemberB{Value: enc.data}
			item[itemEncoding] = sv(enc.encoding)
			size += len(enc.data) - len(raw) + len(itemEncoding) + len(enc.encoding)
		}
	}
	if size > maxItemBytes {
		err := fmt.Errorf("%w: item with its record of about %d bytes exceeds DynamoDB's %d", ErrTooLarge, size, maxItemBytes)
		g.emit(ctx, Event{Kind: TooLarge, ID: id, Scope: req.Scope, Err: err})
		return Result{}, itemDone, err
	}
	in := &dynamodb.PutItemInput{
		TableName:                aws.String(g.cfg.Item.Table.Name),
		Item:                     item,
		ConditionExpression:      aws.String(itemCondition),
		ExpressionAttributeNames: map[string]string{"#pk": g.cfg.Item.Table.PartitionKey, "#ttl": AttrItemTTL, "#exp": itemExpiresAt},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":now_s": nv(now.Add(-g.cfg.ClockSkew).Unix()),
		},
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	}
	err = retryConflicts(ctx, func(int) error {
		_, err := g.api.PutItem(ctx, in)
		return err
	})
	old, failed := conditionFailed(err)
	switch {
	case err == nil:
	case failed:
		res, next, err := g.itemRefused(ctx, id, key, token, req, now, old, err)
		if next != itemCommitted {
			return res, next, err
		}
	default:
		if _, refused := conflicted(err); refused {
			g.emit(ctx, Event{Kind: Conflict, ID: id, Scope: req.Scope})
			return Result{}, itemDone, &InProgressError{}
		}
		err = storeErr("item commit", err)
		g.emit(ctx, Event{Kind: StoreError, ID: id, Scope: req.Scope, Err: err})
		return Result{}, itemDone, err
	}
	g.remember(id, req.Fingerprint, out.Response, time.Unix(exp, 0))
	g.emit(ctx, Event{Kind: Miss, ID: id, Scope: req.Scope})
	g.emit(ctx, Event{Kind: Committed, ID: id, Scope: req.Scope})
	step(ctx, StepCommitted)
	return Result{Response: out.Response}, itemDone, nil
}

// itemRefused interprets the item that failed the condition of this
// attempt's put at key (cause is the failure): this attempt's own (an SDK
// retry of a put that landed) is success; a live record answers the request;
// an expired one on fn's item of an earlier use sends the attempt on to the
// next generation; an item that is not a record is a write condition
// failure.
func (g *Guard) itemRefused(ctx context.Context, id, key string, token itemToken, req Request, now time.Time, old map[string]types.AttributeValue, cause error) (Result, itemNext, error) {
	if len(old) == 0 { // no ALL_OLD item: read it
		item, err := g.getItem(ctx, key, "")
		if err != nil {
			err = storeErr("read item", err)
			g.emit(ctx, Event{Kind: StoreError, ID: id, Scope: req.Scope, Err: err})
			return Result{}, itemDone, err
		}
		if len(item) == 0 {
			return Result{}, itemAgain, nil
		}
		old = item
	}
	if _, isRecord := old[itemExpiresAt]; !isRecord {
		return Result{}, itemDone, &WriteConditionError{Index: 0, Item: old, Err: cause}
	}
	if b, ok := old[itemOwner].(*types.AttributeValueMemberB); ok && bytes.Equal(b.Value, token[:]) {
		return Result{}, itemCommitted, nil // an SDK retry of this put, which had landed
	}
	rec, err := decodeItemRecord(id, old)
	if err != nil {
		err = storeErr("read item", err)
		g.emit(ctx, Event{Kind: StoreError, ID: id, Scope: req.Scope, Err: err})
		return Result{}, itemDone, err
	}
	if g.live(rec, now) {
		res, err := g.judge(ctx, req, rec)
		return res, itemDone, err
	}
	if _, recordOnly := old[AttrItemTTL]; recordOnly {
		return Result{}, itemAgain, nil // expired since the condition was judged
	}
	return Result{}, itemNextGeneration, nil
}

// getItem reads the item at key of the item table with a consistent read,
// only the attributes projection names (a ProjectionExpression; "" reads
// all of them): nil or empty when there is none, or when it has none of the
// projected attributes; the SDK's error when the read fails.
func (g *Guard) getItem(ctx context.Context, key, projection string) (map[string]types.AttributeValue, error) {
	in := &dynamodb.GetItemInput{
		TableName: aws.String(g.cfg.Item.Table.Name), ConsistentRead: aws.Bool(true),
		Key: map[string]types.AttributeValue{g.cfg.Item.Table.PartitionKey: sv(key)},
	}
	if projection != "" {
		in.ProjectionExpression = aws.String(projection)
	}
	out, err := g.api.GetItem(ctx, in)
	if err != nil {
		return nil, err
	}
	return out.Item, nil
}

// itemFor returns the item to put for fn's writes at key: a copy of the item
// of fn's one Put, or a record-only item when fn wrote nothing. Any other
// unit of work is ErrItemWrite.
func (g *Guard) itemFor(key string, writes []types.TransactWriteItem) (map[string]types.AttributeValue, error) {
	t := g.cfg.Item.Table
	if len(writes) == 0 {
		item := make(map[string]types.AttributeValue, 1+itemRecordAttrs)
		item[t.PartitionKey] = sv(key)
		return item, nil
	}
	if len(writes) > 1 {
		return nil, fmt.Errorf("%w: fn made %d writes", ErrItemWrite, len(writes))
	}
	w := writes[0]
	p := w.Put
	switch {
	case p == nil || w.Update != nil || w.Delete != nil || w.ConditionCheck != nil:
		return nil, fmt.Errorf("%w: fn's write is not a Put", ErrItemWrite)
	case aws.ToString(p.TableName) != t.Name:
		return nil, fmt.Errorf("%w: fn's Put is on table %s, not %s", ErrItemWrite, aws.ToString(p.TableName), t.Name)
	case str(p.Item[t.PartitionKey]) != key:
		return nil, fmt.Errorf("%w: fn's item is not at its derived key (did fn draw its key from ddb.KeyRand with Config.Item.NewKey?)", ErrItemWrite)
	case !newItemCondition(p, t.PartitionKey):
		return nil, fmt.Errorf("%w: fn's Put has a condition other than attribute_not_exists(%s)", ErrItemWrite, t.PartitionKey)
	}
	for a := range p.Item {
		if strings.HasPrefix(a, itemAttrPrefix) {
			return nil, fmt.Errorf("%w: fn's item has the attribute %s, whose prefix is the guard's", ErrItemWrite, a)
		}
	}
	item := make(map[string]types.AttributeValue, len(p.Item)+itemRecordAttrs)
	maps.Copy(item, p.Item)
	return item, nil
}

// itemRecordAttrs is how many attributes at most itemAttempt adds to fn's
// item: the fingerprint, data, expiry, owner, TTL and encoding.
const itemRecordAttrs = 6

// newItemCondition reports whether p's condition is none or "the item does
// not exist" (attribute_not_exists of the partition key pk, by name or
// through an expression attribute name, spaced as DynamoDB allows), which the
// guard's own condition implies.
func newItemCondition(p *types.Put, pk string) bool {
	c := aws.ToString(p.ConditionExpression)
	if c == "" {
		return true
	}
	name, ok := notExistsOperand(c)
	if !ok {
		return false
	}
	if strings.HasPrefix(name, "#") {
		name = p.ExpressionAttributeNames[name]
	}
	return name == pk
}

// notExistsOperand returns the operand of c when c is exactly
// attribute_not_exists(OPERAND), with white space allowed around each token,
// and OPERAND a path of letters, digits, '_', '.' and '-' optionally prefixed
// by '#'. A parser of this one form, not a regexp: it runs on every create.
func notExistsOperand(c string) (string, bool) {
	const fn = "attribute_not_exists"
	rest, ok := strings.CutPrefix(strings.TrimLeft(c, spaces), fn)
	if !ok {
		return "", false
	}
	rest, ok = strings.CutPrefix(strings.TrimLeft(rest, spaces), "(")
	if !ok {
		return "", false
	}
	rest, ok = strings.CutSuffix(strings.TrimRight(rest, spaces), ")")
	if !ok {
		return "", false
	}
	name := strings.Trim(rest, spaces)
	path := strings.TrimPrefix(name, "#")
	if path == "" {
		return "", false
	}
	for i := 0; i < len(path); i++ {
		switch b := path[i]; {
		case 'a' <= b && b <= 'z', 'A' <= b && b <= 'Z', '0' <= b && b <= '9', b == '_', b == '.', b == '-':
		default:
			return "", false
		}
	}
	return name, true
}

// spaces are the white space characters an expression may hold between its
// tokens.
const spaces = " \t\n\f\r"

// decodeItemRecord reads the record an Item-mode item carries. An attribute
// it starts to read must be added to recordAttrs, which the retry hint's
// read fetches.
func decodeItemRecord(id string, item map[string]types.AttributeValue) (*record, error) {
	rec := &record{id: id, status: statusCompleted, fingerprint: fingerprintOf(item[itemFingerprint])}
	if s, ok := num(item[itemExpiresAt]); ok {
		rec.expiresAt = time.Unix(s, 0)
	}
	raw := []byte{}
	if b, ok := item[itemData].(*types.AttributeValueMemberB); ok && b.Value != nil {
		raw = b.Value
	}
	d, err := decodeResponse(raw, str(item[itemEncoding]))
	if err != nil {
		return nil, fmt.Errorf("idem: item record %s: %w", id, err)
	}
	rec.data = d
	return rec, nil
}

// ItemKey returns, for Item mode, the partition key of the item on which
// the record of (scope, key) lives at generation gen (0 for a key's first
// use, see MaxGenerations): the key fn draws from ddb.KeyRand in that
// generation. It fails when g is not in Item mode or Config.Item.NewKey
// does. For operators and test harnesses; Do needs no help.
func (g *Guard) ItemKey(scope, key string, gen int) (string, error) {
	if g.cfg.Mode != Item {
		return "", fmt.Errorf("idem: ItemKey: the guard is in %s mode", g.cfg.Mode)
	}
	return g.cfg.Item.NewKey(newKeyStream(itemSeed(RecordID(scope, key), gen)))
}

// itemToken is an Item-mode attempt's owner token: stored as 16 bytes,
// half the size of the hex tokens of the other modes, since in this mode
// every byte is on fn's item.
type itemToken [16]byte

// writeUnitBytes is what one DynamoDB write unit writes. Item mode stores
// the response compressed (when that makes it smaller) once fn's item with
// its record would be larger: the record shares the item with fn's
// attributes, and writes are billed per KB of the whole item, while a
// smaller item is not worth the compression's CPU (tens of microseconds).
const writeUnitBytes = 1024

// fingerprintValue stores a lower-case hex fingerprint (idemhttp's SHA-256)
// as its bytes, half the size; any other as a string. fingerprintOf reads
// either back.
func fingerprintValue(fp string) types.AttributeValue {
	if b, err := hex.DecodeString(fp); err == nil && len(fp) > 0 && hex.EncodeToString(b) == fp {
		return &types.AttributeValueMemberB{Value: b}
	}
	return sv(fp)
}

func fingerprintOf(v types.AttributeValue) string {
	if b, ok := v.(*types.AttributeValueMemberB); ok {
		return hex.EncodeToString(b.Value)
	}
	return str(v)
}

// itemSeed is the seed of the key randomness of generation gen of record id.
func itemSeed(id string, gen int) [32]byte {
	return sha256.Sum256([]byte("idem/item/v1\n" + id + "\n" + strconv.Itoa(gen)))
}

// keyStream is the deterministic stream of bytes ddb.KeyRand gives fn in
// Item mode: the SHA-256 of the seed and a block counter, block after block.
// Safe for concurrent use.
type keyStream struct {
	mu    sync.Mutex
	seed  [32]byte
	next  uint64
	block [32]byte
	left  []byte
}

func newKeyStream(seed [32]byte) *keyStream { return &keyStream{seed: seed} }

// Read fills p; it never fails.
func (s *keyStream) Read(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for n < len(p) {
		if len(s.left) == 0 {
			var in [40]byte
			copy(in[:], s.seed[:])
			binary.BigEndian.PutUint64(in[32:], s.next)
			s.next++
			s.block = sha256.Sum256(in[:])
			s.left = s.block[:]
		}
		c := copy(p[n:], s.left)
		s.left = s.left[c:]
		n += c
	}
	return n, nil
}
