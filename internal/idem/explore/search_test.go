//go:build explore

package explore

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
)

// dfsChooser follows prefix (option indices), then takes the default, and
// records every choice with the number of options it had.
type dfsChooser struct {
	prefix []int
	path   []int
	widths []int
}

func (c *dfsChooser) choose(_ *schedule, opts []decision) (int, error) {
	i := 0
	if n := len(c.path); n < len(c.prefix) {
		i = c.prefix[n]
		if i >= len(opts) {
			return 0, fmt.Errorf("dfs: step %d has %d options, the prefix wants %d: the harness is not deterministic", n+1, len(opts), i)
		}
	}
	c.path = append(c.path, i)
	c.widths = append(c.widths, len(opts))
	return i, nil
}

// replayChooser follows a seed's decisions, then takes the default.
type replayChooser struct{ ds []decision }

func (c *replayChooser) choose(s *schedule, opts []decision) (int, error) {
	n := len(s.taken)
	if n >= len(c.ds) {
		return 0, nil
	}
	for i, o := range opts {
		if o == c.ds[n] {
			return i, nil
		}
	}
	return 0, fmt.Errorf("replay: decision %d (%s) is not open here; open: %v", n+1, c.ds[n], opts)
}

// walkChooser picks at random: mostly the current attempt, sometimes a fault
// or a clock move.
type walkChooser struct{ r *rand.Rand }

func (c *walkChooser) choose(s *schedule, opts []decision) (int, error) {
	cur := opts[0].attempt
	w := make([]float64, len(opts))
	total := 0.0
	for i, o := range opts {
		x := 1.0
		if o.attempt != cur {
			x *= 0.6
		}
		if o.fault != fNone {
			x *= 0.15
		}
		if o.move != mNone {
			x *= 0.05
		}
		w[i] = x
		total += x
	}
	v := c.r.Float64() * total
	for i, x := range w {
		if v < x {
			return i, nil
		}
		v -= x
	}
	return len(opts) - 1, nil
}

// tally counts schedules and, per kind of violation, the schedules that
// broke it and the first of them.
type tally struct {
	schedules, faults atomic.Int64
	mu                sync.Mutex
	violations        int
	kinds             map[string]*kindTally
	order             []string // kinds in the order first seen
	first             string   // the first violating schedule: seed and what
}

type kindTally struct {
	n      int
	report string // the first schedule of this kind, in full
	seed   string
}

func (t *tally) add(s *schedule, err error) {
	t.schedules.Add(1)
	t.faults.Add(int64(s.nFault))
	if err != nil {
		s.violate("harness", "%v", err)
	}
	if len(s.violations) == 0 {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.violations++
	if t.first == "" {
		t.first = fmt.Sprintf("-explore.replay='%s': %s", s.seed(), s.violations[0])
	}
	seen := map[string]bool{}
	for _, v := range s.violations {
		if seen[v.kind] {
			continue
		}
		seen[v.kind] = true
		if t.kinds == nil {
			t.kinds = map[string]*kindTally{}
		}
		k := t.kinds[v.kind]
		if k == nil {
			k = &kindTally{report: s.report(), seed: s.seed()}
			t.kinds[v.kind] = k
			t.order = append(t.order, v.kind)
		}
		k.n++
	}
}

func (t *tally) merge(o *tally) {
	t.schedules.Add(o.schedules.Load())
	t.faults.Add(o.faults.Load())
	t.mu.Lock()
	defer t.mu.Unlock()
	t.violations += o.violations
	if t.first == "" {
		t.first = o.first
	}
}

// summary lists, per kind of violation, how many schedules broke it and the
// first of them in full.
func (t *tally) summary() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := ""
	for _, k := range t.order {
		kt := t.kinds[k]
		out += fmt.Sprintf("explore: %d schedules violate %s; first:\n%s", kt.n, k, kt.report)
	}
	return out
}

func (s *schedule) report() string {
	head := "SCHEDULE"
	if len(s.violations) > 0 {
		head = "VIOLATION"
	}
	out := fmt.Sprintf("%s  -explore.replay='%s'\n", head, s.seed())
	for _, v := range s.violations {
		out += "  - " + v.String() + "\n"
	}
	out += "  trace:\n"
	for _, l := range s.trace {
		out += "  " + l + "\n"
	}
	return out
}

// dfs enumerates, for every configuration, every schedule within b, on
// workers goroutines, stopping early after max schedules (0: no limit). It
// returns how many it ran and whether the enumeration was complete.
func dfs(ctx context.Context, e *env, cfgs []config, boundsOf func(config) bounds, workers, max int, t *tally) (int, bool) {
	type item struct {
		cfg    config
		prefix []int
	}
	var (
		mu     sync.Mutex
		cond   = sync.NewCond(&mu)
		stack  []item
		active int
		ran    int
		cut    bool
		per    = map[string]int{}
	)
	for i := len(cfgs) - 1; i >= 0; i-- {
		stack = append(stack, item{cfg: cfgs[i]})
	}
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				for len(stack) == 0 && active > 0 {
					cond.Wait()
				}
				if len(stack) == 0 || (max > 0 && ran >= max) || ctx.Err() != nil {
					if len(stack) > 0 {
						cut = true
					}
					stack = nil
					cond.Broadcast()
					mu.Unlock()
					return
				}
				it := stack[len(stack)-1]
				stack = stack[:len(stack)-1]
				active++
				ran++
				per[it.cfg.String()]++
				mu.Unlock()

				ch := &dfsChooser{prefix: it.prefix}
				s := newSchedule(e, it.cfg, boundsOf(it.cfg), ch)
				err := s.run(ctx)
				t.add(s, err)

				mu.Lock()
				active--
				if err == nil {
					for j := len(ch.path) - 1; j >= len(it.prefix); j-- {
						for alt := ch.widths[j] - 1; alt >= 1; alt-- {
							p := make([]int, j+1)
							copy(p, ch.path[:j])
							p[j] = alt
							stack = append(stack, item{cfg: it.cfg, prefix: p})
						}
					}
				}
				cond.Broadcast()
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	for _, c := range cfgs {
		fmt.Printf("explore:   %6d schedules of %s\n", per[c.String()], c)
	}
	return ran, !cut
}

// walk runs n random schedules, walk i drawn from PCG(seed, i): its
// configuration and its choices within b.
func walk(ctx context.Context, e *env, seed uint64, n int, b bounds, workers int, t *tally) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				i := next.Add(1) - 1
				if i >= int64(n) {
					return
				}
				r := rand.New(rand.NewPCG(seed, uint64(i)))
				s := newSchedule(e, walkConfig(r), b, &walkChooser{r: r})
				t.add(s, s.run(ctx))
			}
		}()
	}
	wg.Wait()
}

// itemWalk is walk for Item mode: walk i is drawn from PCG(seed, 1<<32 + i),
// apart from the other modes' walks.
func itemWalk(ctx context.Context, e *env, seed uint64, n int, b bounds, workers int, t *tally) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				i := next.Add(1) - 1
				if i >= int64(n) {
					return
				}
				r := rand.New(rand.NewPCG(seed, 1<<32+uint64(i)))
				s := newSchedule(e, itemWalkConfig(r), b, &walkChooser{r: r})
				t.add(s, s.run(ctx))
			}
		}()
	}
	wg.Wait()
}

// replay runs one seed and returns the schedule.
func replay(ctx context.Context, e *env, sd string, b bounds) (*schedule, error) {
	c, ds, err := parseSeed(sd)
	if err != nil {
		return nil, err
	}
	s := newSchedule(e, c, b, &replayChooser{ds: ds})
	return s, s.run(ctx)
}

func since(t0 time.Time) string { return time.Since(t0).Round(100 * time.Millisecond).String() }
