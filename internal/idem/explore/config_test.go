//go:build explore

package explore

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/parcelhq/orderservice/internal/idem"
)

// The durations every configuration shares. Time is virtual, so they cost
// nothing to wait for.
const (
	leaseDur  = 10 * time.Second
	skewDur   = 2 * time.Second
	longRet   = time.Hour
	shortRet  = 4 * time.Second // shorter than leaseDur+skewDur
	waitDur   = time.Second
	readSlice = 400 * time.Millisecond // virtual time a consistent read takes
)

// config is what one schedule runs under, besides its decisions.
type config struct {
	mode      idem.Mode
	writes    bool          // fn enlists a business write through the unit of work
	retention time.Duration // idem.Config.Retention
	wait      time.Duration // idem.Config.Wait
	attempts  int           // 2 or 3
	ahead     int           // the attempt whose clock runs ClockSkew ahead; -1: none
	hint      bool          // odd attempts and the settle retries send Request.Retry
	sabotage  string        // self-test only: "unfenced-delete" strips the fence off every DeleteItem, "item-unconditional" the condition off Item mode's put, "stale-read" serves the record's GetItem with its expiry a day on

	// Item mode only.
	mix   int    // 0: every attempt the same request; mixWriteRefuse: even attempts write (fp-w), odd ones write nothing (fp-r); mixFingerprints: attempt i has fingerprint fp-i
	prior string // earlier uses of the key before the attempts, each then expired: 'o' an order, 'r' a refusal (record-only), in order
}

// request returns attempt i's fingerprint and whether its fn writes.
func (c config) request(i int) (fp string, writes bool) {
	switch c.mix {
	case mixWriteRefuse:
		if i%2 == 0 {
			return "fp-w", c.writes
		}
		return "fp-r", false
	case mixFingerprints:
		return fmt.Sprintf("fp-%d", i), c.writes
	}
	return "fp", c.writes
}

// Item-mode mixes of requests across attempts.
const (
	mixWriteRefuse  = 1
	mixFingerprints = 2
)

func (c config) String() string {
	s := fmt.Sprintf("mode=%s,writes=%d,ret=%s,wait=%s,n=%d,ahead=%d", c.mode, b2i(c.writes), c.retention, c.wait, c.attempts, c.ahead)
	if c.mode == idem.Item {
		s += fmt.Sprintf(",mix=%d,prior=%s", c.mix, c.prior)
	}
	if c.hint {
		s += ",hint=1"
	}
	if c.sabotage != "" {
		s += ",sabotage=" + c.sabotage
	}
	return s
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

func parseConfig(s string) (config, error) {
	c := config{mode: idem.Lease, retention: longRet, attempts: 2, ahead: -1}
	for _, kv := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return c, fmt.Errorf("config %q: %q is not key=value", s, kv)
		}
		var err error
		switch k {
		case "mode":
			switch v {
			case "lease":
				c.mode = idem.Lease
			case "optimistic":
				c.mode = idem.Optimistic
			case "item":
				c.mode = idem.Item
			default:
				err = fmt.Errorf("unknown mode")
			}
		case "writes":
			c.writes = v == "1"
		case "ret":
			c.retention, err = time.ParseDuration(v)
		case "wait":
			c.wait, err = time.ParseDuration(v)
		case "n":
			c.attempts, err = strconv.Atoi(v)
			if err == nil && (c.attempts < 1 || c.attempts > 9) {
				err = fmt.Errorf("1 to 9 attempts")
			}
		case "ahead":
			c.ahead, err = strconv.Atoi(v)
		case "hint":
			c.hint = v == "1"
		case "sabotage":
			c.sabotage = v
		case "mix":
			c.mix, err = strconv.Atoi(v)
			if err == nil && (c.mix < 0 || c.mix > mixFingerprints) {
				err = fmt.Errorf("mix is 0, 1 or 2")
			}
		case "prior":
			if strings.Trim(v, "or") != "" || len(v) > idem.MaxGenerations {
				err = fmt.Errorf("prior is up to %d of 'o' (an order) and 'r' (a refusal)", idem.MaxGenerations)
			}
			c.prior = v
		default:
			err = fmt.Errorf("unknown key")
		}
		if err != nil {
			return c, fmt.Errorf("config %q: %s: %v", s, kv, err)
		}
	}
	return c, nil
}

// dfsConfigs are the configurations enumerated depth-first. Optimistic mode
// has no lease, so retention relative to the lease and Wait (which waits only
// for a Lease-mode holder) change nothing there.
func dfsConfigs() []config {
	var cs []config
	for _, writes := range []bool{true, false} {
		for _, ret := range []time.Duration{longRet, shortRet} {
			for _, wait := range []time.Duration{0, waitDur} {
				cs = append(cs, config{mode: idem.Lease, writes: writes, retention: ret, wait: wait, attempts: 2, ahead: 1})
			}
		}
		cs = append(cs, config{mode: idem.Optimistic, writes: writes, retention: longRet, attempts: 2, ahead: 1})
	}
	// The retry hint: the second attempt and the settle retries read first.
	cs = append(cs,
		config{mode: idem.Lease, writes: true, retention: shortRet, attempts: 2, ahead: 1, hint: true},
		config{mode: idem.Optimistic, writes: true, retention: longRet, attempts: 2, ahead: 1, hint: true})
	return cs
}

// itemConfigs are Item mode's configurations enumerated depth-first: a
// writing fn, one that writes nothing, both mixed (with their own
// fingerprints), two writers with different fingerprints, and a second use
// of the key after the retention of an earlier order or refusal. The last
// generation and a key used up (earlier uses in 7 or 8 generations) are
// left to the walks and regression seeds: each attempt then passes 8
// generations, and the enumeration grows tenfold.
func itemConfigs() []config {
	hinted := func(c config) config { c.hint = true; return c }
	item := func(writes bool, mix int, prior string) config {
		return config{mode: idem.Item, writes: writes, retention: longRet, attempts: 2, ahead: 1, mix: mix, prior: prior}
	}
	return []config{
		item(true, 0, ""),
		item(false, 0, ""),
		item(true, mixWriteRefuse, ""),
		item(true, mixFingerprints, ""),
		item(true, 0, "o"),
		item(true, 0, "r"),
		item(false, 0, "o"),
		item(true, mixWriteRefuse, "r"),
		hinted(item(true, 0, "o")),
		hinted(item(true, mixFingerprints, "")),
	}
}

// walkConfig draws the configuration of random walk number i: Lease or
// Optimistic mode, any retention, Wait, 2 or 3 attempts, any clock ahead.
func walkConfig(r interface{ IntN(int) int }) config {
	c := config{mode: idem.Lease, retention: longRet, attempts: 2 + r.IntN(2)}
	if r.IntN(3) == 0 {
		c.mode = idem.Optimistic
	}
	c.writes = r.IntN(3) != 0
	if r.IntN(2) == 0 {
		c.retention = shortRet
	}
	if r.IntN(2) == 0 {
		c.wait = waitDur
	}
	c.ahead = r.IntN(c.attempts+1) - 1
	c.hint = r.IntN(3) == 0
	return c
}

// itemWalkConfig draws the configuration of an Item-mode random walk: fn
// writing or not, any mix of requests, any earlier uses of the key, 2 or 3
// attempts, any clock ahead.
func itemWalkConfig(r interface{ IntN(int) int }) config {
	c := config{mode: idem.Item, retention: longRet, attempts: 2 + r.IntN(2)}
	c.writes = r.IntN(4) != 0
	c.mix = r.IntN(3)
	priors := []string{"", "", "o", "r", "or", "ro", strings.Repeat("o", idem.MaxGenerations-1), strings.Repeat("o", idem.MaxGenerations)}
	c.prior = priors[r.IntN(len(priors))]
	c.ahead = r.IntN(c.attempts+1) - 1
	c.hint = r.IntN(3) == 0
	return c
}

// fault is what happens to one step: to the call an attempt is about to make,
// or inside fn.
type fault uint8

const (
	fNone        fault = iota
	fLost              // the call lands, its response is lost; the SDK sends it again
	fConflict          // refused with TransactionConflict on the record; nothing written
	fBizConflict       // a transaction refused with TransactionConflict on fn's write
	fFail              // fails before landing; the SDK gives up and the guard sees the error
	fCrash             // the process dies before the call is sent (inside fn: before its side effect)
	fLandCrash         // the call lands, the process dies before it reads the answer
	fFnError           // inside fn: the side effect happened, then fn returns an error
	fLandFail          // the call lands, then fails (the SDK gave up waiting): the caller sees an error
)

var faultNames = [...]string{"", "lost", "conflict", "bizconflict", "fail", "crash", "landcrash", "fnerror", "landfail"}

func (f fault) String() string { return faultNames[f] }

// move is a jump of the virtual clock before a decision's step.
type move uint8

const (
	mNone       move = iota
	mLapse           // past every lease written so far, for every host's clock
	mExpire          // past the retention of every record written so far, for every host
	mLeaseEdge       // to half a skew before leases taken now end: lapsed only for a clock ahead
	mExpireEdge      // to half a skew before records written now expire: expired only for a clock ahead
	mTTL             // not a clock move: TTL deletes every record-only item expired by now (Item mode)
)

var moveNames = [...]string{"", "lapse", "expire", "leaseedge", "expireedge", "ttl"}

func (m move) String() string { return moveNames[m] }

func (m move) amount(c config) time.Duration {
	switch m {
	case mLapse:
		return leaseDur + 2*skewDur + time.Second
	case mExpire:
		// Two seconds beyond the skews: expires_at is in whole seconds,
		// rounded up, and a read of the hint makes the clock fractional.
		return c.retention + 2*skewDur + 2*time.Second
	case mLeaseEdge:
		return leaseDur - skewDur/2
	case mExpireEdge:
		return c.retention - skewDur/2
	}
	return 0
}

// decision is one step of a schedule: resume attempt, after moving the clock
// by move, with fault for the step it is at.
type decision struct {
	attempt int
	fault   fault
	move    move
}

func (d decision) String() string {
	s := strconv.Itoa(d.attempt)
	if d.fault != fNone {
		s += "=" + d.fault.String()
	}
	if d.move != mNone {
		s += "@" + d.move.String()
	}
	return s
}

// seed is a replayable schedule: "CONFIG:DECISIONS", decisions separated by
// '.', each ATTEMPT[=FAULT][@MOVE]. Decisions beyond the list are defaults
// (continue the current attempt, no fault, no move).
func seed(c config, ds []decision) string {
	parts := make([]string, len(ds))
	for i, d := range ds {
		parts[i] = d.String()
	}
	return c.String() + ":" + strings.Join(parts, ".")
}

func parseSeed(s string) (config, []decision, error) {
	cs, ds, ok := strings.Cut(s, ":")
	if !ok {
		return config{}, nil, fmt.Errorf("seed %q: want CONFIG:DECISIONS", s)
	}
	c, err := parseConfig(cs)
	if err != nil {
		return c, nil, err
	}
	var out []decision
	if ds == "" {
		return c, nil, nil
	}
	for _, tok := range strings.Split(ds, ".") {
		var d decision
		rest := tok
		if a, m, ok := strings.Cut(rest, "@"); ok {
			rest = a
			found := false
			for i, n := range moveNames {
				if i > 0 && n == m {
					d.move, found = move(i), true
				}
			}
			if !found {
				return c, nil, fmt.Errorf("seed: decision %q: unknown clock move %q", tok, m)
			}
		}
		if a, f, ok := strings.Cut(rest, "="); ok {
			rest = a
			found := false
			for i, n := range faultNames {
				if i > 0 && n == f {
					d.fault, found = fault(i), true
				}
			}
			if !found {
				return c, nil, fmt.Errorf("seed: decision %q: unknown fault %q", tok, f)
			}
		}
		d.attempt, err = strconv.Atoi(rest)
		if err != nil {
			return c, nil, fmt.Errorf("seed: decision %q: %v", tok, err)
		}
		out = append(out, d)
	}
	return c, out, nil
}
