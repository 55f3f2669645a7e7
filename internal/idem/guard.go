package idem

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/parcelhq/orderservice/internal/ddb"
)

// Mode selects how the guard keeps a second execution out; see the package
// documentation.
type Mode int

const (
	// Lease acquires a lease with one conditional PutItem, runs fn, and
	// commits fenced by the lease's owner token. Use it whenever fn has side
	// effects beyond the writes it makes through ddb.Write.
	Lease Mode = iota
	// Optimistic takes no lease: it runs fn, then commits fn's writes and the
	// COMPLETED record in one transaction conditioned on "no live record".
	// fn may run more than once for a key (concurrent duplicates, or a retry
	// not served by the Cache), but at most one run commits; the others
	// replay the winner. Only for fn whose every side effect is a write
	// through ddb.Write.
	Optimistic
	// Item keeps the record on the one new item fn writes (or on an item of
	// its own when fn writes none), in fn's table at a key derived from the
	// record id: one conditional PutItem, no transaction. fn may run more
	// than once for a key, as in Optimistic, and may make no write or one
	// Put of a new item whose key it draws from ddb.KeyRand (see
	// Config.Item and the package documentation).
	Item
)

func (m Mode) String() string {
	switch m {
	case Lease:
		return "lease"
	case Optimistic:
		return "optimistic"
	case Item:
		return "item"
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

// Defaults applied by New to zero Config fields.
const (
	DefaultRetention = 24 * time.Hour
	DefaultLease     = 30 * time.Second
	DefaultClockSkew = 2 * time.Second
	// DefaultCommitBudget leaves room for a commit: a transaction's round
	// trip, its retries after conflicts (about 0.3 s at most), and the
	// SDK's own retries of a throttled or lost call.
	DefaultCommitBudget = time.Second
)

// Config configures a Guard. Zero durations take the defaults.
type Config struct {
	// Table is the idempotency table (see TableDefinition). Required, except
	// in Item mode, which does not use it.
	Table string
	Mode  Mode
	// Item is where Item mode keeps its records; required in Item mode,
	// unused in the others.
	Item ItemConfig
	// Retention is how long a COMPLETED record (and so a replayable outcome)
	// lives, counted from its commit. It may be any positive duration, even
	// shorter than the lease: an IN_PROGRESS record lives at least until its
	// lease ends plus ClockSkew, and is judged by its lease alone, so a short
	// retention never frees a key whose holder is still running. Default 24h.
	Retention time.Duration
	// Lease is the longest an attempt holds the key in Lease mode; it is
	// shortened to the time left before ctx's deadline (a Lambda's
	// deadline). fn's context ends CommitBudget before the lease does.
	// Default 30s.
	Lease time.Duration
	// CommitBudget is the time kept for the commit after fn: fn's context
	// ends this long before the lease ends (Lease mode) or before ctx's
	// deadline (both modes), so that a handler that honours its context
	// and returns when it ends still has its outcome committed, within the
	// lease and before a Lambda is stopped. When the time left is less than
	// twice the budget, fn and the commit get half each. Default 1s.
	CommitBudget time.Duration
	// ClockSkew is the tolerated difference between hosts' clocks. A lease
	// or a record counts as lapsed or expired for an attempt that wants to
	// take it over only once it is past by more than ClockSkew by that
	// attempt's clock, and the Cache stops serving a record ClockSkew before
	// it expires. A host whose clock runs ahead by less than ClockSkew thus
	// can never take over a lease its holder still counts on. Default 2s.
	ClockSkew time.Duration
	// Wait bounds how long a duplicate waits for an in-progress first
	// attempt, polling with consistent reads, before answering
	// ErrInProgress; if the first attempt completes it is replayed, if it
	// gives up the key the duplicate runs (in Lease mode; in Optimistic mode,
	// where the duplicate has already run, it answers ErrInProgress with
	// RetryAfter 0 and commits nothing), and if the key is then held for
	// another request the duplicate answers ErrMismatch at once. In Lease
	// mode an acquire refused by a transaction in flight is also tried again
	// within Wait, at most a few times. Wait is measured on Now and on the
	// real time the attempt pauses, and ends when either says it is over, so
	// a clock that stands still cannot make the wait last until the context
	// ends. 0 answers ErrInProgress at once.
	Wait time.Duration
	// Cache, when set, holds COMPLETED records this process committed or
	// replayed from the table, so a retry that reaches the same process is
	// answered without a round trip.
	Cache *Cache
	// Observer, when set, is called synchronously with every Event.
	Observer func(ctx context.Context, e Event)
	// Now is the clock; default time.Now. For tests.
	Now func() time.Time
}

// API is the part of the DynamoDB client the guard uses.
type API interface {
	GetItem(context.Context, *dynamodb.GetItemInput, ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	PutItem(context.Context, *dynamodb.PutItemInput, ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	UpdateItem(context.Context, *dynamodb.UpdateItemInput, ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
	DeleteItem(context.Context, *dynamodb.DeleteItemInput, ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error)
	TransactWriteItems(context.Context, *dynamodb.TransactWriteItemsInput, ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error)
}

// Guard runs functions at most once per (scope, key). It is safe for
// concurrent use.
type Guard struct {
	api API
	cfg Config
}

// New returns a guard over api. It panics when cfg.Table is empty (outside
// Item mode), cfg.Item is incomplete (in Item mode) or a duration is
// negative: all are programming errors.
func New(api API, cfg Config) *Guard {
	if cfg.Mode == Item {
		if cfg.Item.Table.Name == "" || cfg.Item.Table.PartitionKey == "" || cfg.Item.NewKey == nil {
			panic("idem: Item mode needs Config.Item.Table (name and partition key) and Config.Item.NewKey")
		}
		if cfg.Item.Table.TTLAttribute != AttrItemTTL {
			panic("idem: Config.Item.Table must be made with ItemTableDefinition")
		}
	} else if cfg.Table == "" {
		panic("idem: Config.Table is empty")
	}
	if cfg.Retention < 0 || cfg.Lease < 0 || cfg.ClockSkew < 0 || cfg.Wait < 0 || cfg.CommitBudget < 0 {
		panic("idem: negative duration in Config")
	}
	if cfg.Retention == 0 {
		cfg.Retention = DefaultRetention
	}
	if cfg.Lease == 0 {
		cfg.Lease = DefaultLease
	}
	if cfg.ClockSkew == 0 {
		cfg.ClockSkew = DefaultClockSkew
	}
	if cfg.CommitBudget == 0 {
		cfg.CommitBudget = DefaultCommitBudget
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Guard{api: api, cfg: cfg}
}

// Request identifies one idempotent request.
type Request struct {
	Scope       string // caller scope (authorizer principal, tenant); "" is a valid scope
	Key         string // the idempotency key, already validated
	Fingerprint string // opaque request fingerprint, compared exactly
	// Retry is the caller's hint that this request may have reached the
	// service before (a retry, or a resume with a stored key). Do then
	// first reads the key's record (Item mode: one read per generation up
	// to the one in use, past each expired order), and a live COMPLETED
	// record answers the request (replay or ErrMismatch) from those reads:
	// no run of fn, no conditional write (Lease, Item mode) or cancelled
	// transaction (Optimistic mode). Otherwise Do goes on as without the
	// hint, which then costs those reads more. The hint never replays an
	// outcome the protocol would not replay from the same record and never
	// binds the key to another outcome; it only answers from the record
	// before fn runs, where Optimistic and Item mode would otherwise run fn
	// first and answer its error, should this run of fn fail.
	Retry bool
}

// Outcome is what fn returns on success.
type Outcome struct {
	// Response is stored and replayed byte for byte.
	Response []byte
	// Keep true commits the outcome as COMPLETED together with fn's writes.
	// Keep false discards fn's writes and stores nothing (the lease is
	// released), so a retry runs afresh; use it for transient failures. Do
	// still answers from a live record of the key, in both modes: a replay,
	// ErrMismatch or ErrInProgress rather than this Response.
	Keep bool
}

// Result is what Do returns.
type Result struct {
	// Response is the caller's to keep and change: no later replay shares
	// its bytes.
	Response []byte
	// Replayed is true when Response is an earlier attempt's stored outcome.
	Replayed bool
}

// Do runs fn at most once per (req.Scope, req.Key) within Retention and
// returns its response, or replays the stored response of the attempt that
// ran it. See the package documentation for the protocol.
//
// fn's context carries a ddb.UnitOfWork: writes fn makes through ddb.Write
// commit in one transaction with the COMPLETED record (in Item mode: fn's
// one item carries the record), or not at all. It ends Config.CommitBudget
// before the lease (Lease mode) or ctx's deadline. In Item mode it also
// carries the ddb.KeyRand from which fn draws its item's key.
//
// Do returns, besides fn's own outcome:
//   - a Result with Replayed set, when an earlier attempt completed with the
//     same fingerprint;
//   - ErrMismatch, ErrInProgress (*InProgressError): nothing ran;
//   - fn's error, wrapped: fn's writes discarded, lease released, nothing
//     stored; a panic in fn is handled the same way and then re-raised with
//     its original value;
//   - ErrTooLarge, ErrTooManyWrites, ErrWriteConditionFailed: nothing
//     committed, lease released;
//   - ErrCommitLost: nothing of this attempt written;
//   - in Item mode, ErrItemWrite (fn wrote something else than one new
//     item at its derived key) and ErrKeyUsedUp: nothing written;
//   - ErrStore: see its documentation;
//   - ctx's error when ctx ended before the commit: nothing committed.
func (g *Guard) Do(ctx context.Context, req Request, fn func(ctx context.Context) (Outcome, error)) (Result, error) {
	id := RecordID(req.Scope, req.Key)
	if res, err, ok := g.fromCache(ctx, id, req); ok {
		return res, err
	}
	if err := ctx.Err(); err != nil {
		return Result{}, err
	}
	if req.Retry {
		if res, err, ok := g.readFirst(ctx, id, req); ok {
			return res, err
		}
	}
	switch g.cfg.Mode {
	case Optimistic:
		return g.doOptimistic(ctx, id, req, fn)
	case Item:
		return g.doItem(ctx, id, req, fn)
	}
	return g.doLease(ctx, id, req, fn)
}

// fromCache answers from the in-process cache when it holds the record.
func (g *Guard) fromCache(ctx context.Context, id string, req Request) (Result, error, bool) {
	if g.cfg.Cache == nil {
		return Result{}, nil, false
	}
	e, ok := g.cfg.Cache.get(id, g.cfg.Now().Add(g.cfg.ClockSkew))
	if !ok {
		return Result{}, nil, false
	}
	if e.fingerprint != req.Fingerprint {
		g.emit(ctx, Event{Kind: Mismatch, ID: id, Scope: req.Scope, Cached: true})
		return Result{}, ErrMismatch, true
	}
	g.emit(ctx, Event{Kind: Hit, ID: id, Scope: req.Scope, Cached: true})
	return Result{Response: e.response, Replayed: true}, nil, true
}

// remember puts a COMPLETED outcome in the cache, if there is one.
func (g *Guard) remember(id, fingerprint string, response []byte, expiresAt time.Time) {
	if g.cfg.Cache != nil {
		g.cfg.Cache.put(id, fingerprint, response, expiresAt)
	}
}

// judge answers a request from a live record that is not this attempt's:
// replay, ErrMismatch or *InProgressError.
func (g *Guard) judge(ctx context.Context, req Request, rec *record) (Result, error) {
	return g.judgeRead(ctx, req, rec, false)
}

// judgeRead is judge, its Hit or Mismatch event marked as answered by the
// read of a Request.Retry when readFirst is set.
func (g *Guard) judgeRead(ctx context.Context, req Request, rec *record, readFirst bool) (Result, error) {
	if rec.fingerprint != req.Fingerprint {
		g.emit(ctx, Event{Kind: Mismatch, ID: rec.id, Scope: req.Scope, ReadFirst: readFirst})
		return Result{}, ErrMismatch
	}
	if rec.status == statusCompleted {
		g.remember(rec.id, rec.fingerprint, rec.data, rec.expiresAt)
		g.emit(ctx, Event{Kind: Hit, ID: rec.id, Scope: req.Scope, ReadFirst: readFirst})
		return Result{Response: rec.data, Replayed: true}, nil
	}
	retry := max(rec.leaseUntil.Add(g.cfg.ClockSkew).Sub(g.cfg.Now()), 0)
	g.emit(ctx, Event{Kind: Conflict, ID: rec.id, Scope: req.Scope})
	return Result{}, &InProgressError{RetryAfter: retry}
}

// live reports whether rec blocks a new attempt by this host's clock: the
// inverse of takeoverCondition. An IN_PROGRESS record blocks while its lease
// runs, whatever its expires_at; any other record until it expires.
func (g *Guard) live(rec *record, now time.Time) bool {
	if rec == nil {
		return false
	}
	t := now.Add(-g.cfg.ClockSkew)
	if rec.status == statusInProgress {
		return rec.leaseUntil.UnixMilli() >= t.UnixMilli()
	}
	return rec.expiresAt.Unix() >= t.Unix()
}

// takeoverCondition admits a write of a new record only when there is no
// live one: none, an IN_PROGRESS one whose lease lapsed, or another (a
// COMPLETED one) that expired, each by more than ClockSkew (see
// takeoverValues). An IN_PROGRESS record is judged by its lease alone, so an
// expires_at that passed while the lease runs (a retention shorter than the
// lease, written by an older version or another host) never lets a second
// attempt in.
const takeoverCondition = "attribute_not_exists(#id)" +
	" OR (#status = :in_progress AND #lease < :now_ms)" +
	" OR (NOT (#status = :in_progress) AND #exp < :now_s)"

// takeoverNames returns the attribute names of takeoverCondition: one map
// shared by every call, which no caller may change.
func (g *Guard) takeoverNames() map[string]string { return takeoverNamesMap }

var takeoverNamesMap = map[string]string{"#id": AttrID, "#exp": AttrExpiresAt, "#status": attrStatus, "#lease": attrLeaseUntil}

func (g *Guard) takeoverValues(now time.Time) map[string]types.AttributeValue {
	t := now.Add(-g.cfg.ClockSkew)
	return map[string]types.AttributeValue{
		":now_s":       nv(t.Unix()),
		":now_ms":      nv(t.UnixMilli()),
		":in_progress": sv(statusInProgress),
	}
}

// fenceCondition admits a write only by the attempt holding the lease.
const fenceCondition = "#owner = :me AND #status = :in_progress"

func fenceNames() map[string]string {
	return map[string]string{"#owner": attrOwner, "#status": attrStatus}
}

func fenceValues(owner string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{":me": sv(owner), ":in_progress": sv(statusInProgress)}
}

func (g *Guard) key(id string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{AttrID: sv(id)}
}

// expiresAt returns the expiry of a COMPLETED record written at now: now
// plus Retention, rounded up to whole seconds.
func (g *Guard) expiresAt(now time.Time) int64 {
	return ceilUnix(now.Add(g.cfg.Retention))
}

// leaseExpiresAt returns the expiry of an IN_PROGRESS record written at now
// with a lease until leaseUntil: as expiresAt, but never before the lease
// ends plus ClockSkew, however short the Retention, so that TTL deletion
// (which would free the key) cannot come while the holder still counts on
// its lease.
func (g *Guard) leaseExpiresAt(now, leaseUntil time.Time) int64 {
	return max(g.expiresAt(now), ceilUnix(leaseUntil.Add(g.cfg.ClockSkew)))
}

// ceilUnix returns t in epoch seconds, rounded up.
func ceilUnix(t time.Time) int64 {
	s := t.Unix()
	if t.After(time.Unix(s, 0)) {
		s++
	}
	return s
}

// fnTime returns how long fn may run when the attempt has left before its
// lease or deadline ends: left less the commit budget, or half of left when
// that is less than twice the budget.
func (g *Guard) fnTime(left time.Duration) time.Duration {
	return left - min(g.cfg.CommitBudget, left/2)
}

// getRecord reads the record with a consistent read.
func (g *Guard) getRecord(ctx context.Context, id string) (*record, error) {
	out, err := g.api.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: aws.String(g.cfg.Table), Key: g.key(id), ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return nil, storeErr("get record", err)
	}
	rec, err := decodeRecord(out.Item)
	if err != nil {
		return nil, storeErr("get record", err)
	}
	return rec, nil
}

// waitFor polls the record of id, with consistent reads, while it is a
// live IN_PROGRESS record of the request whose fingerprint is fp (the holder
// may still complete it, for a replay), and for at most what wait has left.
// It returns the record that ended the wait (nil: gone) and true: one that
// blocks this attempt no longer (gone, lapsed), one that is COMPLETED, or a
// live one of another request, which is a mismatch now, whatever its
// holder does. When wait runs out first it returns nil and false.
func (g *Guard) waitFor(ctx context.Context, id, fp string, wait *patience) (*record, bool, error) {
	delay := 20 * time.Millisecond
	for {
		if !wait.pause(ctx, delay) {
			return nil, false, ctx.Err()
		}
		delay = min(delay*3/2, 250*time.Millisecond)
		rec, err := g.getRecord(ctx, id)
		if err != nil {
			return nil, false, err
		}
		if !g.live(rec, g.cfg.Now()) || rec.status != statusInProgress || rec.fingerprint != fp {
			return rec, true, nil
		}
	}
}

// newOwner returns a random owner token for one attempt.
func newOwner() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	return hex.EncodeToString(b[:])
}

// detached returns a context for clean-up after ctx may have ended.
func detached(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
}

// conditionFailed reports whether err is a failed condition of a single-item
// write and returns the ALL_OLD item it carries.
func conditionFailed(err error) (map[string]types.AttributeValue, bool) {
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		return ccf.Item, true
	}
	return nil, false
}

// transactionSize checks that writes plus a record of recordSize bytes fit in
// one transaction.
func transactionSize(writes []types.TransactWriteItem, recordSize int) error {
	if len(writes)+1 > ddb.MaxTransactItems {
		return fmt.Errorf("%w: %d writes plus the record", ErrTooManyWrites, len(writes))
	}
	n := recordSize
	for _, w := range writes {
		n += writeSize(w)
	}
	if n > maxTransactBytes {
		return fmt.Errorf("%w: about %d bytes", ErrTooManyWrites, n)
	}
	return nil
}

// callFn runs fn, translating a full unit of work into ErrTooManyWrites. A
// panic propagates after onPanic ran.
func callFn[T any](ctx context.Context, fn func(context.Context) (T, error), onPanic func()) (v T, err error) {
	panicking := true
	defer func() {
		if panicking {
			r := recover() // nil when fn called runtime.Goexit, which then goes on
			onPanic()
			if r != nil {
				panic(r)
			}
		}
	}()
	v, err = fn(ctx)
	panicking = false
	if err != nil {
		if errors.Is(err, ddb.ErrUnitOfWorkFull) {
			return v, fmt.Errorf("%w: %w", ErrTooManyWrites, err)
		}
		return v, fmt.Errorf("idem: handler failed: %w", err)
	}
	return v, nil
}
