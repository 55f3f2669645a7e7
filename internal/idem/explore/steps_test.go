//go:build explore && crashtest

package explore

import (
	"context"

	"github.com/parcelhq/orderservice/internal/idem"
)

// With the crashtest tag (make explore and make test build with it), an
// Item-mode attempt also stops for the scheduler at idem's steps,
// StepHandled (fn returned, nothing put yet) and StepCommitted (the put
// landed, Do has not returned), where it may crash. The other modes' steps
// are the points before and after their calls already, so they are left out
// and their schedules stay as they were.
func init() {
	stepPoints = true
	idem.SetStepHook(func(ctx context.Context, st idem.Step) {
		p, _ := ctx.Value(procKey{}).(*proc)
		if p == nil || p.s.cfg.mode != idem.Item {
			return
		}
		if p.at(point{kind: pStep, op: st.String()}) == fCrash {
			p.die() // every later call of the attempt fails unsent: it touches nothing
		}
	})
}
