package main

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/parcelhq/orderservice/internal/ddbmeter"
)

// report is everything one run measured.
type report struct {
	machine   machine
	command   string
	settings  string
	inproc    inprocResult
	layers    layerResult
	sbs       sideBySideResult
	sizes     itemSizes
	artifacts []artifact
	boot      bootstrapResult
	elapsed   time.Duration
	phases    []string // "name duration", in order
}

// percentile returns the nearest-rank p-th percentile (0 < p <= 100) of ds.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	rank := int(float64(len(s))*p/100+0.999999) - 1
	return s[max(0, min(rank, len(s)-1))]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond)) }

func ratio(a, b time.Duration) string {
	if b == 0 {
		return "—"
	}
	return fmt.Sprintf("%.2f×", float64(a)/float64(b))
}

func mib(kib int64) string { return fmt.Sprintf("%.1f MiB", float64(kib)/1024) }

// perRequest formats n calls over reqs requests: an integer when exact.
func perRequest(n int64, reqs int) string {
	if reqs == 0 {
		return "—"
	}
	if n%int64(reqs) == 0 {
		return fmt.Sprint(n / int64(reqs))
	}
	return fmt.Sprintf("%.3f", float64(n)/float64(reqs))
}

// perRequestF formats x over reqs requests.
func perRequestF(x float64, reqs int) string {
	if reqs == 0 {
		return "—"
	}
	return fmt.Sprintf("%.2f", x/float64(reqs))
}

func (r report) markdown() string {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	m := r.machine

	p("# Benchmarks\n\n")
	p("Written by `make bench` (the program in `bench/`); do not edit by hand. One run, every figure below from it,\n")
	p("all against the same DynamoDB Local on the same machine. The machine is shared (DynamoDB Local's JVM, the service\n")
	p("and the load generator all run on it), so absolute figures are noisy; the ratios, measured side by side in the\n")
	p("same run, are the point. DynamoDB Local's latencies are not AWS DynamoDB's.\n\n")

	p("## Machine and run\n\n| | |\n|---|---|\n")
	p("| CPU | %s |\n| Cores | %d |\n| Memory | %d MiB |\n| Kernel | Linux %s |\n| Go | %s |\n", m.CPU, m.Cores, m.MemoryMiB, m.Kernel, m.Go)
	p("| DynamoDB Local | %s at %s |\n", m.DynamoDBLocal, m.Endpoint)
	p("| Date | %s |\n", m.Date.Format("2006-01-02 15:04 MST"))
	p("| Load average (1/5/15 min) | %s at start, %s at end |\n", m.LoadStart, m.LoadEnd)
	p("| Command | `%s` |\n", r.command)
	p("| Settings | %s |\n", r.settings)
	p("| Run time | %s (%s) |\n\n", r.elapsed.Round(time.Second), strings.Join(r.phases, ", "))

	// Calls.
	in := r.inproc
	var all []ddbmeter.Calls
	for _, k := range inprocKinds {
		all = append(all, in.calls[k])
	}
	ops := opNames(all...)
	p("## DynamoDB calls per request\n\n")
	p("Counted, not assumed: an aws-sdk-go-v2 middleware on the client counts each operation by name (Initialize step,\n")
	p("once per operation, before the SDK's retries) and each HTTP attempt (Finalize step, after the retry middleware),\n")
	p("over every timed request of the latency run below (its n column), divided by that n. Requests go through\n")
	p("`app.LambdaHandler(app.New(...))` with payload 2.0 events, two handlers per mode standing for two Lambda containers.\n")
	p("`app.New` always configures the in-process cache, which holds what the container committed or replayed: a retry\n")
	p("reaching the other container (\"hit, not cached\") goes to the table, one reaching the container that committed\n")
	p("(\"hit, cached\") is answered from memory. The \"Guard.Do without a cache\" rows are two more\n")
	p("retries of the same request, each through an `idem.Guard` on the same table with no cache (the request the\n")
	p("middleware makes: same scope, key and fingerprint), so the cost of a hit without the cache is measured too, and\n")
	p("one more with the retry hint (`idem.Request.Retry`, what `Idempotency-Retry: ?1` sets), which reads instead of writing.\n")
	p("\"write units reported\" and \"read units reported\" are the ConsumedCapacity DynamoDB Local returns when asked (the middleware sets\n")
	p("ReturnConsumedCapacity=TOTAL), as DynamoDB Local computes it: successful writes only (a failed condition or a\n")
	p("cancelled transaction reports none, though AWS bills them). AWS's bill per order is in \"Write units per order on\n")
	p("AWS pricing terms\" below.\n\n")
	p("| request |")
	for _, op := range ops {
		p(" %s |", op)
	}
	p(" total | HTTP attempts | write units reported | read units reported |\n|---|")
	for range ops {
		p("---:|")
	}
	p("---:|---:|---:|---:|\n")
	for _, k := range inprocKinds {
		c, n := in.calls[k], len(in.samples[k])
		p("| %s |", k)
		for _, op := range ops {
			p(" %s |", perRequest(c.Ops[op], n))
		}
		p(" **%s** | %s | %s | %s |\n", perRequest(c.Total(), n), perRequest(c.Attempts, n), perRequestF(c.WriteUnits, n), perRequestF(c.ReadUnits, n))
	}
	p("\n")

	// Latency.
	bare := in.samples[kBare]
	b50, b99 := percentile(bare, 50), percentile(bare, 99)
	p("## Latency of one request, in-process\n\n")
	p("One iteration makes one request of each kind, in the order listed, so noise hits every kind alike; %d iterations\n", in.iters)
	p("after a warm-up. Guarded requests: the whole handler (event adaptation, key and body checks, fingerprint, guard,\n")
	p("order validation and pricing, request log to a discarded writer). The bare PutItem is one conditional put of a\n")
	p("small new item; the unguarded write is `orders.Store.Create` of a booked order, no guard. The Guard.Do rows are\n")
	p("the guard alone (fingerprint computed once, no HTTP or event adaptation) with the create handler's write as fn.\n\n")
	p("| request | n | p50 | p99 | p50 ÷ bare PutItem p50 | p99 ÷ bare PutItem p99 |\n|---|---:|---:|---:|---:|---:|\n")
	for _, k := range inprocKinds {
		s := in.samples[k]
		p50, p99 := percentile(s, 50), percentile(s, 99)
		p("| %s | %d | %s | %s | %s | %s |\n", k, len(s), ms(p50), ms(p99), ratio(p50, b50), ratio(p99, b99))
	}
	p("\n")

	r.sideBySideMarkdown(p)
	r.layersMarkdown(p)

	// Bootstrap and memory.
	p("## Bootstrap: size, start, memory\n\n| | |\n|---|---|\n")
	for _, a := range r.artifacts {
		p("| `bootstrap` size, linux/%s (`make build GOARCH_LAMBDA=%s`) | %d bytes (%.1f MiB) |\n", a.arch, a.arch, a.size, float64(a.size)/(1<<20))
	}
	bt := r.boot
	if len(bt.coldStarts) > 0 {
		cs := slices.Clone(bt.coldStarts)
		slices.Sort(cs)
		var all []string
		for _, d := range bt.coldStarts {
			all = append(all, fmt.Sprintf("%.1f", float64(d)/float64(time.Millisecond)))
		}
		p("| environment start → first response (linux/%s bootstrap under the real Lambda Runtime Interface Emulator, local/rie: emulator start + init + first invocation, a POST /orders miss) | median **%s** of %d cold starts (min %s, max %s; each ms: %s) |\n",
			bt.arch, ms(percentile(cs, 50)), len(cs), ms(cs[0]), ms(cs[len(cs)-1]), strings.Join(all, ", "))
	}
	if len(bt.warmMiss) > 0 && len(bt.warmHit) > 0 {
		p("| the same bootstrap warm, Invoke → response through the emulator | miss p50 %s, p99 %s (n %d); first replay (from the cache of the container that committed it) p50 %s, p99 %s (n %d) |\n",
			ms(percentile(bt.warmMiss, 50)), ms(percentile(bt.warmMiss, 99)), len(bt.warmMiss),
			ms(percentile(bt.warmHit, 50)), ms(percentile(bt.warmHit, 99)), len(bt.warmHit))
	}
	if bt.invocations > 0 {
		p("| bootstrap peak RSS (VmHWM) after 1 + %d invocations (every fifth a replay) | **%s** (VmRSS then %s) |\n", bt.invocations, mib(bt.hwm), mib(bt.rss))
	}
	for _, name := range r.sbs.order {
		s := r.sbs.systems[name]
		if s.memoryErr != "" {
			p("| %s: peak RSS of the server process | not measured: %s |\n", name, s.memoryErr)
			continue
		}
		p("| %s: peak RSS (VmHWM) of the process answering the misses, after the side-by-side runs | **%s** (VmRSS then %s) |\n", name, mib(s.hwm), mib(s.rss))
	}
	p("\n")

	p("## Not measured here\n\n")
	p("- AWS itself: Lambda's own cold start (sandbox and runtime set-up), network latency to DynamoDB, DynamoDB's\n")
	p("  real latency and throttling, API Gateway. The start time above is this process's init plus one request.\n")
	if r.boot.arch != "arm64" {
		p("- The linux/arm64 bootstrap (the one deployed) runs on Graviton, not here: its start time and memory were\n")
		p("  measured on the linux/%s build of the same code; only its size is the arm64 artifact's.\n", r.boot.arch)
	}
	p("- Contention on one key (duplicates racing a first attempt: 409s, bounded waits, lease takeovers): every\n")
	p("  request here has a key of its own. internal/idem's tests cover those paths for correctness, not speed.\n")
	return b.String()
}
