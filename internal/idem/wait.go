package idem

import (
	"context"
	"time"
)

// patience is what an attempt has left of Config.Wait, the longest it waits
// for the key. Wait is measured twice, on Config.Now and on the pauses the
// attempt makes (real time), and is over when either says so: a clock that
// stands still or runs slow (a test's virtual clock) cannot stretch it, and
// on the real clock, which passes at least as fast as the pauses, it is
// Wait as Config.Now tells it. A patience is used by one attempt at a time.
type patience struct {
	now   func() time.Time
	until time.Time     // by Config.Now
	sleep time.Duration // real time of the pauses left
}

// patience returns the patience of an attempt that starts waiting now.
func (g *Guard) patience() *patience {
	return &patience{now: g.cfg.Now, until: g.cfg.Now().Add(g.cfg.Wait), sleep: g.cfg.Wait}
}

// pause waits for d, or for what is left of Wait when that is less, and
// reports whether the attempt may look at the key again: false at once when
// Wait is over, and false when ctx ends first.
func (p *patience) pause(ctx context.Context, d time.Duration) bool {
	d = min(d, p.until.Sub(p.now()), p.sleep)
	if d <= 0 {
		return false
	}
	p.sleep -= d
	return sleep(ctx, d)
}

// sleep waits for d and reports whether ctx was still live when it ended.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
