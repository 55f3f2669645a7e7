// Package ddbmeter counts what a DynamoDB client does, for benchmarks and
// tests that assert or report calls rather than assume them: operations by
// name, the HTTP attempts they took, and the capacity units DynamoDB
// reported for them.
//
//	m := ddbmeter.New()
//	client, err := ddb.NewClient(ctx, func(o *dynamodb.Options) {
//		o.APIOptions = append(o.APIOptions, m.Register)
//	})
//	before := m.Snapshot()
//	// ... calls ...
//	made := m.Snapshot().Since(before)
//
// It counts what reaches the SDK; a wrapper in front of the client (a fault
// injected above it) is not seen.
package ddbmeter

import (
	"context"
	"maps"
	"sync"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go/middleware"
)

// Meter counts the operations of every client it is registered on. It is
// safe for concurrent use.
type Meter struct {
	mu sync.Mutex
	c  Calls
}

// New returns a Meter that has counted nothing.
func New() *Meter { return &Meter{c: Calls{Ops: map[string]int64{}}} }

// Register is a dynamodb.Options.APIOptions entry. It counts an operation
// once, by its name (PutItem, TransactWriteItems, ...), in the Initialize
// step, before the SDK's retries, whether it succeeds or fails; and an
// attempt once per try, in the Finalize step, after the retry middleware. It
// sets ReturnConsumedCapacity=TOTAL on every item read and write (GetItem,
// PutItem, UpdateItem, DeleteItem, TransactWriteItems) and adds up the
// ConsumedCapacity of their answers: a failed condition or a cancelled
// transaction answers with none, so it adds nothing (AWS still bills a
// failed conditional write). Setting ReturnConsumedCapacity changes the
// caller's input and overrides what the caller asked for there. Its two
// middleware have fixed IDs: registering it twice on one client, or two
// Meters on one client, makes every operation fail.
func (m *Meter) Register(stack *middleware.Stack) error {
	op := stack.ID()
	if err := stack.Initialize.Add(middleware.InitializeMiddlewareFunc("ddbmeterOperations",
		func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
			askCapacity(in.Parameters)
			m.mu.Lock()
			m.c.Ops[op]++
			m.mu.Unlock()
			out, md, err := next.HandleInitialize(ctx, in)
			if w, r := consumed(out.Result); w+r > 0 {
				m.mu.Lock()
				m.c.WriteUnits += w
				m.c.ReadUnits += r
				m.mu.Unlock()
			}
			return out, md, err
		}), middleware.Before); err != nil {
		return err
	}
	return stack.Finalize.Add(middleware.FinalizeMiddlewareFunc("ddbmeterAttempts",
		func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
			m.mu.Lock()
			m.c.Attempts++
			m.mu.Unlock()
			return next.HandleFinalize(ctx, in)
		}), middleware.After)
}

// Snapshot returns what m has counted so far.
func (m *Meter) Snapshot() Calls {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := m.c
	c.Ops = maps.Clone(m.c.Ops)
	return c
}

// Calls is what a Meter counted, or the difference of two of its
// snapshots.
type Calls struct {
	Ops                   map[string]int64 // by operation name
	Attempts              int64            // HTTP attempts, retries included
	WriteUnits, ReadUnits float64          // as DynamoDB reported them
}

// Since returns what was counted between earlier and c; an operation whose
// count did not change is absent.
func (c Calls) Since(earlier Calls) Calls {
	d := Calls{Ops: map[string]int64{}, Attempts: c.Attempts - earlier.Attempts,
		WriteUnits: c.WriteUnits - earlier.WriteUnits, ReadUnits: c.ReadUnits - earlier.ReadUnits}
	for k, v := range c.Ops {
		if n := v - earlier.Ops[k]; n != 0 {
			d.Ops[k] = n
		}
	}
	return d
}

// Add adds d to c.
func (c *Calls) Add(d Calls) {
	if c.Ops == nil {
		c.Ops = map[string]int64{}
	}
	for k, v := range d.Ops {
		c.Ops[k] += v
	}
	c.Attempts += d.Attempts
	c.WriteUnits += d.WriteUnits
	c.ReadUnits += d.ReadUnits
}

// Total returns the operations of every name.
func (c Calls) Total() int64 {
	var n int64
	for _, v := range c.Ops {
		n += v
	}
	return n
}

// askCapacity sets ReturnConsumedCapacity=TOTAL on an item operation's
// input.
func askCapacity(params any) {
	const total = types.ReturnConsumedCapacityTotal
	switch in := params.(type) {
	case *dynamodb.PutItemInput:
		in.ReturnConsumedCapacity = total
	case *dynamodb.UpdateItemInput:
		in.ReturnConsumedCapacity = total
	case *dynamodb.DeleteItemInput:
		in.ReturnConsumedCapacity = total
	case *dynamodb.TransactWriteItemsInput:
		in.ReturnConsumedCapacity = total
	case *dynamodb.GetItemInput:
		in.ReturnConsumedCapacity = total
	}
}

// consumed returns the write and read capacity units an operation's output
// reports.
func consumed(result any) (write, read float64) {
	units := func(c *types.ConsumedCapacity) float64 {
		if c == nil || c.CapacityUnits == nil {
			return 0
		}
		return *c.CapacityUnits
	}
	switch out := result.(type) {
	case *dynamodb.PutItemOutput:
		return units(out.ConsumedCapacity), 0
	case *dynamodb.UpdateItemOutput:
		return units(out.ConsumedCapacity), 0
	case *dynamodb.DeleteItemOutput:
		return units(out.ConsumedCapacity), 0
	case *dynamodb.TransactWriteItemsOutput:
		for i := range out.ConsumedCapacity {
			write += units(&out.ConsumedCapacity[i])
		}
		return write, 0
	case *dynamodb.GetItemOutput:
		return 0, units(out.ConsumedCapacity)
	}
	return 0, 0
}
