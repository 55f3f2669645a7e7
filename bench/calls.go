package main

import (
	"context"
	"sort"
	"sync"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go/middleware"
)

// callCounter counts the DynamoDB operations a client makes, per operation
// name, plus the HTTP attempts they took and the capacity units DynamoDB
// reported. An operation is counted once in the Initialize step, before the
// SDK's retries; an attempt once per try in the Finalize step, after the
// retry middleware. The Initialize middleware also sets
// ReturnConsumedCapacity=TOTAL on every item write and read and adds up the
// ConsumedCapacity of the answers (a failed condition or a cancelled
// transaction reports none). It is safe for concurrent use.
//
// internal/idem's BenchmarkGuard counts the same way (total only); if a
// third user appears this belongs in a shared package (internal/ddb).
type callCounter struct {
	mu       sync.Mutex
	ops      map[string]int64
	attempts int64
	wcu, rcu float64
}

func newCallCounter() *callCounter { return &callCounter{ops: map[string]int64{}} }

// register is a dynamodb.Options.APIOptions entry. The stack's ID is the
// operation name (PutItem, TransactWriteItems, ...).
func (c *callCounter) register(stack *middleware.Stack) error {
	op := stack.ID()
	if err := stack.Initialize.Add(middleware.InitializeMiddlewareFunc("benchCountCalls",
		func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
			askCapacity(in.Parameters)
			c.mu.Lock()
			c.ops[op]++
			c.mu.Unlock()
			out, md, err := next.HandleInitialize(ctx, in)
			if w, r := consumed(out.Result); w+r > 0 {
				c.mu.Lock()
				c.wcu += w
				c.rcu += r
				c.mu.Unlock()
			}
			return out, md, err
		}), middleware.Before); err != nil {
		return err
	}
	return stack.Finalize.Add(middleware.FinalizeMiddlewareFunc("benchCountAttempts",
		func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
			c.mu.Lock()
			c.attempts++
			c.mu.Unlock()
			return next.HandleFinalize(ctx, in)
		}), middleware.After)
}

// askCapacity sets ReturnConsumedCapacity=TOTAL on a DynamoDB item
// operation's input.
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
func consumed(result any) (wcu, rcu float64) {
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
			wcu += units(&out.ConsumedCapacity[i])
		}
		return wcu, 0
	case *dynamodb.GetItemOutput:
		return 0, units(out.ConsumedCapacity)
	}
	return 0, 0
}

// calls is a snapshot of a callCounter, or a difference of two.
type calls struct {
	ops      map[string]int64
	attempts int64
	wcu, rcu float64
}

func (c *callCounter) snapshot() calls {
	c.mu.Lock()
	defer c.mu.Unlock()
	ops := make(map[string]int64, len(c.ops))
	for k, v := range c.ops {
		ops[k] = v
	}
	return calls{ops: ops, attempts: c.attempts, wcu: c.wcu, rcu: c.rcu}
}

// since returns the calls made between earlier and c.
func (c calls) since(earlier calls) calls {
	d := calls{ops: map[string]int64{}, attempts: c.attempts - earlier.attempts, wcu: c.wcu - earlier.wcu, rcu: c.rcu - earlier.rcu}
	for k, v := range c.ops {
		if n := v - earlier.ops[k]; n != 0 {
			d.ops[k] = n
		}
	}
	return d
}

// add accumulates d into c.
func (c *calls) add(d calls) {
	if c.ops == nil {
		c.ops = map[string]int64{}
	}
	for k, v := range d.ops {
		c.ops[k] += v
	}
	c.attempts += d.attempts
	c.wcu += d.wcu
	c.rcu += d.rcu
}

func (c calls) total() int64 {
	var n int64
	for _, v := range c.ops {
		n += v
	}
	return n
}

// opNames returns the operation names in any of cs, sorted.
func opNames(cs ...calls) []string {
	seen := map[string]bool{}
	var names []string
	for _, c := range cs {
		for k := range c.ops {
			if !seen[k] {
				seen[k] = true
				names = append(names, k)
			}
		}
	}
	sort.Strings(names)
	return names
}
