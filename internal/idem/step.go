package idem

import "context"

// Step names a point in an attempt where the reliability suite may inject a
// crash (see SetStepHook, built only with the crashtest tag).
type Step int

const (
	StepAcquired  Step = iota + 1 // the lease is held; fn has not run (Lease mode only)
	StepHandled                   // fn returned an outcome to keep; nothing committed yet
	StepCommitted                 // the commit succeeded; Do has not returned
)

func (s Step) String() string {
	switch s {
	case StepAcquired:
		return "acquired"
	case StepHandled:
		return "handled"
	case StepCommitted:
		return "committed"
	}
	return "unknown"
}

// stepHook is nil in production; only SetStepHook (crashtest builds) sets it.
var stepHook func(ctx context.Context, s Step)

func step(ctx context.Context, s Step) {
	if stepHook != nil {
		stepHook(ctx, s)
	}
}
