package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/parcelhq/orderservice/functions/createorder/app"
	"github.com/parcelhq/orderservice/internal/ddb"
	"github.com/parcelhq/orderservice/internal/idem"
	"github.com/parcelhq/orderservice/internal/orders"
)

// benchTables names every table of one run. All names start with a prefix
// unique to the run, so runs (and other engineers' tests) on the same
// DynamoDB Local never share a table.
type benchTables struct {
	prefix       string
	bare         string                // bare PutItem floor
	inprocOrders map[idem.Mode]string  // orders tables in-process (Item mode's records live on its orders)
	inprocIdem   map[idem.Mode]string  // idempotency tables in-process
	sbs          map[string]app.Config // side by side: per system (lease, optimistic, item, powertools, baseline, floor-MODE)
	bootstrap    app.Config
}

func newBenchTables() benchTables {
	p := fmt.Sprintf("bench-%s-%s", time.Now().UTC().Format("20060102T150405"), newKey()[:8])
	t := benchTables{
		prefix:       p,
		bare:         p + "-bare",
		inprocOrders: map[idem.Mode]string{},
		inprocIdem:   map[idem.Mode]string{},
		sbs:          map[string]app.Config{},
		bootstrap:    app.Config{OrdersTable: p + "-lambda-orders", IdempotencyTable: p + "-lambda-idem"},
	}
	for _, m := range ourModes {
		t.inprocOrders[m] = p + "-orders-" + m.String()
		t.inprocIdem[m] = p + "-idem-" + m.String()
	}
	for _, name := range append([]string{"lease", "optimistic", "item", "powertools", "baseline"}, floorNames()...) {
		t.sbs[name] = app.Config{OrdersTable: p + "-" + name + "-orders", IdempotencyTable: p + "-" + name + "-idem"}
	}
	return t
}

// ourModes are the guard modes the bench measures, in the order it reports
// them.
var ourModes = []idem.Mode{idem.Lease, idem.Optimistic, idem.Item}

// defs returns the definitions of every table of the run, ours as
// app.Config.Tables defines them (whatever the mode, the orders table with
// TTL on idem.AttrItemTTL, which Item mode's record-only items carry).
// local/serve creates its own with ddb.EnsureTable too; creating them here
// first is the same call and lets one deferred cleanup delete them all.
func (t benchTables) defs() []ddb.Table {
	defs := []ddb.Table{{Name: t.bare, PartitionKey: "id"}}
	for _, m := range ourModes {
		defs = append(defs, t.inprocConfig(m).Tables()...)
	}
	for name, cfg := range t.sbs {
		if name == "powertools" {
			// Powertools' DynamoDB persistence layer: key "id", TTL "expiration".
			defs = append(defs, orders.TableDefinition(cfg.OrdersTable), ddb.Table{Name: cfg.IdempotencyTable, PartitionKey: "id", TTLAttribute: "expiration"})
			continue
		}
		defs = append(defs, cfg.Tables()...)
	}
	defs = append(defs, t.bootstrap.Tables()...)
	return defs
}

// inprocConfig is the configuration of the in-process handlers in mode m.
func (t benchTables) inprocConfig(m idem.Mode) app.Config {
	return app.Config{OrdersTable: t.inprocOrders[m], IdempotencyTable: t.inprocIdem[m], Retention: idem.DefaultRetention, Mode: m, LogLevel: "INFO", AuthMode: app.AuthNone}
}

func (t benchTables) create(ctx context.Context, api *dynamodb.Client) error {
	for _, d := range t.defs() {
		if err := ddb.EnsureTable(ctx, api, d); err != nil {
			return err
		}
	}
	return nil
}

// drop deletes every table of the run, whether or not it was created.
func (t benchTables) drop(ctx context.Context, api *dynamodb.Client) error {
	var errs []error
	for _, d := range t.defs() {
		if err := ddb.DeleteTable(ctx, api, d.Name); err != nil {
			errs = append(errs, fmt.Errorf("delete table %s: %w", d.Name, err))
		}
	}
	return errors.Join(errs...)
}

// floorNames are the sbs names of the floor servers' tables.
func floorNames() []string {
	var n []string
	for _, m := range floorModes {
		n = append(n, "floor-"+m)
	}
	return n
}
