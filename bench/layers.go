package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"runtime/metrics"
	"syscall"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/awslabs/aws-lambda-go-api-proxy/httpadapter"

	"github.com/parcelhq/orderservice/functions/createorder/app"
	"github.com/parcelhq/orderservice/internal/ddb"
	"github.com/parcelhq/orderservice/internal/idem"
	"github.com/parcelhq/orderservice/internal/orders"
)

// The layers phase: where the CPU of a create goes, layer by layer, in this
// process. The side-by-side goal row divides our server's CPU per create by
// a floor's; this phase says which layers of the function the difference is
// made of. Every layer is a Lambda handler taking the same payload 2.0 event,
// on one client and the Item-mode tables. A round runs a block of
// consecutive creates of each layer, layers forwards in even rounds and
// backwards in odd ones (ABBA), and reads this process's CPU (getrusage:
// user and system, every thread) and its heap allocations (runtime/metrics)
// around each block. No other phase runs meanwhile. The GC's background work
// is charged to whichever block runs when it runs, not to the layer that
// allocated; blocks of consecutive creates, ABBA, and the allocation column
// keep that visible.

// The layers. The floor is the same DynamoDB call with none of the
// service's work; from the orders handler on, each row adds to the one
// before it.
const (
	layerFloor    = "floor: the put floor's function (Item mode's PutItem of a precomputed item; no decoding, no guard)"
	layerHandler  = "the orders create handler alone, unguarded, behind aws-lambda-go-api-proxy (event adapted, order decoded, validated, priced, one PutItem of the order item, encoded)"
	layerGuarded  = "+ caller scope, router, panic recovery, idempotency middleware and guard (Item mode: the record on the same PutItem, under its condition): app.New with the request log off (LOG_LEVEL=ERROR)"
	layerAsServed = "+ the request log line with its EMF metrics: app.LambdaHandler(app.New(...)) as served (LOG_LEVEL=INFO)"
)

var layerNames = []string{layerFloor, layerHandler, layerGuarded, layerAsServed}

const (
	// layerBlocks is how many consecutive groups of rounds the ratio
	// ranges of the layers table are taken over.
	layerBlocks = 5
	// layerWarmup is how many rounds run before the measured ones.
	layerWarmup = 3
)

// layerResult is what the layers phase measured: per layer, the CPU and
// heap bytes allocated over all measured creates, and the CPU per group of
// rounds (layerBlocks of them).
type layerResult struct {
	rounds, block int // measured rounds; creates per layer and round
	cpu           map[string]time.Duration
	alloc         map[string]uint64
	groups        map[string][]time.Duration
}

// creates returns how many creates of each layer were measured.
func (r layerResult) creates() int { return r.rounds * r.block }

// groupOf returns the group (0 to layerBlocks-1) measured round r of rounds
// counts towards: consecutive rounds, as evenly as rounds divide.
func groupOf(r, rounds int) int {
	if rounds <= 0 {
		return 0
	}
	return min(r*layerBlocks/rounds, layerBlocks-1)
}

// layers runs layerWarmup rounds and then rounds rounds of block creates
// per layer (see layerNames) on the in-process Item-mode tables. A create
// that does not answer 201 ends the phase with its error.
func layers(ctx context.Context, tables benchTables, rounds, block int) (layerResult, error) {
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
	res := layerResult{block: block, cpu: map[string]time.Duration{}, alloc: map[string]uint64{}, groups: map[string][]time.Duration{}}
	for _, l := range layerNames {
		res.groups[l] = make([]time.Duration, layerBlocks)
	}
	evs := make([]events.APIGatewayV2HTTPRequest, block)
	for round := range layerWarmup + rounds {
		for _, l := range abba(round, layerNames) {
			if err := ctx.Err(); err != nil {
				return res, err
			}
			for i := range evs {
				evs[i] = createEvent(newKey()) // made outside the measured window
			}
			// A deadline, as Lambda gives every invocation one; here one
			// for the whole block, long enough for any of its creates.
			rctx, cancel := context.WithTimeout(ctx, time.Minute)
			c0, a0 := processCPU(), heapAllocs()
			for _, ev := range evs {
				resp, err := handlers[l](rctx, ev)
				if err == nil && resp.StatusCode != http.StatusCreated {
					err = fmt.Errorf("status %d: %s", resp.StatusCode, resp.Body)
				}
				if err != nil {
					cancel()
					return res, fmt.Errorf("%s: %w", l, err)
				}
			}
			d, a := processCPU()-c0, heapAllocs()-a0
			cancel()
			if r := round - layerWarmup; r >= 0 {
				res.cpu[l] += d
				res.alloc[l] += a
				res.groups[l][groupOf(r, rounds)] += d
			}
		}
		if round >= layerWarmup {
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

// heapAllocs returns the bytes this process has allocated on the heap so
// far.
func heapAllocs() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}

// perCreate returns layer l's CPU per measured create.
func (r layerResult) perCreate(l string) time.Duration {
	if r.creates() == 0 {
		return 0
	}
	return r.cpu[l] / time.Duration(r.creates())
}

// ratio returns a's CPU over b's, over every measured create, with the
// lowest and highest ratio of one group of rounds.
func (r layerResult) ratio(a, b string) passRatio {
	if r.creates() == 0 || r.cpu[b] == 0 {
		return passRatio{}
	}
	return bracketed(float64(r.cpu[a])/float64(r.cpu[b]), r.groups[a], r.groups[b])
}

// layersMarkdown writes the layers table, when the phase ran.
func (r report) layersMarkdown(p func(string, ...any)) {
	l := r.layers
	if l.creates() == 0 {
		return
	}
	us := func(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
	p("## Where a create's CPU goes, layer by layer (in process, Item mode)\n\n")
	p("The goal rows above divide our server's CPU per create by a floor's; this says which layers of the function the\n")
	p("difference is made of. Each row is a Lambda handler taking the same payload 2.0 event (a new key each time), and\n")
	p("every row makes one PutItem, on one client, on the Item-mode tables. The floor is that call with none of the\n")
	p("service's work; from the orders handler on, each row adds to the one before it (the handler-alone row's PutItem\n")
	p("carries no record attributes, so it is a little cheaper than the floor's call and the next row's increment\n")
	p("includes them). A round runs %d consecutive creates of each row, rows forwards in the first round and backwards\n", l.block)
	p("in the next, alternately; this process's CPU (getrusage: user and system, every thread) and heap allocations are read around\n")
	p("each block, and nothing else runs meanwhile. %d rounds after %d of warm-up; a range is the lowest and highest\n", l.rounds, layerWarmup)
	p("ratio over %d groups of consecutive rounds. The GC's background work is charged to whichever block runs when it\n", layerBlocks)
	p("does, not to the layer that allocated: the allocation column says which layers make that work. These are CPU\n")
	p("costs while DynamoDB Local runs on the same two cores, several times what the same code costs in a tight Go\n")
	p("benchmark (`go test -bench` keeps its caches warm; a create does not).\n\n")
	p("| layer | CPU per create | heap allocated per create | ÷ floor | over the row above |\n|---|---:|---:|---:|---:|\n")
	for i, n := range layerNames {
		c := l.perCreate(n)
		over := "—"
		if i > 0 {
			prev := layerNames[i-1]
			over = fmt.Sprintf("%+.0f µs (%s)", us(c-l.perCreate(prev)), l.ratio(n, prev))
		}
		p("| %s | %.0f µs | %.1f KiB | %s | %s |\n", n, us(c), float64(l.alloc[n])/float64(l.creates())/1024, l.ratio(n, layerFloor), over)
	}
	p("\n")
}
