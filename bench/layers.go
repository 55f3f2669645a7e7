package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"syscall"
	"time"

	"github.com/awslabs/aws-lambda-go-api-proxy/httpadapter"

	"github.com/parcelhq/orderservice/functions/createorder/app"
	"github.com/parcelhq/orderservice/internal/ddb"
	"github.com/parcelhq/orderservice/internal/idem"
	"github.com/parcelhq/orderservice/internal/orders"
)

// The layers phase: where the CPU of one create goes, layer by layer, in
// this process. The side-by-side goal row divides our server's CPU per
// create by a floor's; this phase says which layers of the function the
// difference is made of. Every layer is a Lambda handler taking the same
// payload 2.0 event, each adding to the one before it, on one client and
// the Item-mode tables; one round runs each once, forwards in even rounds
// and backwards in odd ones, and the CPU of this process (getrusage: user
// and system, every thread, GC included) is read around each. No other
// phase runs meanwhile, so the process's CPU is the layer's and its SDK
// client's.

// The layers, in the order they add up.
const (
	layerFloor    = "floor: the put floor's function (Item mode's PutItem of a precomputed item; no decoding, no guard)"
	layerHandler  = "the orders create handler alone, unguarded, behind aws-lambda-go-api-proxy (event adapted, order decoded, validated, priced, one PutItem, encoded)"
	layerGuarded  = "+ caller scope, router, panic recovery, idempotency middleware and guard (Item mode): app.New with the request log off (LOG_LEVEL=ERROR)"
	layerAsServed = "+ the request log line with its EMF metrics: app.LambdaHandler(app.New(...)) as served (LOG_LEVEL=INFO)"
)

var layerNames = []string{layerFloor, layerHandler, layerGuarded, layerAsServed}

// layerBlocks is how many consecutive blocks of rounds the per-block ratio
// range of the layers table is taken over.
const layerBlocks = 5

// layerResult is what the layers phase measured: per layer, the CPU over
// all rounds and per block of rounds.
type layerResult struct {
	rounds int
	cpu    map[string]time.Duration
	blocks map[string][]time.Duration
}

// layers runs warmup rounds and then rounds rounds of one create per layer
// (see layerNames) on the in-process Item-mode tables. A create that does
// not answer 201 ends the phase with its error.
func layers(ctx context.Context, tables benchTables, warmup, rounds int) (layerResult, error) {
	client, err := ddb.NewClient(ctx)
	if err != nil {
		return layerResult{}, err
	}
	cfg := tables.inprocConfig(idem.Item)
	floor, err := newFloorServer(client, floorPut, cfg.OrdersTable, cfg.IdempotencyTable)
	if err != nil {
		return layerResult{}, err
	}
	unguarded := orders.NewHandler(orders.NewStore(client, cfg.OrdersTable))
	guarded, err := app.New(ctx, cfg, client, app.NewLogger(io.Discard, "ERROR"))
	if err != nil {
		return layerResult{}, err
	}
	served, err := app.New(ctx, cfg, client, app.NewLogger(io.Discard, "INFO"))
	if err != nil {
		return layerResult{}, err
	}
	handlers := map[string]lambdaHandler{
		layerFloor:    floor.lambda,
		layerHandler:  httpadapter.NewV2(unguarded.Create()).ProxyWithContext,
		layerGuarded:  app.LambdaHandler(guarded),
		layerAsServed: app.LambdaHandler(served),
	}
	res := layerResult{cpu: map[string]time.Duration{}, blocks: map[string][]time.Duration{}}
	for _, l := range layerNames {
		res.blocks[l] = make([]time.Duration, layerBlocks)
	}
	for round := range warmup + rounds {
		for j := range layerNames {
			l := layerNames[j]
			if round%2 == 1 {
				l = layerNames[len(layerNames)-1-j]
			}
			if err := ctx.Err(); err != nil {
				return res, err
			}
			// As Lambda gives one: the function timeout of template.yaml.
			rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			c0 := processCPU()
			resp, err := handlers[l](rctx, createEvent(newKey()))
			d := processCPU() - c0
			cancel()
			if err == nil && resp.StatusCode != http.StatusCreated {
				err = fmt.Errorf("status %d: %s", resp.StatusCode, resp.Body)
			}
			if err != nil {
				return res, fmt.Errorf("%s: %w", l, err)
			}
			if r := round - warmup; r >= 0 {
				res.cpu[l] += d
				res.blocks[l][r*layerBlocks/rounds] += d
			}
		}
		if round >= warmup {
			res.rounds++
		}
	}
	return res, nil
}

// processCPU returns the CPU time this process has used: user and system,
// every thread.
func processCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// perCreate returns layer l's CPU per create over every round.
func (r layerResult) perCreate(l string) time.Duration {
	if r.rounds == 0 {
		return 0
	}
	return r.cpu[l] / time.Duration(r.rounds)
}

// ratio returns layer l's CPU over the floor's, over every round, with the
// lowest and highest ratio of one block of rounds.
func (r layerResult) ratio(l string) passRatio {
	f := r.cpu[layerFloor]
	if r.rounds == 0 || f == 0 {
		return passRatio{}
	}
	x := passRatio{mid: float64(r.cpu[l]) / float64(f), lo: 1e18, hi: -1, ok: true}
	for i, b := range r.blocks[l] {
		if fb := r.blocks[layerFloor][i]; fb > 0 {
			v := float64(b) / float64(fb)
			x.lo, x.hi = min(x.lo, v), max(x.hi, v)
		}
	}
	if x.hi < 0 {
		x.lo, x.hi = x.mid, x.mid
	}
	return x
}

// layersMarkdown writes the layers table, when the phase ran.
func (r report) layersMarkdown(p func(string, ...any)) {
	l := r.layers
	if l.rounds == 0 {
		return
	}
	p("## Where a create's CPU goes, layer by layer (in process, Item mode)\n\n")
	p("The goal rows above divide our server's CPU per create by a floor's; this says which layers of the function the\n")
	p("difference is made of. Each row is a Lambda handler taking the same payload 2.0 event (a new key each time) and\n")
	p("adds to the row before it; every row makes one PutItem, on one client, on the Item-mode tables. One round runs\n")
	p("each row once, forwards in even rounds and backwards in odd ones, and this process's CPU (getrusage: user and\n")
	p("system, every thread, GC included) is read around each; nothing else runs meanwhile. %d rounds after a warm-up;\n", l.rounds)
	p("the range is the lowest and highest ratio over %d blocks of consecutive rounds. The handler-alone row's PutItem\n", layerBlocks)
	p("carries no record attributes and no condition on them, so it is a little cheaper than the floor's call: the next\n")
	p("row's increment includes them. These are CPU costs while DynamoDB Local runs on the same two cores, several\n")
	p("times what the same code costs in a tight Go benchmark (`go test -bench` keeps its caches warm; a create does not).\n\n")
	p("| layer | CPU per create | ÷ floor | added by this layer |\n|---|---:|---:|---:|\n")
	var prev time.Duration
	for i, n := range layerNames {
		c := l.perCreate(n)
		add := "—"
		if i > 0 {
			add = fmt.Sprintf("%+.0f µs", float64(c-prev)/float64(time.Microsecond))
		}
		p("| %s | %.0f µs | %s | %s |\n", n, float64(c)/float64(time.Microsecond), l.ratio(n), add)
		prev = c
	}
	p("\n")
}
