package idem

import (
	"context"
	"encoding/json"
	"fmt"
)

// Run is Do for work that is not an HTTP request (an SQS record, a job): it
// runs fn at most once per (req.Scope, req.Key) on g's table and protocol and
// returns its value, or the stored value of the attempt that ran it with
// replayed set. The value is stored JSON-encoded, so T must survive a JSON
// round trip; a value that does not encode is an error and nothing is
// stored. fn's error is returned (wrapped) and never stored: the lease is
// released and a retry runs fn again. Other errors are Do's.
func Run[T any](ctx context.Context, g *Guard, req Request, fn func(ctx context.Context) (T, error)) (v T, replayed bool, err error) {
	res, err := g.Do(ctx, req, func(ctx context.Context) (Outcome, error) {
		v, err := fn(ctx)
		if err != nil {
			return Outcome{}, err
		}
		b, err := json.Marshal(v)
		if err != nil {
			return Outcome{}, fmt.Errorf("idem: encode result: %w", err)
		}
		return Outcome{Response: b, Keep: true}, nil
	})
	if err != nil {
		return v, false, err
	}
	if err := json.Unmarshal(res.Response, &v); err != nil {
		return v, res.Replayed, fmt.Errorf("idem: decode stored result: %w", err)
	}
	return v, res.Replayed, nil
}
