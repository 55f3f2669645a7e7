//go:build explore

package explore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/parcelhq/orderservice/internal/ddb"
	"github.com/parcelhq/orderservice/internal/idem"
)

// base is virtual time zero: far enough ahead of the real clock that a
// context deadline derived from a virtual lease (fn's context) never ends in
// real time.
var base = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

// bounds limit the choices of one schedule.
type bounds struct {
	preempt int    // switches away from an attempt that could go on
	faults  int    // faults injected
	moves   int    // clock moves
	moveSet []move // the clock moves on offer
}

func (b bounds) String() string {
	ms := make([]string, len(b.moveSet))
	for i, m := range b.moveSet {
		ms[i] = m.String()
	}
	return fmt.Sprintf("≤%d preemptions, ≤%d faults, ≤%d clock moves (%s)", b.preempt, b.faults, b.moves, strings.Join(ms, ","))
}

// maxDecisions stops a runaway schedule; far above any schedule the bounds
// allow.
const maxDecisions = 500

// chooser picks one of opts, opts[0] being the default: continue the current
// attempt, no fault, no clock move.
type chooser interface {
	choose(s *schedule, opts []decision) (int, error)
}

type pointKind uint8

const (
	pStart pointKind = iota // the request arrives: Do is about to be called
	pCall                   // a DynamoDB call is about to be sent
	pFn                     // inside fn, before its side effect
	pStep                   // at an idem.Step (Item mode, crashtest builds): op names it
)

// point is where an attempt waits for the scheduler.
type point struct {
	kind  pointKind
	op    string // pCall: the operation
	items int    // pCall TransactWriteItems: number of actions
}

func (p point) String() string {
	switch p.kind {
	case pStart:
		return "start"
	case pFn:
		return "fn"
	case pStep:
		return "step:" + p.op
	}
	return p.op
}

// faultsAt lists the faults that can happen at p in mode, fNone first.
func faultsAt(p point, mode idem.Mode) []fault {
	switch {
	case p.kind == pStart:
		return []fault{fNone}
	case p.kind == pFn:
		return []fault{fNone, fCrash, fFnError}
	case p.kind == pStep:
		return []fault{fNone, fCrash}
	case mode == idem.Item && p.op == "PutItem":
		return []fault{fNone, fLost, fConflict, fFail, fLandFail, fCrash, fLandCrash}
	case p.op == "GetItem":
		return []fault{fNone, fFail, fCrash}
	case p.op == "TransactWriteItems" && p.items > 1:
		return []fault{fNone, fLost, fConflict, fBizConflict, fFail, fCrash, fLandCrash}
	}
	return []fault{fNone, fLost, fConflict, fFail, fCrash, fLandCrash}
}

// schedule is one execution: attempts of one key, driven step by step.
type schedule struct {
	env     *env
	cfg     config
	bounds  bounds
	chooser chooser
	key     string
	now     atomic.Int64 // virtual time, ns since base

	procs  []*proc // the attempts
	all    []*proc // attempts and settle retries
	parked chan *proc
	wg     sync.WaitGroup

	mu     sync.Mutex // guards log, trace and owners (zombies never write them; a mutex all the same)
	log    []event
	owners map[string]*proc // owner token -> attempt

	item itemState // Item mode only

	taken                  []decision
	trace                  []string
	cur                    int
	nPreempt, nFault, nMov int
	violations             []violation
}

func newSchedule(e *env, c config, b bounds, ch chooser) *schedule {
	s := &schedule{env: e, cfg: c, bounds: b, chooser: ch, key: e.newKey(), parked: make(chan *proc), cur: -1}
	for i := range c.attempts {
		var off time.Duration
		if i == c.ahead {
			off = skewDur
		}
		p := s.newProc(fmt.Sprintf("a%d", i), off, c.wait, idem.NewCache(16, 1<<20), false)
		p.fp, p.writes = c.request(i)
		p.hint = c.hint && i%2 == 1
		s.procs = append(s.procs, p)
	}
	if c.mode == idem.Item {
		s.initItem()
	}
	return s
}

func (s *schedule) virtual() time.Time { return base.Add(time.Duration(s.now.Load())) }

func (s *schedule) advance(d time.Duration) { s.now.Add(int64(d)) }

func (s *schedule) rel(t time.Time) string { return "+" + t.Sub(base).String() }

func (s *schedule) tracef(format string, args ...any) {
	s.mu.Lock()
	s.trace = append(s.trace, fmt.Sprintf(format, args...))
	s.mu.Unlock()
}

// violation is one broken invariant: kind names it (the same kind is the
// same invariant), what says how.
type violation struct{ kind, what string }

func (v violation) String() string { return v.kind + ": " + v.what }

func (s *schedule) violate(kind, format string, args ...any) {
	s.violations = append(s.violations, violation{kind, fmt.Sprintf(format, args...)})
}

func (s *schedule) req() idem.Request {
	return idem.Request{Scope: "explore", Key: s.key, Fingerprint: "fp"}
}

// req is p's request: the schedule's key with p's fingerprint.
func (p *proc) req() idem.Request {
	r := p.s.req()
	r.Fingerprint = p.fp
	r.Retry = p.hint
	return r
}

func (s *schedule) seed() string { return seed(s.cfg, s.taken) }

// run executes the schedule to the end, lets the dust settle and checks the
// invariants. It returns an error only when the chooser cannot go on (a
// replayed seed that does not apply).
func (s *schedule) run(ctx context.Context) error {
	if s.cfg.mode == idem.Item {
		s.priorUses(ctx)
	}
	for _, p := range s.procs {
		s.wg.Add(1)
		go p.main(ctx)
		<-s.parked // at its start point
	}
	var err error
	for err == nil {
		opts := s.options()
		if len(opts) == 0 {
			break
		}
		var i int
		if i, err = s.chooser.choose(s, opts); err != nil {
			break
		}
		s.step(opts[i])
	}
	for _, p := range s.procs {
		if !p.finished {
			// Only after a chooser error: let the rest run undisturbed.
			p.free = true
			p.wake <- fNone
		}
	}
	s.wg.Wait() // crashed attempts' remains, which touch nothing
	if err != nil {
		return err
	}
	if s.cfg.mode == idem.Item {
		s.settleItem(ctx)
		s.checkItem(ctx)
		return nil
	}
	s.settle(ctx)
	s.check(ctx)
	return nil
}

// options lists the decisions open now, the default first.
func (s *schedule) options() []decision {
	var alive []int
	for i, p := range s.procs {
		if !p.finished {
			alive = append(alive, i)
		}
	}
	if len(alive) == 0 {
		return nil
	}
	cur, free := s.cur, false
	if cur < 0 || s.procs[cur].finished {
		cur, free = alive[0], true
	}
	cands := []int{cur}
	for _, i := range alive {
		if i != cur {
			cands = append(cands, i)
		}
	}
	capped := len(s.taken) >= maxDecisions
	moves := s.movesOpen()
	var opts []decision
	for _, a := range cands {
		if a != cur && !free && (s.nPreempt >= s.bounds.preempt || capped) {
			continue
		}
		for _, f := range faultsAt(s.procs[a].pt, s.cfg.mode) {
			if f != fNone && (s.nFault >= s.bounds.faults || capped) {
				continue
			}
			for _, m := range moves {
				if m != mNone && (s.nMov >= s.bounds.moves || capped) {
					continue
				}
				opts = append(opts, decision{attempt: a, fault: f, move: m})
			}
		}
	}
	return opts
}

// step carries out d: move the clock, resume the attempt with its fault, and
// wait until it is at its next point, finished or crashed.
func (s *schedule) step(d decision) {
	p := s.procs[d.attempt]
	if s.cur >= 0 && d.attempt != s.cur && !s.procs[s.cur].finished {
		s.nPreempt++
	}
	if d.fault != fNone {
		s.nFault++
		p.faults++
		if p.pt.op == "DeleteItem" {
			p.deleteFaulted = true
		}
		switch d.fault {
		case fConflict:
			p.recConflicts++
		case fBizConflict:
			p.bizConflicts++
		}
	}
	if d.move != mNone {
		s.nMov++
		s.advance(d.move.amount(s.cfg))
	}
	if d.move == mTTL {
		s.ttlSweep()
	}
	s.cur = d.attempt
	s.taken = append(s.taken, d)
	line := fmt.Sprintf("%3d. %s %s", len(s.taken), p.name, p.pt)
	if d.fault != fNone {
		line += " =" + d.fault.String()
	}
	switch d.move {
	case mNone:
	case mTTL:
		line += " (TTL deleted first: " + s.item.swept + ")"
	default:
		line += fmt.Sprintf(" (clock moved %s to %s)", d.move, s.rel(s.virtual()))
	}
	s.tracef("%s", line)
	p.wake <- d.fault
	if q := <-s.parked; q != p {
		panic("explore: " + q.name + " moved while " + p.name + " had the turn")
	}
}

// proc is one attempt (or settle retry): a host with its own Guard, clock and
// fault-injecting client.
type proc struct {
	s     *schedule
	name  string
	off   time.Duration // clock offset from virtual time
	guard *idem.Guard
	cache *idem.Cache
	free  bool // never waits for the scheduler, no faults (settle retries)

	instant bool // a settle retry: Wait 0, and its reads take no virtual time
	wake    chan fault

	// Set by the attempt's goroutine, read by the scheduler after it parked.
	pt       point
	finished bool
	crashed  bool
	dead     bool // only the attempt's own goroutine reads it

	// Outcome of Do.
	returned bool
	res      idem.Result
	resp     []byte // a copy of res.Response taken at once (the caller then scribbles on it)
	err      error

	faults        int  // faults injected into this attempt
	deleteFaulted bool // a fault hit one of its DeleteItem calls (a release)
	recConflicts  int  // TransactionConflict refusals of its writes of the record
	bizConflicts  int  // TransactionConflict refusals of fn's write in its commits
	tokens        map[string]bool

	fp        string // its request's fingerprint
	hint      bool   // its request says it may have been sent before (Request.Retry)
	writes    bool   // its fn writes (else it answers with a refusal and writes nothing)
	lastFault fault  // the fault of the call it is making
	itemProc         // Item mode only
}

func (s *schedule) newProc(name string, off, wait time.Duration, cache *idem.Cache, free bool) *proc {
	p := &proc{s: s, name: name, off: off, cache: cache, free: free, wake: make(chan fault), tokens: map[string]bool{}}
	p.fp, p.writes = "fp", s.cfg.writes
	cfg := idem.Config{
		Table: s.env.table, Mode: s.cfg.mode, Retention: s.cfg.retention, Lease: leaseDur,
		ClockSkew: skewDur, Wait: wait, Cache: cache, Now: p.clock,
	}
	if s.cfg.mode == idem.Item {
		cfg.Table = ""
		cfg.Item = idem.ItemConfig{Table: s.env.itemDef, NewKey: itemKey}
	}
	p.guard = idem.New(&api{p: p}, cfg)
	s.all = append(s.all, p)
	return p
}

func (p *proc) clock() time.Time { return p.s.virtual().Add(p.off) }

// at waits at pt for the scheduler and returns the fault it chose.
func (p *proc) at(pt point) fault {
	if p.dead {
		return fCrash
	}
	if p.free {
		return fNone
	}
	p.pt = pt
	p.s.parked <- p
	return <-p.wake
}

// die stops the attempt: from now on it touches nothing and reports nothing.
func (p *proc) die() {
	if p.dead {
		return
	}
	p.dead, p.crashed, p.finished = true, true, true
	p.s.tracef("     %s crashed", p.name)
	if !p.free {
		p.s.parked <- p
	}
}

var (
	errCrashed = errors.New("explore: the process crashed")
	errFn      = errors.New("explore: fn failed after its side effect")
)

func (p *proc) main(ctx context.Context) {
	defer p.s.wg.Done()
	p.at(point{kind: pStart})
	p.s.record(event{kind: evStart, run: p})
	res, err := p.guard.Do(context.WithValue(ctx, procKey{}, p), p.req(), p.fn)
	if p.dead {
		return
	}
	p.returned, p.res, p.err = true, res, err
	if err == nil {
		p.resp = bytes.Clone(res.Response)
		for i := range res.Response {
			res.Response[i] = '#' // a caller may reuse the slice it was given
		}
		p.s.tracef("     %s returned %q (replayed %v)", p.name, p.resp, res.Replayed)
	} else {
		p.s.tracef("     %s returned error: %v", p.name, err)
	}
	p.s.record(event{kind: evReturn, run: p})
	p.finished = true
	if !p.free {
		p.s.parked <- p
	}
}

// response is what p's fn answers.
func (p *proc) response() string { return "resp-" + p.name }

// fn is the guarded function: a side effect outside DynamoDB (recorded), and
// a business write through the unit of work.
func (p *proc) fn(ctx context.Context) (idem.Outcome, error) {
	if p.s.cfg.mode == idem.Item {
		return p.itemFn(ctx)
	}
	d, bounded := p.fnDeadline(ctx)
	f := p.at(point{kind: pFn})
	if f == fCrash {
		p.die()
		return idem.Outcome{}, errCrashed
	}
	if bounded && !p.clock().Before(d) {
		// fn honours its context, which ends with the lease by this host's clock.
		p.s.tracef("     %s fn: its context ended (lease over by its clock)", p.name)
		return idem.Outcome{}, context.DeadlineExceeded
	}
	p.s.record(event{kind: evFnStart, run: p})
	if f == fFnError {
		return idem.Outcome{}, errFn
	}
	if p.s.cfg.writes {
		err := ddb.Write(ctx, &api{p: p}, types.TransactWriteItem{Put: &types.Put{
			TableName: aws.String(p.s.env.biz),
			Item: map[string]types.AttributeValue{
				"pk":  &types.AttributeValueMemberS{Value: p.s.bizKey(p)},
				"run": &types.AttributeValueMemberS{Value: p.name},
			},
			ConditionExpression: aws.String("attribute_not_exists(pk)"),
		}})
		if err != nil {
			return idem.Outcome{}, err
		}
	}
	return idem.Outcome{Response: []byte(p.response()), Keep: true}, nil
}

// fnDeadline returns when fn's context ends, in virtual time. The guard
// derives the deadline from its clock (Config.Now, virtual here: the
// deadline is then far in the real future) or as a duration on the real
// clock; fn is entered at once after, so the real time left maps onto the
// virtual clock from now.
func (p *proc) fnDeadline(ctx context.Context) (time.Time, bool) {
	d, ok := ctx.Deadline()
	switch {
	case !ok:
		return time.Time{}, false
	case d.After(base.AddDate(-1, 0, 0)):
		return d, true
	}
	return p.clock().Add(time.Until(d)), true
}

func (s *schedule) bizKey(p *proc) string { return s.key + "/" + p.name }

// procKey is the context key of the attempt a Do runs for (the step hook's).
type procKey struct{}

// movesOpen lists the clock moves (and the TTL step) on offer now, mNone
// first. Item mode has no lease, so the lease moves would only repeat
// schedules; TTL is offered only when it has an item to delete.
func (s *schedule) movesOpen() []move {
	moves := []move{mNone}
	for _, m := range s.bounds.moveSet {
		if s.cfg.mode == idem.Item && (m == mLapse || m == mLeaseEdge) || m == mTTL {
			continue
		}
		moves = append(moves, m)
	}
	if s.cfg.mode == idem.Item && s.ttlDue() {
		moves = append(moves, mTTL)
	}
	return moves
}
