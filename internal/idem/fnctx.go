package idem

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// withFnTimeout is context.WithTimeout(parent, d) for fn's context, without
// arming a timer until something needs one.
//
// To every caller the context it returns is the one WithTimeout would have
// returned: Deadline reports the earlier of now+d and parent's deadline; Done
// is closed at that deadline, when parent is done or when cancel is called;
// Err and context.Cause report why once it is, nil before. The difference is
// cost: WithTimeout arms a timer at once, and arming one that is due before
// the runtime's network poller would wake wakes the poller (a system call and
// a thread switch, on every request at low load), while a create's fn usually
// never waits on its context. This one arms its timer the first time Done is
// called (something is about to wait) or when Err or Value is asked after the
// deadline passed or cancel was called; until then it costs a clock read on
// Err and Value.
//
// cancel releases the timer if one was armed, and ends the context as
// WithTimeout's cancel does; like it, it may be called more than once.
func withFnTimeout(parent context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	c := &fnCtx{parent: parent, deadline: time.Now().Add(d)}
	if pd, ok := parent.Deadline(); ok && pd.Before(c.deadline) {
		c.deadline = pd
	}
	return c, c.cancel
}

// fnCtx is withFnTimeout's context.
type fnCtx struct {
	parent   context.Context
	deadline time.Time
	armed    atomic.Pointer[context.Context] // the WithDeadline context, once made

	mu       sync.Mutex // guards making armed, and cancelled with it
	cancelFn context.CancelFunc
	canceled bool
}

// arm returns the WithDeadline context standing for c, making it (and its
// timer) the first time; it is cancelled at once when c's cancel was called.
func (c *fnCtx) arm() context.Context {
	if a := c.armed.Load(); a != nil {
		return *a
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if a := c.armed.Load(); a != nil {
		return *a
	}
	ctx, cancel := context.WithDeadline(c.parent, c.deadline)
	c.cancelFn = cancel
	if c.canceled {
		cancel()
	}
	c.armed.Store(&ctx)
	return ctx
}

// settled returns the context that answers for c now: the armed one when
// there is one or c has ended by its own deadline or cancel (so that Err and
// Cause say so), else nil, and parent answers.
func (c *fnCtx) settled() context.Context {
	if a := c.armed.Load(); a != nil {
		return *a
	}
	c.mu.Lock()
	canceled := c.canceled
	c.mu.Unlock()
	if canceled || !time.Now().Before(c.deadline) {
		return c.arm()
	}
	return nil
}

func (c *fnCtx) cancel() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.canceled = true
	if c.cancelFn != nil {
		c.cancelFn()
	}
}

func (c *fnCtx) Deadline() (time.Time, bool) { return c.deadline, true }

func (c *fnCtx) Done() <-chan struct{} { return c.arm().Done() }

func (c *fnCtx) Err() error {
	if s := c.settled(); s != nil {
		return s.Err()
	}
	return c.parent.Err()
}

// Value is parent's value for key, except for the keys by which package
// context finds a cancelled context's cause: once c has ended, the armed
// context answers them, so context.Cause(c) is c's cause.
func (c *fnCtx) Value(key any) any {
	if s := c.settled(); s != nil {
		return s.Value(key)
	}
	return c.parent.Value(key)
}
