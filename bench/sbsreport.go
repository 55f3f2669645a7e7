package main

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/parcelhq/orderservice/functions/createorder/app"
	"github.com/parcelhq/orderservice/internal/idem"
)

// median returns the median of xs (the mean of the middle two for an even
// count), 0 for none.
func median[T time.Duration | float64](xs []T) T {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// passRatio is a figure of one system over another's, mid, with the lowest
// and highest ratio of one part of the measurement (lo, hi). From ratios,
// mid is the ratio of medians over the passes and a part is a pass; the
// paired CPU phase and the layers phase make mid of totals and take their
// rounds or groups of rounds as the parts. ok is false when a denominator is
// missing or zero.
type passRatio struct {
	mid, lo, hi float64
	ok          bool
}

func ratios[T time.Duration | float64](num, den []T) passRatio {
	m := median(den)
	if m == 0 || len(num) == 0 {
		return passRatio{}
	}
	return bracketed(float64(median(num))/float64(m), num, den)
}

// bracketed returns the ratio mid with the lowest and highest of the ratios
// num[i]/den[i] (den[i] zero skipped); both are mid when there is none.
func bracketed[T time.Duration | float64](mid float64, num, den []T) passRatio {
	r := passRatio{mid: mid, lo: 1e18, hi: -1, ok: true}
	for i := range min(len(num), len(den)) {
		if den[i] == 0 {
			continue
		}
		x := float64(num[i]) / float64(den[i])
		r.lo, r.hi = min(r.lo, x), max(r.hi, x)
	}
	if r.hi < 0 {
		r.lo, r.hi = r.mid, r.mid
	}
	return r
}

func (r passRatio) String() string {
	if !r.ok {
		return "—"
	}
	if fmt.Sprintf("%.2f", r.lo) == fmt.Sprintf("%.2f", r.hi) {
		return fmt.Sprintf("%.2f×", r.mid)
	}
	return fmt.Sprintf("%.2f× (%.2f–%.2f)", r.mid, r.lo, r.hi)
}

// goal is one row of the goal table: a ratio and its bound, measured for
// each system of ours.
type goal struct {
	name   string
	target string
	atMost bool // met when the ratio is at most bound, else at least
	bound  float64
	byMode map[string]passRatio // by ourSystems entry
}

func (g goal) met(r passRatio) string {
	switch {
	case !r.ok:
		return "not measured"
	case g.atMost && r.mid <= g.bound, !g.atMost && r.mid >= g.bound:
		return "**met**"
	}
	return "**not met**"
}

// goals judges issue 11's ratio goals for each system of ours in sb: against
// the Powertools peer (latency, throughput, uncached hits) and against the
// floor server making the same DynamoDB calls (floorOf: CPU of our server
// and of DynamoDB Local's JVM). A figure sb lacks is not measured.
func goals(sb sideBySideResult) []goal {
	get := func(n string) *sysResult {
		if s, ok := sb.systems[n]; ok {
			return s
		}
		return &sysResult{rps: map[int][]float64{}}
	}
	pt := get(sysPowertools)
	at := func(s *sysResult, c int) []float64 {
		if !slices.Contains(sb.levels, c) {
			return nil
		}
		return s.rps[c]
	}
	gs := []goal{
		{name: "miss p50, c=1, ÷ Powertools-TS", target: "≤ 0.50×", atMost: true, bound: 0.5},
		{name: "creates/s at c=8 ÷ Powertools-TS", target: "≥ 1.50×", bound: 1.5},
		{name: "creates/s at c=32 ÷ Powertools-TS", target: "≥ 1.50×", bound: 1.5},
		{name: "hit from another execution environment (uncached), p50, ÷ Powertools-TS's hit; ours sent with Idempotency-Retry: ?1, as our client sends a retry", target: "≤ 0.50×", atMost: true, bound: 0.5},
		{name: "server CPU per create, c=1, ÷ the floor server making the same DynamoDB calls", target: "≤ 1.20×", atMost: true, bound: 1.2},
		{name: "DynamoDB Local JVM CPU per create, c=1, ÷ the floor server's for the same calls", target: "≤ 1.20×", atMost: true, bound: 1.2},
		{name: "server CPU per create, c=1, ÷ that floor as a Lambda handler behind the same API Gateway emulation (the function's own CPU)", target: "≤ 1.20×", atMost: true, bound: 1.2},
		{name: "the same hit sent WITHOUT Idempotency-Retry (a caller that does not send the hint, as Powertools' callers do not)", target: "≤ 0.50×", atMost: true, bound: 0.5},
	}
	for i := range gs {
		gs[i].byMode = map[string]passRatio{}
		for _, m := range ourSystems {
			s := get(m)
			f := get(floorOf[m])
			var x passRatio
			switch i {
			case 0:
				x = ratios(s.missP50, pt.missP50)
			case 1:
				x = ratios(at(s, 8), at(pt, 8))
			case 2:
				x = ratios(at(s, 32), at(pt, 32))
			case 3:
				x = ratios(s.hitP50, pt.hitP50)
			case 4:
				x = ratios(s.missCPU, f.missCPU)
				if len(sb.paired) > 0 {
					x = pairedRatio(sb.paired, m, floorOf[m], false)
				}
			case 5:
				if sb.jvm {
					x = ratios(s.missJVM, f.missJVM)
					if len(sb.paired) > 0 {
						x = pairedRatio(sb.paired, m, floorOf[m], true)
					}
				}
			case 6:
				if gw, ok := gatewayFloorOf[m]; ok {
					x = ratios(s.missCPU, get(gw).missCPU)
					if len(sb.paired) > 0 {
						x = pairedRatio(sb.paired, m, gw, false)
					}
				}
			case 7:
				x = ratios(s.plainP50, pt.hitP50)
			}
			gs[i].byMode[m] = x
		}
	}
	return gs
}

// protocolCalls is the number of DynamoDB calls a create needs in each
// mode: lease 2 (acquire, commit), optimistic 1 (the transaction), item 1
// (the conditional PutItem).
var protocolCalls = map[idem.Mode]int64{idem.Lease: 2, idem.Optimistic: 1, idem.Item: 1}

// callsCell is the calls-per-create goal of one mode: the in-process count
// per miss, what the protocol needs, and whether every miss made exactly
// that many.
type callsCell struct {
	perMiss string
	want    int64
	met     string
}

// callsGoal judges, for each of our modes, the DynamoDB calls of the
// in-process misses against protocolCalls.
func callsGoal(in inprocResult) map[idem.Mode]callsCell {
	out := map[idem.Mode]callsCell{}
	for _, m := range ourModes {
		k := kindsOf(m).miss
		c, n := in.calls[k], len(in.samples[k])
		cell := callsCell{perMiss: perRequest(c.Total(), n), want: protocolCalls[m], met: "not measured"}
		if n > 0 {
			cell.met = "**not met**"
			if c.Total() == cell.want*int64(n) {
				cell.met = "**met**"
			}
		}
		out[m] = cell
	}
	return out
}

func msD(d time.Duration) string { return ms(d) }

// sideBySideMarkdown writes the side-by-side sections: the goals, the
// figures of every system, and the write units on AWS terms.
func (r report) sideBySideMarkdown(p func(string, ...any)) {
	sb := r.sbs
	if len(sb.order) == 0 {
		return
	}
	pt := sb.systems[sysPowertools]
	if pt == nil {
		pt = &sysResult{rps: map[int][]float64{}}
	}

	p("## Side by side: ours, the Powertools peer, the floor\n\n")
	p("Every system is a server process of its own behind the same HTTP contract (POST /orders with an Idempotency-Key,\n")
	p("201 with the order as JSON, the stored answer replayed to a retry), on the same DynamoDB Local, driven by the same\n")
	p("load generator over kept-alive connections, on tables of its own:\n\n")
	p("- **ours**: the real `local/serve` binary with its in-process runner (the handler the bootstrap registers, behind\n")
	p("  `local/apigw`'s API Gateway emulation; not under the Runtime Interface Emulator `make local` uses, whose extra hop\n")
	p("  would be charged to ours alone, since the peer and the floors are plain servers), in each mode (IDEMPOTENCY_MODE lease, optimistic, item); the default mode is **%s** (`app.DefaultMode`,\n", app.DefaultMode)
	p("  template.yaml's IdempotencyMode). Every mode's tables are made as `app.Config.Tables` defines them: the orders\n")
	p("  table with TTL on %s (Item mode keeps its records on the order items, record-only items expiring by TTL).\n", idem.AttrItemTTL)
	p("- **Powertools-TS 2.35**: `bench/powertools/server.mjs`, Powertools for AWS Lambda (TypeScript) idempotency 2.35\n")
	p("  with its DynamoDB persistence layer (key from the header, body hash validated, no local cache) around a function\n")
	p("  that validates, prices and puts one order item: three single-item writes per create.\n")
	p("- **floors**: this program re-executed with `-floor`: a net/http server that makes only the DynamoDB calls of a\n")
	p("  protocol with the same items (the order item as orders.Store writes it, a record holding the response), and\n")
	p("  answers with a prepared body: no validation, no fingerprint, no log, no API Gateway emulation; and %q:\n", sysFloorPutGW)
	p("  the put floor's call made by a bare Lambda handler (no aws-lambda-go-api-proxy, no middleware) behind\n")
	p("  `local/apigw`, as local/serve runs ours.\n\n")
	p("Order of work, ABBA: the systems run one after the other in a pass, forwards in the first pass and backwards in the\n")
	p("next, alternately (%d passes, load average at each pass's start: %s), so a drift in the machine's load falls on all alike. In\n", sb.passes, strings.Join(sb.loadBetween, "; "))
	p("each pass every system gets, one system after the other: misses at c=1 (fresh keys), then the same requests again,\n")
	p("one by one, to a SECOND process of the same system (another execution environment: our in-process cache cannot\n")
	p("answer, so these are uncached hits; each answer is checked to be the first request's order; ours reads the\n")
	p("`Idempotency-Retry: ?1` hint our client sends on a retry, so half of its retries carry it and half do not, the\n")
	p("half sent first alternating with the passes; the other systems have no such hint and get no such header); then every system gets\n")
	p("misses at c=%s in turn. CPU time is utime+stime of the server\n", joinInts(sb.levels, ", then every system at c="))
	if sb.jvm {
		p("process and of DynamoDB Local's JVM from /proc/PID/stat (10 ms ticks) before and after each run, divided by the\n")
	} else {
		p("process from /proc/PID/stat (10 ms ticks; DynamoDB Local's JVM was not found on this machine, so its CPU is not\n")
		p("accounted) before and after each run, divided by the\n")
	}
	p("201 answers of the run. A figure is the median over the passes; a ratio is of medians, with in brackets the\n")
	p("lowest and highest ratio within one pass.\n\n")

	// Goals.
	p("### Goals (issue 11), this run, for each mode\n\n")
	p("Each cell: the ratio (median of passes; lowest–highest within one pass; the CPU rows are taken otherwise, see below;\n")
	p("the calls row is a count), then whether it meets the target. The\n")
	p("default mode (`app.DefaultMode`, template.yaml's IdempotencyMode) is **%s**; issue 11's goals are for the\n", app.DefaultMode)
	p("default. The floors of the CPU rows are the floor servers making the same DynamoDB calls: lease — %q,\n", sysFloorLease)
	p("optimistic — %q, item — %q (the order item with record\n", sysFloorOpt, sysFloorPut)
	p("attributes of Item mode's names, kinds and sizes, its stored response compressed once at start, under Item mode's condition).\n")
	p("Ours runs behind `local/apigw`'s API Gateway emulation (an HTTP request made into an event and the handler's answer\n")
	p("back), work that on AWS is API Gateway's and in no function's bill; the last CPU row divides by %q,\n", sysFloorPutGW)
	p("the floor's PutItem in a bare Lambda handler behind that same emulation, so it compares what the functions do.\n")
	if len(sb.paired) > 0 {
		p("The three CPU rows come from the paired CPU phase below, not from the passes: each is the ratio of CPU per create over\n")
		p("all of the two systems' paired blocks, with in brackets the lowest and highest ratio within one round.\n")
	}
	p("\n")
	p("| goal | target |")
	for i, m := range ourSystems {
		if ourModes[i] == app.DefaultMode {
			p(" %s (default) |", m)
		} else {
			p(" %s |", m)
		}
	}
	p("\n|---|---|")
	for range ourSystems {
		p("---|")
	}
	p("\n")
	for _, g := range goals(sb) {
		p("| %s | %s |", g.name, g.target)
		for _, m := range ourSystems {
			p(" %s %s |", g.byMode[m], g.met(g.byMode[m]))
		}
		p("\n")
	}
	cg := callsGoal(r.inproc)
	p("| DynamoDB calls per create (in-process count) = what the protocol needs | equal |")
	for _, m := range ourModes {
		c := cg[m]
		p(" %s (protocol: %d) %s |", c.perMiss, c.want, c.met)
	}
	p("\n\n")

	// Figures.
	p("### Figures per system (medians over the passes)\n\n")
	p("| system | miss p50 | miss p99 | uncached hit p50 | hit p99 | uncached hit p50, no hint | p99, no hint |")
	for _, c := range sb.levels {
		p(" creates/s c=%d |", c)
	}
	p(" server CPU / create, c=1 | JVM CPU / create, c=1 | server CPU / hit | JVM CPU / hit | server CPU / hit, no hint | JVM CPU / hit, no hint |")
	for _, c := range sb.levels {
		p(" server + JVM CPU / create, c=%d |", c)
	}
	p(" 201s | failed |\n|---|---:|---:|---:|---:|---:|---:|")
	for range sb.levels {
		p("---:|")
	}
	p("---:|---:|---:|---:|---:|---:|")
	for range sb.levels {
		p("---:|")
	}
	p("---:|---:|\n")
	dash := func(xs []time.Duration) string {
		if len(xs) == 0 {
			return "—"
		}
		return msD(median(xs))
	}
	jvmCell := func(xs []time.Duration) string {
		if !sb.jvm {
			return "—"
		}
		return dash(xs)
	}
	var fails []string
	for _, name := range sb.order {
		s := sb.systems[name]
		p("| %s | %s | %s | %s | %s | %s | %s |", name, dash(s.missP50), dash(s.missP99), dash(s.hitP50), dash(s.hitP99), dash(s.plainP50), dash(s.plainP99))
		for _, c := range sb.levels {
			p(" **%.0f** |", median(s.rps[c]))
		}
		p(" %s | %s | %s | %s | %s | %s |", dash(s.missCPU), jvmCell(s.missJVM), dash(s.hitCPU), jvmCell(s.hitJVM), dash(s.plainCPU), jvmCell(s.plainJVM))
		for _, c := range sb.levels {
			if sb.jvm {
				p(" %s + %s |", dash(s.loadCPU[c]), dash(s.loadJVM[c]))
			} else {
				p(" %s |", dash(s.loadCPU[c]))
			}
		}
		p(" %d | %d |\n", s.ok, s.failed)
		if s.failed > 0 {
			fails = append(fails, name+": "+s.firstErr)
		}
	}
	if len(fails) > 0 {
		p("\nFirst failure per system: %s\n", strings.Join(fails, "; "))
	}
	p("\n")

	r.pairedMarkdown(p)

	if pt.name != "" {
		p("### Ratios to Powertools-TS (median of passes; lowest–highest within one pass)\n\n")
		p("| system | miss p50 | uncached hit p50 |")
		for _, c := range sb.levels {
			p(" creates/s c=%d |", c)
		}
		p(" server CPU / create, c=1 | JVM CPU / create, c=1 |\n|---|---:|---:|")
		for range sb.levels {
			p("---:|")
		}
		p("---:|---:|\n")
		for _, name := range sb.order {
			s := sb.systems[name]
			p("| %s | %s | %s |", name, ratios(s.missP50, pt.missP50), ratios(s.hitP50, pt.hitP50))
			for _, c := range sb.levels {
				p(" %s |", ratios(s.rps[c], pt.rps[c]))
			}
			jr := passRatio{}
			if sb.jvm {
				jr = ratios(s.missJVM, pt.missJVM)
			}
			p(" %s | %s |\n", ratios(s.missCPU, pt.missCPU), jr)
		}
		p("\n")
	}

	// Write units on AWS terms.
	if r.sizes.ok {
		z := r.sizes
		p("## Write units per order on AWS pricing terms\n\n")
		p("Computed, not measured on AWS: DynamoDB bills one write unit per started KB of each item written (the larger of\n")
		p("its old and new size for an update) and TWO per KB for an item written in a transaction. Item sizes are those of\n")
		p("items this run stored (attribute names plus values, as DynamoDB counts them): our order %d B, our COMPLETED\n", z.order)
		p("record %d B, IN_PROGRESS record %d B", z.record, z.recordInProgress)
		if z.itemOrder > 0 {
			p("; Item mode's order item carrying its record %d B", z.itemOrder)
		}
		if z.ptOrder > 0 {
			p("; the Powertools peer's order %d B, COMPLETED record %d B, INPROGRESS record %d B", z.ptOrder, z.ptRecord, z.ptRecordInProgress)
		}
		if z.floorPut > 0 {
			p("; the put floor's order item with its record %d B", z.floorPut)
		}
		p(".\nA failed conditional write is billed like a successful one; a cancelled transaction is counted here as billed\n")
		p("for what it would have written (an upper bound: AWS does not publish the charge of a cancelled transaction).\n\n")
		p("A hit sent with `Idempotency-Retry: ?1` (ours) writes nothing: one strongly consistent GetItem of the stored\n")
		p("record, one read unit per started 4 KB (Item mode reads one more item for each expired order of the key before it).\n\n")
		p("| protocol | calls per create | write units per create (miss) | per uncached hit | per uncached hit with the hint |\n|---|---|---:|---:|---:|\n")
		for _, w := range wcuTable(z) {
			hint := "—"
			if w.hintRead > 0 {
				hint = fmt.Sprintf("0 write units, %d read unit(s)", w.hintRead)
			}
			hit := fmt.Sprintf("%d (%s)", w.hit, w.hitDetail)
			if w.noHits {
				hit = "— (answers no retries)"
			}
			p("| %s | %s | **%d** = %s | %s | %s |\n", w.what, w.calls, w.miss, w.missDetail, hit, hint)
		}
		p("\n")
	}
}

func joinInts(xs []int, sep string) string {
	var s []string
	for _, x := range xs {
		s = append(s, fmt.Sprint(x))
	}
	return strings.Join(s, sep)
}

// pairedMarkdown writes the paired CPU phase's section, when it ran.
func (r report) pairedMarkdown(p func(string, ...any)) {
	sb := r.sbs
	if len(sb.paired) == 0 {
		return
	}
	p("### CPU per create at c=1, paired\n\n")
	p("Each system of ours and the floors its CPU goal rows divide by take turns on their running processes, in rounds:\n")
	p("one block of %d sequential misses (fresh keys) per system, in order in the first round and reversed in the next, alternately (ABBA),\n", sb.cpuBlock)
	p("%d rounds (load average at the start: %s). CPU is read from /proc/PID/stat around each block, so the blocks of\n", sb.cpuRounds, sb.pairedLoad)
	p("a ratio's two sides lie a fraction of a second apart and a drift in the machine's load falls on both; a figure is\n")
	p("the CPU of all of a system's blocks divided by their 201 answers. The passes' c=1 windows (about a second per system\n")
	p("and pass, seconds apart) are kept in the table above.\n\n")
	p("| system | creates | server CPU / create | DynamoDB Local JVM CPU / create |\n|---|---:|---:|---:|\n")
	for _, g := range cpuGroups(func(s string) bool { return sb.paired[s] != nil }) {
		for _, s := range g {
			server, jvm := sb.paired[s].perCreate()
			jc := "—"
			if sb.jvm {
				jc = msD(jvm)
			}
			p("| %s | %d | %s | %s |\n", s, sb.paired[s].n, msD(server), jc)
		}
	}
	p("\n")
}
