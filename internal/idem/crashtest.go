//go:build crashtest

package idem

import "context"

// SetStepHook installs h to be called at each Step of every attempt (nil
// removes it). It exists only in builds with the crashtest tag, for the
// reliability suite: h may panic, call runtime.Goexit or block to simulate a
// crash at that point. It must not be called while a Do is running.
func SetStepHook(h func(ctx context.Context, s Step)) { stepHook = h }
