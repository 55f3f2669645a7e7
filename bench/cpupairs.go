package main

import (
	"context"
	"fmt"
	"net/http"
	"time"
)

// The paired CPU phase: the goal rows that divide our server's CPU per
// create (and DynamoDB Local's) by a floor's come from it, not from the
// passes. In a pass, the c=1 runs of the systems lie seconds apart and last
// about a second each; on a shared machine, whose load drifts within
// seconds, that made one pass's ratio range over a factor of two. Here each
// system of ours and the floors it is divided by take turns in short blocks
// of misses, ABBA within every round, so a drift falls on both sides of a
// ratio alike, and every system runs thousands of creates in all.

// pairedRun is what the paired phase measured of one system.
type pairedRun struct {
	cpu, jvm time.Duration // over all its blocks
	n        int           // 201 answers over all its blocks
	// server and JVM CPU per create, one entry per round
	rounds, jvmRounds []time.Duration
}

// perCreate returns CPU per create over every block.
func (p *pairedRun) perCreate() (server, jvm time.Duration) {
	if p == nil || p.n == 0 {
		return 0, 0
	}
	return p.cpu / time.Duration(p.n), p.jvm / time.Duration(p.n)
}

// cpuGroups returns, for each system of ours whose floors are all in have,
// the system followed by the floors its CPU goal rows divide by (floorOf,
// then gatewayFloorOf).
func cpuGroups(have func(string) bool) [][]string {
	var gs [][]string
	for _, m := range ourSystems {
		g := []string{m, floorOf[m]}
		if gw, ok := gatewayFloorOf[m]; ok {
			g = append(g, gw)
		}
		all := true
		for _, s := range g {
			all = all && have(s)
		}
		if all {
			gs = append(gs, g)
		}
	}
	return gs
}

// pairedCPU runs, for each group of cpuGroups, rounds of one block of
// block sequential misses per member: members in order in even rounds,
// reversed in odd ones. It reads the CPU of the member's process (and of
// jvmPID, when > 0) around each block. A failed request is counted in the
// system's result r and fails nothing else; the phase fails only when ctx
// ends.
func pairedCPU(ctx context.Context, client *http.Client, procs map[string]*proc, results map[string]*sysResult, jvmPID, rounds, block int) (map[string]*pairedRun, error) {
	out := map[string]*pairedRun{}
	cpu := func(pid int) time.Duration {
		if pid <= 0 {
			return 0
		}
		d, _ := cpuTime(pid)
		return d
	}
	have := func(s string) bool { return procs[s] != nil }
	for _, g := range cpuGroups(have) {
		logf("side by side: paired CPU, %d rounds of %d misses each: %v", rounds, block, g)
		for _, s := range g {
			if out[s] == nil {
				out[s] = &pairedRun{}
			}
		}
		for round := range rounds {
			for _, s := range abba(round, g) {
				if err := ctx.Err(); err != nil {
					return out, err
				}
				p, r := procs[s], out[s]
				a0, j0 := cpu(p.pid), cpu(jvmPID)
				m := sequentialMisses(ctx, client, p.url, block, time.Minute)
				a1, j1 := cpu(p.pid), cpu(jvmPID)
				results[s].note(m.loadResult)
				if m.ok == 0 {
					return out, fmt.Errorf("%s: no create succeeded in a paired block: %s", s, m.firstErr)
				}
				r.cpu += a1 - a0
				r.jvm += j1 - j0
				r.n += m.ok
				r.rounds = append(r.rounds, (a1-a0)/time.Duration(m.ok))
				r.jvmRounds = append(r.jvmRounds, (j1-j0)/time.Duration(m.ok))
			}
		}
	}
	return out, nil
}

// pairedRatio is num's CPU per create over den's, over all their blocks,
// with the lowest and highest ratio within one round; jvm selects DynamoDB
// Local's CPU instead of the server's. Not ok when either was not measured.
func pairedRatio(paired map[string]*pairedRun, num, den string, jvm bool) passRatio {
	a, b := paired[num], paired[den]
	if a == nil || b == nil || a.n == 0 || b.n == 0 {
		return passRatio{}
	}
	as, aj := a.perCreate()
	bs, bj := b.perCreate()
	ar, br := a.rounds, b.rounds
	if jvm {
		as, bs, ar, br = aj, bj, a.jvmRounds, b.jvmRounds
	}
	if bs == 0 {
		return passRatio{}
	}
	return bracketed(float64(as)/float64(bs), ar, br)
}
