package main

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/parcelhq/orderservice/internal/ddbmeter"
	"github.com/parcelhq/orderservice/internal/idem"
)

func TestPercentile(t *testing.T) {
	ds := make([]time.Duration, 100)
	for i := range ds {
		ds[i] = time.Duration(100-i) * time.Millisecond // unsorted on purpose
	}
	for _, c := range []struct {
		p    float64
		want time.Duration
	}{{50, 50 * time.Millisecond}, {99, 99 * time.Millisecond}, {100, 100 * time.Millisecond}, {1, time.Millisecond}} {
		if got := percentile(ds, c.p); got != c.want {
			t.Errorf("percentile(1..100 ms, %v) = %v, want %v", c.p, got, c.want)
		}
	}
	if got := percentile([]time.Duration{3, 1, 2}, 50); got != 2 {
		t.Errorf("median of 3, 1, 2 = %v, want 2", got)
	}
	if got := percentile(nil, 50); got != 0 {
		t.Errorf("percentile(nil) = %v, want 0", got)
	}
	if ds[0] != 100*time.Millisecond {
		t.Error("percentile sorted its argument in place")
	}
}

func TestPerRequest(t *testing.T) {
	if got := perRequest(3, 2); got != "1.500" {
		t.Errorf("perRequest(3, 2) = %q", got)
	}
	if got := perRequest(4, 2); got != "2" {
		t.Errorf("perRequest(4, 2) = %q", got)
	}
}

func TestParseStatCPU(t *testing.T) {
	for _, c := range []struct {
		name string
		line string
		want time.Duration
		ok   bool
	}{
		{"a plain command adds utime and stime", "123 (serve) S 1 123 123 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 9 0 1000 0 0", 3 * time.Second, true},
		{"a command with spaces and parentheses is skipped whole", "77 (my (odd) cmd) R 1 77 77 0 -1 0 0 0 0 0 7 3 0 0 20 0 1 0 5 0 0", 100 * time.Millisecond, true},
		{"a truncated line is an error", "77 (x) R 1 2", 0, false},
		{"a line without a command is an error", "garbage", 0, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := parseStatCPU([]byte(c.line))
			if (err == nil) != c.ok || got != c.want {
				t.Errorf("parseStatCPU = %v, %v; want %v, ok %v", got, err, c.want, c.ok)
			}
		})
	}
}

func TestWCUTable(t *testing.T) {
	for _, c := range []struct {
		size, want int
	}{{1, 1}, {1024, 1}, {1025, 2}, {4096, 4}} {
		if got := units(c.size); got != c.want {
			t.Errorf("units(%d) = %d, want %d", c.size, got, c.want)
		}
	}
	rows := wcuTable(itemSizes{order: 600, record: 1100, recordInProgress: 200, ptOrder: 500, ptRecord: 900, ptRecordInProgress: 150, itemOrder: 1030, floorPut: 1100, ok: true})
	want := map[string][2]int{
		sysLease:      {1 + 2*1 + 2*2, 1}, // the update is billed at the record's larger, COMPLETED size
		sysOptimistic: {2*1 + 2*2, 2*1 + 2*2},
		sysPowertools: {1 + 1 + 1, 1},
		sysItem:       {2, 2}, // one put of 1030 B, not in a transaction; a duplicate's failed put billed alike
		sysFloorPut:   {2, 0}, // its own item's size (not our lease-mode order's), and no hits
	}
	wantRead := map[string]int{sysLease: 1, sysOptimistic: 1, sysItem: 1} // a hinted hit: one consistent read of an item under 4 KB; the others have no hint
	seen := 0
	for _, r := range rows {
		if w, ok := want[r.what]; ok {
			seen++
			if r.miss != w[0] || r.hit != w[1] {
				t.Errorf("%s: miss %d, hit %d; want %d, %d", r.what, r.miss, r.hit, w[0], w[1])
			}
			if r.noHits != (r.what == sysFloorPut) {
				t.Errorf("%s: noHits %v", r.what, r.noHits)
			}
			if r.hintRead != wantRead[r.what] {
				t.Errorf("%s: %d read units for a hinted hit, want %d", r.what, r.hintRead, wantRead[r.what])
			}
		}
	}
	for _, c := range []struct{ size, want int }{{1, 1}, {4096, 1}, {4097, 2}} {
		if got := readUnits(c.size); got != c.want {
			t.Errorf("readUnits(%d) = %d, want %d", c.size, got, c.want)
		}
	}
	if seen != len(want) {
		t.Errorf("rows %+v lack some of %v", rows, want)
	}
}

func TestMedianAndRatios(t *testing.T) {
	if got := median([]time.Duration{5, 1, 3}); got != 3 {
		t.Errorf("median of 5, 1, 3 = %v", got)
	}
	if got := median([]float64{4, 1, 2, 3}); got != 2.5 {
		t.Errorf("median of 4, 1, 2, 3 = %v", got)
	}
	r := ratios([]time.Duration{2, 6}, []time.Duration{4, 4})
	if !r.ok || r.mid != 1 || r.lo != 0.5 || r.hi != 1.5 {
		t.Errorf("ratios = %+v, want mid 1, lo 0.5, hi 1.5", r)
	}
	if got := r.String(); got != "1.00× (0.50–1.50)" {
		t.Errorf("String = %q", got)
	}
	if r := ratios([]float64{1}, []float64{0}); r.ok || r.String() != "—" {
		t.Errorf("a zero denominator gives %+v", r)
	}
	g := goal{atMost: true, bound: 0.5}
	if g.met(passRatio{mid: 0.5, ok: true}) != "**met**" || g.met(passRatio{mid: 0.51, ok: true}) != "**not met**" || g.met(passRatio{}) != "not measured" {
		t.Error("an at-most goal is judged wrongly")
	}
	g = goal{bound: 1.5}
	if g.met(passRatio{mid: 1.5, ok: true}) != "**met**" || g.met(passRatio{mid: 1.49, ok: true}) != "**not met**" {
		t.Error("an at-least goal is judged wrongly")
	}
}

func TestWCUTableWithoutItemMode(t *testing.T) {
	for _, r := range wcuTable(itemSizes{order: 300, record: 700, recordInProgress: 200, ok: true}) {
		if r.what == sysItem || r.what == sysFloorPut {
			t.Errorf("a row %+v whose item was not measured", r)
		}
	}
}

// sbsOf is a side-by-side result with the given systems, each measured over
// two passes.
func sbsOf(jvm bool, systems ...*sysResult) sideBySideResult {
	sb := sideBySideResult{systems: map[string]*sysResult{}, passes: 2, levels: []int{8, 32}, jvm: jvm}
	for _, s := range systems {
		sb.order = append(sb.order, s.name)
		sb.systems[s.name] = s
	}
	return sb
}

func sys(name string, miss, hit, cpu, jvm time.Duration, rps float64) *sysResult {
	return &sysResult{
		name: name, missP50: []time.Duration{miss, miss}, hitP50: []time.Duration{hit, hit},
		missCPU: []time.Duration{cpu, cpu}, missJVM: []time.Duration{jvm, jvm},
		rps: map[int][]float64{8: {rps, rps}, 32: {rps, rps}},
	}
}

func TestGoals(t *testing.T) {
	const ms = time.Millisecond
	sb := sbsOf(true,
		sys(sysLease, 5*ms, 1*ms, 12*ms, 10*ms, 100),
		sys(sysOptimistic, 3*ms, 6*ms, 10*ms, 13*ms, 200),
		sys(sysItem, 1*ms, 1*ms, 6*ms, 6*ms, 600),
		sys(sysPowertools, 4*ms, 4*ms, 40*ms, 10*ms, 200),
		sys(sysFloorLease, 0, 0, 10*ms, 10*ms, 0),
		sys(sysFloorOpt, 0, 0, 10*ms, 10*ms, 0),
		sys(sysFloorPut, 0, 0, 5*ms, 5*ms, 0),
		sys(sysFloorPutGW, 0, 0, 4*ms, 5*ms, 0),
	)
	gs := goals(sb)
	if len(gs) != 8 {
		t.Fatalf("%d goals, want 8", len(gs))
	}
	t.Run("a hit without the hint is judged on the half of the retries sent without it", func(t *testing.T) {
		g := gs[7]
		if r := g.byMode[sysItem]; r.ok || g.met(r) != "not measured" {
			t.Errorf("item, no retries without the hint: %+v, %s; want not measured", r, g.met(r))
		}
		sb := sbsOf(true, sys(sysItem, ms, ms, ms, ms, 1), sys(sysPowertools, ms, 4*ms, ms, ms, 1))
		sb.systems[sysItem].plainP50 = []time.Duration{3 * ms, 3 * ms}
		g = goals(sb)[7]
		if r := g.byMode[sysItem]; !r.ok || r.mid != 0.75 || g.met(r) != "**not met**" {
			t.Errorf("item: %+v, %s; want 0.75, not met", r, g.met(r))
		}
		if r := goals(sb)[3].byMode[sysItem]; !r.ok || r.mid != 0.25 {
			t.Errorf("item's hinted hit: %+v; want 0.25", r)
		}
	})
	t.Run("the function's own CPU is judged against the floor behind the gateway emulation, for Item mode only", func(t *testing.T) {
		g := gs[6]
		if r := g.byMode[sysItem]; !r.ok || r.mid != 1.5 || g.met(r) != "**not met**" {
			t.Errorf("item: %+v, %s; want 1.5, not met", r, g.met(r))
		}
		for _, m := range []string{sysLease, sysOptimistic} {
			if r := g.byMode[m]; r.ok || g.met(r) != "not measured" {
				t.Errorf("%s has no gateway floor, yet %+v", m, r)
			}
		}
	})
	gs = gs[:6]
	want := []map[string]float64{
		{sysLease: 1.25, sysOptimistic: 0.75, sysItem: 0.25}, // miss p50 ÷ the peer's
		{sysLease: 0.5, sysOptimistic: 1, sysItem: 3},        // creates/s c=8
		{sysLease: 0.5, sysOptimistic: 1, sysItem: 3},        // creates/s c=32
		{sysLease: 0.25, sysOptimistic: 1.5, sysItem: 0.25},  // uncached hit
		{sysLease: 1.2, sysOptimistic: 1, sysItem: 1.2},      // server CPU ÷ its own floor: item's is the PutItem floor
		{sysLease: 1, sysOptimistic: 1.3, sysItem: 1.2},      // JVM CPU ÷ its own floor
	}
	wantMet := []map[string]string{
		{sysLease: "**not met**", sysOptimistic: "**not met**", sysItem: "**met**"},
		{sysLease: "**not met**", sysOptimistic: "**not met**", sysItem: "**met**"},
		{sysLease: "**not met**", sysOptimistic: "**not met**", sysItem: "**met**"},
		{sysLease: "**met**", sysOptimistic: "**not met**", sysItem: "**met**"},
		{sysLease: "**met**", sysOptimistic: "**met**", sysItem: "**met**"},
		{sysLease: "**met**", sysOptimistic: "**not met**", sysItem: "**met**"},
	}
	for i, g := range gs {
		for _, m := range ourSystems {
			r := g.byMode[m]
			if !r.ok || r.mid < want[i][m]-1e-9 || r.mid > want[i][m]+1e-9 {
				t.Errorf("%s, %s: ratio %+v, want %v", g.name, m, r, want[i][m])
			}
			if got := g.met(r); got != wantMet[i][m] {
				t.Errorf("%s, %s: %s, want %s", g.name, m, got, wantMet[i][m])
			}
		}
	}

	t.Run("a run without the JVM or the peer measures neither", func(t *testing.T) {
		sb := sbsOf(false, sys(sysItem, ms, ms, ms, ms, 1), sys(sysFloorPut, 0, 0, ms, ms, 0))
		for _, g := range goals(sb) {
			cpuRow := g.name == "server CPU per create, c=1, ÷ the floor server making the same DynamoDB calls" // the one floor measured
			if r := g.byMode[sysItem]; r.ok != cpuRow {
				t.Errorf("%s: %+v (measured: %v, want %v)", g.name, r, r.ok, cpuRow)
			}
			if r := g.byMode[sysLease]; r.ok || g.met(r) != "not measured" {
				t.Errorf("%s: lease, absent, is %+v", g.name, r)
			}
		}
	})
}

func TestCallsGoal(t *testing.T) {
	in := inprocResult{samples: map[string][]time.Duration{}, calls: map[string]ddbmeter.Calls{}}
	put := func(m string, reqs int, ops map[string]int64) {
		k := kindsOf(map[string]idem.Mode{"lease": idem.Lease, "optimistic": idem.Optimistic, "item": idem.Item}[m]).miss
		in.samples[k] = make([]time.Duration, reqs)
		in.calls[k] = ddbmeter.Calls{Ops: ops}
	}
	put("lease", 4, map[string]int64{"PutItem": 4, "TransactWriteItems": 4})
	put("optimistic", 4, map[string]int64{"TransactWriteItems": 4, "GetItem": 1}) // one miss read first
	// Item mode measured nothing.
	got := callsGoal(in)
	for m, want := range map[idem.Mode]callsCell{
		idem.Lease:      {perMiss: "2", want: 2, met: "**met**"},
		idem.Optimistic: {perMiss: "1.250", want: 1, met: "**not met**"},
		idem.Item:       {perMiss: "—", want: 1, met: "not measured"},
	} {
		if got[m] != want {
			t.Errorf("%s: %+v, want %+v", m, got[m], want)
		}
	}
}

func TestInprocKindsNameEveryMode(t *testing.T) {
	seen := map[string]bool{}
	for _, k := range inprocKinds {
		if seen[k] {
			t.Errorf("kind %q listed twice", k)
		}
		seen[k] = true
	}
	for _, m := range ourModes {
		k := kindsOf(m)
		for _, name := range []string{k.miss, k.hit, k.cached, k.guard, k.hint} {
			if !seen[name] {
				t.Errorf("%s: kind %q is not in inprocKinds", m, name)
			}
		}
		if sysOf(m) == "" || floorOf[sysOf(m)] == "" {
			t.Errorf("%s: no system (%q) or no floor for it", m, sysOf(m))
		}
	}
	if floorOf[sysItem] != sysFloorPut {
		t.Errorf("item mode's floor is %q, want the conditional PutItem floor", floorOf[sysItem])
	}
}

func TestPairedCPU(t *testing.T) {
	const ms = time.Millisecond
	run := func(per []time.Duration, jvm time.Duration, n int) *pairedRun {
		r := &pairedRun{n: n * len(per)}
		for _, d := range per {
			r.cpu += d * time.Duration(n)
			r.jvm += jvm * time.Duration(n)
			r.rounds = append(r.rounds, d)
			r.jvmRounds = append(r.jvmRounds, jvm)
		}
		return r
	}
	paired := map[string]*pairedRun{
		sysItem:       run([]time.Duration{6 * ms, 6 * ms}, 2*ms, 10),
		sysFloorPut:   run([]time.Duration{4 * ms, 6 * ms}, 2*ms, 10),
		sysFloorPutGW: run([]time.Duration{5 * ms, 5 * ms}, 2*ms, 10),
	}

	t.Run("a ratio is of CPU over all blocks, bracketed by the rounds' lowest and highest", func(t *testing.T) {
		r := pairedRatio(paired, sysItem, sysFloorPut, false)
		if !r.ok || r.mid != 1.2 || r.lo != 1 || r.hi != 1.5 {
			t.Errorf("pairedRatio = %+v, want 1.2 (1–1.5)", r)
		}
		if r := pairedRatio(paired, sysItem, sysFloorPut, true); !r.ok || r.mid != 1 {
			t.Errorf("JVM pairedRatio = %+v, want 1", r)
		}
		if r := pairedRatio(paired, sysLease, sysFloorLease, false); r.ok {
			t.Errorf("systems not measured give %+v", r)
		}
	})
	t.Run("the goals' CPU rows come from the paired phase when it ran", func(t *testing.T) {
		sb := sbsOf(true,
			sys(sysItem, ms, ms, 30*ms, 30*ms, 1), // the passes' figures, which the paired phase overrides
			sys(sysFloorPut, 0, 0, 5*ms, 5*ms, 0),
			sys(sysFloorPutGW, 0, 0, 5*ms, 5*ms, 0),
		)
		sb.paired = paired
		gs := goals(sb)
		for i, want := range map[int]float64{4: 1.2, 5: 1, 6: 1.2} {
			if r := gs[i].byMode[sysItem]; !r.ok || r.mid < want-1e-9 || r.mid > want+1e-9 {
				t.Errorf("%s: %+v, want %v", gs[i].name, r, want)
			}
		}
	})
	t.Run("a group is formed only when all its floors run", func(t *testing.T) {
		have := map[string]bool{sysItem: true, sysFloorPut: true, sysFloorPutGW: true, sysLease: true}
		gs := cpuGroups(func(s string) bool { return have[s] })
		if len(gs) != 1 || len(gs[0]) != 3 || gs[0][0] != sysItem || gs[0][1] != sysFloorPut || gs[0][2] != sysFloorPutGW {
			t.Errorf("cpuGroups = %v, want item with its two floors only", gs)
		}
	})
}

func TestLayers(t *testing.T) {
	const us = time.Microsecond
	// Two rounds per group, four creates per block: CPU per create 300 µs
	// (the floor), 300, 360 and 390 µs, except that the served layer's
	// first group costs 420 µs; 10 KiB allocated per create of each.
	l := layerResult{rounds: 2 * layerBlocks, block: 4, cpu: map[string]time.Duration{}, alloc: map[string]uint64{}, groups: map[string][]time.Duration{}}
	for i, per := range []time.Duration{300 * us, 300 * us, 360 * us, 390 * us} {
		n := layerNames[i]
		l.groups[n] = make([]time.Duration, layerBlocks)
		for g := range l.groups[n] {
			l.groups[n][g] = 2 * 4 * per
		}
		if n == layerAsServed {
			l.groups[n][0] = 2 * 4 * 420 * us
		}
		for _, d := range l.groups[n] {
			l.cpu[n] += d
		}
		l.alloc[n] = uint64(l.creates()) * 10 << 10
	}

	t.Run("a layer's ratio is of its CPU over the other's, bracketed by the groups'", func(t *testing.T) {
		r := l.ratio(layerAsServed, layerFloor)
		want := (4*390.0 + 420) / (5 * 300)
		if !r.ok || math.Abs(r.mid-want) > 1e-9 || math.Abs(r.lo-1.3) > 1e-9 || math.Abs(r.hi-1.4) > 1e-9 {
			t.Errorf("ratio = %+v, want %.3f (1.30–1.40)", r, want)
		}
		if r := l.ratio(layerFloor, layerFloor); !r.ok || r.mid != 1 {
			t.Errorf("the floor's own ratio = %+v, want 1", r)
		}
		if r := (layerResult{}).ratio(layerAsServed, layerFloor); r.ok {
			t.Errorf("nothing measured gives %+v", r)
		}
	})
	t.Run("the table lists the layers in order with what each costs over the row above", func(t *testing.T) {
		var b strings.Builder
		report{layers: l}.layersMarkdown(func(f string, a ...any) { fmt.Fprintf(&b, f, a...) })
		md := b.String()
		last := -1
		for _, n := range layerNames {
			i := strings.Index(md, "| "+n+" |")
			if i < 0 || i <= last {
				t.Fatalf("layer %q missing or out of order in:\n%s", n, md)
			}
			last = i
		}
		for _, want := range []string{
			"| 300 µs | 10.0 KiB | 1.00× | — |",
			"| 360 µs | 10.0 KiB | 1.20× | +60 µs (1.20×) |",
			"| 396 µs | 10.0 KiB | 1.32× (1.30–1.40) | +36 µs (1.10× (1.08–1.17)) |",
		} {
			if !strings.Contains(md, want) {
				t.Errorf("the table has no %q:\n%s", want, md)
			}
		}
	})
	t.Run("no table when the phase did not run", func(t *testing.T) {
		var b strings.Builder
		report{}.layersMarkdown(func(f string, a ...any) { fmt.Fprintf(&b, f, a...) })
		if b.Len() != 0 {
			t.Errorf("wrote %q", b.String())
		}
	})
	t.Run("rounds fall into consecutive groups, every group used when there are enough", func(t *testing.T) {
		for _, rounds := range []int{1, 3, 5, 7, 12, 200} {
			var counts [layerBlocks]int
			prev := 0
			for r := range rounds {
				g := groupOf(r, rounds)
				if g < prev || g >= layerBlocks {
					t.Fatalf("%d rounds: round %d in group %d after group %d", rounds, r, g, prev)
				}
				prev = g
				counts[g]++
			}
			for g, n := range counts {
				if rounds >= layerBlocks && (n < rounds/layerBlocks || n > rounds/layerBlocks+1) {
					t.Errorf("%d rounds: group %d has %d rounds, want %d or %d", rounds, g, n, rounds/layerBlocks, rounds/layerBlocks+1)
				}
			}
		}
	})
}

func TestABBA(t *testing.T) {
	xs := []string{"a", "b", "c"}
	for r, want := range [][]string{{"a", "b", "c"}, {"c", "b", "a"}, {"a", "b", "c"}, {"c", "b", "a"}} {
		if got := abba(r, xs); !slices.Equal(got, want) {
			t.Errorf("round %d: %v, want %v", r, got, want)
		}
	}
	if !slices.Equal(xs, []string{"a", "b", "c"}) {
		t.Errorf("abba changed its argument: %v", xs)
	}
}
