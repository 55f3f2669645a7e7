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
)

// benchTables names every table of one run. All names start with a prefix
// unique to the run, so runs (and other engineers' tests) on the same
// DynamoDB Local never share a table.
type benchTables struct {
	prefix       string
	bare         string               // bare PutItem floor
	inprocOrders string               // orders written in-process
	inprocIdem   map[idem.Mode]string // idempotency tables in-process
	serve        map[idem.Mode]app.Config
	bootstrap    app.Config
}

func newBenchTables() benchTables {
	p := fmt.Sprintf("bench-%s-%s", time.Now().UTC().Format("20060102T150405"), newKey()[:8])
	t := benchTables{
		prefix:       p,
		bare:         p + "-bare",
		inprocOrders: p + "-orders",
		inprocIdem:   map[idem.Mode]string{idem.Lease: p + "-idem-lease", idem.Optimistic: p + "-idem-optimistic"},
		serve:        map[idem.Mode]app.Config{},
		bootstrap:    app.Config{OrdersTable: p + "-lambda-orders", IdempotencyTable: p + "-lambda-idem"},
	}
	for mode, name := range map[idem.Mode]string{idem.Lease: "lease", idem.Optimistic: "optimistic"} {
		t.serve[mode] = app.Config{OrdersTable: p + "-serve-" + name + "-orders", IdempotencyTable: p + "-serve-" + name + "-idem"}
	}
	return t
}

// defs returns the definitions of every table of the run. local/serve creates
// its own with ddb.EnsureTable too; creating them here first is the same
// call and lets one deferred cleanup delete them all.
func (t benchTables) defs() []ddb.Table {
	defs := []ddb.Table{{Name: t.bare, PartitionKey: "id"}}
	defs = append(defs, app.Config{OrdersTable: t.inprocOrders, IdempotencyTable: t.inprocIdem[idem.Lease]}.Tables()...)
	defs = append(defs, idem.TableDefinition(t.inprocIdem[idem.Optimistic]))
	defs = append(defs, t.serve[idem.Lease].Tables()...)
	defs = append(defs, t.serve[idem.Optimistic].Tables()...)
	defs = append(defs, t.bootstrap.Tables()...)
	return defs
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
