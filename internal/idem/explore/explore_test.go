//go:build explore

package explore

import (
	"context"
	"crypto/rand"
	"flag"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/parcelhq/orderservice/internal/ddb"
	"github.com/parcelhq/orderservice/internal/ddbtest"
	"github.com/parcelhq/orderservice/internal/idem"
)

// The defaults are the short run that `make test` does; `make explore` asks
// for more.
var (
	flagPreempt = flag.Int("explore.preempt", 1, "DFS bound: preemptions per schedule")
	flagFaults  = flag.Int("explore.faults", 1, "DFS bound: faults per schedule")
	flagMoves   = flag.Int("explore.moves", 0, "DFS bound: clock moves per schedule")
	flagIPre    = flag.Int("explore.itempreempt", 1, "DFS bound for Item mode: preemptions per schedule")
	flagIFaults = flag.Int("explore.itemfaults", 0, "DFS bound for Item mode: faults per schedule")
	flagIMoves  = flag.Int("explore.itemmoves", 0, "DFS bound for Item mode: clock moves and TTL steps per schedule")
	flagMax     = flag.Int("explore.max", 0, "stop the DFS after this many schedules (0: exhaust the bound)")
	flagWalks   = flag.Int("explore.walks", 300, "random walks over deeper schedules after the DFS (Lease and Optimistic mode)")
	flagIWalks  = flag.Int("explore.itemwalks", 100, "random walks over deeper Item-mode schedules after those")
	flagSeed    = flag.Uint64("explore.seed", 1, "seed of the random walks")
	flagWorkers = flag.Int("explore.workers", 16, "schedules run at once")
	flagDFSMove = flag.String("explore.dfsmoves", "lapse,expire", "DFS bound: the clock moves on offer (lapse, expire, leaseedge, expireedge); the random walk offers all")
	flagModes   = flag.String("explore.modes", "lease,optimistic,item", "the modes the DFS and the walks explore")
	flagReplay  = flag.String("explore.replay", "", "run only this schedule (a seed a violation printed) and print its trace")
)

// walkBounds are the random walk's: deeper than any DFS bound.
var walkBounds = bounds{preempt: 8, faults: 4, moves: 3, moveSet: []move{mLapse, mExpire, mLeaseEdge, mExpireEdge}}

// replayBounds admit any seed.
var replayBounds = bounds{preempt: maxDecisions, faults: maxDecisions, moves: maxDecisions, moveSet: []move{mLapse, mExpire, mLeaseEdge, mExpireEdge}}

// stepPoints is set in crashtest builds, where Item-mode attempts also stop
// at idem's steps (see steps_test.go).
var stepPoints bool

// total is every schedule this process ran; TestMain prints it last.
var total tally

func TestMain(m *testing.M) {
	flag.Parse()
	code := m.Run()
	if n := total.schedules.Load(); n > 0 {
		line := fmt.Sprintf("explore: %d schedules, %d faults injected, %d violations", n, total.faults.Load(), total.violations)
		if total.violations > 0 {
			line += "; first: " + total.first
		}
		fmt.Println(line)
	}
	os.Exit(code)
}

// env is the tables the schedules share; each schedule uses a key of its own.
type env struct {
	client *dynamodb.Client
	table  string // idempotency table, without TTL: expired records stay readable
	biz    string // business table, partition key pk = key/attempt
	// Item mode's table (fn's items with their records), without TTL: the
	// explorer's TTL step deletes expired record-only items.
	itemDef ddb.Table
	run     string
	seq     atomic.Int64
}

func newEnv(t *testing.T) *env {
	t.Helper()
	itemDef := idem.ItemTableDefinition(ddb.Table{Name: "explore-items", PartitionKey: "pk"})
	itemDef.Name = ddbtest.Table(t, itemDef.WithoutTTL()).Name
	return &env{
		client:  ddbtest.Client(t),
		table:   ddbtest.Table(t, idem.TableDefinition("explore-idem").WithoutTTL()).Name,
		biz:     ddbtest.Table(t, ddb.Table{Name: "explore-biz", PartitionKey: "pk"}).Name,
		itemDef: itemDef,
		run:     rand.Text()[:10],
	}
}

func (e *env) newKey() string { return fmt.Sprintf("%s-%d", e.run, e.seq.Add(1)) }

// TestExplore enumerates every schedule within the DFS bound for each
// configuration, then walks deeper ones at random, and fails on the first
// violation of an invariant (see check_test.go), printing its seed and trace.
func TestExplore(t *testing.T) {
	if *flagReplay != "" {
		t.Skip("-explore.replay: see TestReplay")
	}
	e := newEnv(t)
	ctx := context.Background()
	var t0 = time.Now()
	var mine tally
	moves, err := parseMoves(*flagDFSMove)
	if err != nil {
		t.Fatal(err)
	}
	b := bounds{preempt: *flagPreempt, faults: *flagFaults, moves: *flagMoves, moveSet: moves}
	bItem := bounds{preempt: *flagIPre, faults: *flagIFaults, moves: *flagIMoves, moveSet: []move{mExpire, mExpireEdge}}
	modes := map[string]bool{}
	for _, m := range strings.Split(*flagModes, ",") {
		modes[m] = true
	}
	var cfgs []config
	for _, c := range append(dfsConfigs(), itemConfigs()...) {
		if modes[c.mode.String()] {
			cfgs = append(cfgs, c)
		}
	}
	if !modes["lease"] && !modes["optimistic"] {
		*flagWalks = 0
	}
	if !modes["item"] {
		*flagIWalks = 0
	}
	steps := ""
	if stepPoints {
		steps = " (Item mode: also at StepHandled and StepCommitted)"
	}
	fmt.Printf("explore: dfs bound: 2 attempts; Lease and Optimistic mode: %s; Item mode: %s, and TTL steps%s; over %d configurations:\n", b, bItem, steps, len(cfgs))
	for _, c := range cfgs {
		fmt.Printf("explore:   %s\n", c)
	}
	stop := progress(&mine, 30*time.Second)
	defer stop()
	n, complete := dfs(ctx, e, cfgs, func(c config) bounds {
		if c.mode == idem.Item {
			return bItem
		}
		return b
	}, *flagWorkers, *flagMax, &mine)
	state := "exhausted the bound"
	if !complete {
		state = fmt.Sprintf("stopped at -explore.max=%d before exhausting the bound", *flagMax)
	}
	fmt.Printf("explore: dfs: %d schedules in %s, %s\n", n, since(t0), state)
	t1 := time.Now()
	if *flagWalks > 0 {
		fmt.Printf("explore: random walk: %d schedules, seed %d, 2 or 3 attempts, %s\n", *flagWalks, *flagSeed, walkBounds)
		walk(ctx, e, *flagSeed, *flagWalks, walkBounds, *flagWorkers, &mine)
		fmt.Printf("explore: random walk done in %s\n", since(t1))
	}
	if t2 := time.Now(); *flagIWalks > 0 {
		fmt.Printf("explore: Item-mode random walk: %d schedules, seed %d, 2 or 3 attempts, %s\n", *flagIWalks, *flagSeed, walkBounds)
		itemWalk(ctx, e, *flagSeed, *flagIWalks, walkBounds, *flagWorkers, &mine)
		fmt.Printf("explore: Item-mode random walk done in %s\n", since(t2))
	}
	total.merge(&mine)
	fmt.Print(mine.summary())
	if mine.violations > 0 {
		t.Errorf("%d schedules violate an invariant; first: %s", mine.violations, mine.first)
	}
}

// TestReplay runs the schedule of -explore.replay and prints its trace.
func TestReplay(t *testing.T) {
	if *flagReplay == "" {
		t.Skip("no -explore.replay")
	}
	s, err := replay(context.Background(), newEnv(t), *flagReplay, replayBounds)
	if s == nil {
		t.Fatal(err)
	}
	total.add(s, err)
	fmt.Print(s.report())
	if len(s.violations) > 0 {
		t.Errorf("schedule violates an invariant: %v", s.violations)
	}
}

func parseMoves(list string) ([]move, error) {
	var ms []move
	for _, name := range strings.Split(list, ",") {
		found := false
		for i, n := range moveNames {
			if i > 0 && n == name {
				ms, found = append(ms, move(i)), true
			}
		}
		if !found {
			return nil, fmt.Errorf("-explore.dfsmoves: unknown clock move %q", name)
		}
	}
	return ms, nil
}

// progress prints t's count every period until stop is called.
func progress(t *tally, period time.Duration) (stop func()) {
	done := make(chan struct{})
	tick := time.NewTicker(period)
	t0 := time.Now()
	go func() {
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				fmt.Printf("explore: ... %d schedules in %s\n", t.schedules.Load(), since(t0))
			}
		}
	}()
	return func() { close(done) }
}
