// Package rie runs a Lambda function's bootstrap binary the way Lambda does,
// on this machine: under the real AWS Lambda Runtime Interface Emulator
// (aws-lambda-rie, pinned in tools/go.mod), in a pool of execution
// environments.
//
// Each environment is one aws-lambda-rie process with the bootstrap as its
// runtime: its own memory (so whatever the function caches in process is per
// environment, as in AWS), its own Runtime API and invoke address on free
// 127.0.0.1 ports. As in Lambda, an environment serves one invocation at a
// time; an invocation that finds every environment busy starts a new one
// (a cold start, logged with its init duration) up to Options.Max; idle
// environments are reused warm. An invocation that finds Max environments
// busy waits for one to come free for up to Options.QueueWait (or until its
// context ends) and is then throttled, as Lambda throttles invocations
// beyond a function's reserved concurrency: it fails with ErrThrottled.
// An environment whose invocation failed in the runtime (crash, init
// failure, timeout, an answer that is not a response) is shut down, as
// Lambda resets it; the next invocation gets a fresh one. So is an idle
// environment whose runtime exits (the emulator reports it): the next
// invocation does not inherit the crash.
//
// The emulator runs on Linux only (it starts the runtime in its own process
// group); Supported reports whether this is such a machine.
package rie

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambdacontext"
)

// DefaultMax is the default limit on a pool's environments: a small
// reserved concurrency, enough to see concurrent requests land on different
// environments on a laptop.
const DefaultMax = 4

// Supported reports whether the emulator runs on this machine (Linux).
func Supported() bool { return runtime.GOOS == "linux" }

// ErrClosed is returned by Invoke once Close has been called.
var ErrClosed = errors.New("rie: pool closed")

// ErrThrottled is what Invoke's error matches (errors.Is) when the
// invocation was refused for want of a free environment: Lambda's throttle.
// The error also has the AWS SDK's API error methods (ErrorCode
// "TooManyRequestsException", ErrorMessage, ErrorFault), as the Lambda
// Invoke API's 429 has.
var ErrThrottled = errors.New("rie: throttled: every environment busy")

// throttleError is Lambda's 429 TooManyRequestsException for a function at
// its concurrency limit.
type throttleError struct {
	max    int
	waited time.Duration
	cause  error // the context's error when the wait ended with it
}

func (e *throttleError) Error() string {
	msg := fmt.Sprintf("rie: throttled (TooManyRequestsException): all %d environments busy for %s", e.max, e.waited.Round(time.Millisecond))
	if e.cause != nil {
		msg += ": " + e.cause.Error()
	}
	return msg
}
func (e *throttleError) Unwrap() []error {
	if e.cause != nil {
		return []error{ErrThrottled, e.cause}
	}
	return []error{ErrThrottled}
}
func (e *throttleError) ErrorCode() string { return "TooManyRequestsException" }
func (e *throttleError) ErrorMessage() string {
	return "Rate Exceeded. (ReservedFunctionConcurrentInvocationLimitExceeded)"
}
func (e *throttleError) ErrorFault() int { return 1 } // smithy.FaultClient

// Options configures a Pool.
type Options struct {
	// RIE is the path of the aws-lambda-rie binary; Bootstrap that of the
	// function's bootstrap (built for this machine). Both are required.
	RIE, Bootstrap string
	// FunctionName names the function (AWS_LAMBDA_FUNCTION_NAME; default
	// "function"). Handler is _HANDLER (default "bootstrap").
	FunctionName, Handler string
	// Timeout is the function timeout (default 3s, SAM's); MemoryMB its
	// configured memory (default 128), reported to the function.
	Timeout  time.Duration
	MemoryMB int
	// Env is the function's environment, KEY=VALUE; nothing else of this
	// process's environment reaches it. The pool adds what Lambda defines
	// (AWS_LAMBDA_FUNCTION_NAME, AWS_REGION, TZ, ...) unless Env sets it.
	Env []string
	// Max limits the number of environments (default DefaultMax).
	Max int
	// QueueWait bounds how long an invocation that finds Max environments
	// busy (or starting) waits for one to come free before it is throttled
	// (ErrThrottled). 0: as long as the invocation's context allows (then it
	// is throttled too); negative: not at all, as Lambda throttles an
	// invocation beyond a function's reserved concurrency at once.
	QueueWait time.Duration
	// Logger receives the pool's records: environment started (cold start,
	// with init duration), one per invocation (environment, request id,
	// duration), environment stopped (default slog.Default()).
	Logger *slog.Logger
	// Output receives the function's own output (its stdout and stderr),
	// line by line, as CloudWatch Logs would (default os.Stdout).
	Output io.Writer
}

// Pool is a pool of execution environments of one function. It is safe for
// concurrent use.
type Pool struct {
	opts  Options
	out   *lineWriter
	addrs addrPicker    // the ports of a new environment (tests replace it)
	stop  chan struct{} // closed by Close: environments being started give up

	mu       sync.Mutex
	idle     []*environment // most recently used last
	all      map[*environment]bool
	starting int            // environments being started, counted against Max
	started  sync.WaitGroup // one per environment being started; Close waits
	nextID   int
	closed   bool
	freed    chan struct{} // closed and replaced whenever an environment comes free or goes
}

// NewPool returns a pool with no environment started yet: the first
// invocation is a cold start. It fails when RIE or Bootstrap is not an
// executable file, and on a machine where Supported is false.
func NewPool(opts Options) (*Pool, error) {
	if !Supported() {
		return nil, fmt.Errorf("rie: the Lambda Runtime Interface Emulator runs on linux only; this is %s", runtime.GOOS)
	}
	for _, f := range []struct{ name, path string }{{"RIE", opts.RIE}, {"Bootstrap", opts.Bootstrap}} {
		if f.path == "" {
			return nil, fmt.Errorf("rie: Options.%s is empty", f.name)
		}
		fi, err := os.Stat(f.path)
		if err != nil {
			return nil, fmt.Errorf("rie: %s: %w", f.name, err)
		}
		if fi.IsDir() || fi.Mode()&0o111 == 0 {
			return nil, fmt.Errorf("rie: %s %s is not an executable file", f.name, f.path)
		}
	}
	if opts.FunctionName == "" {
		opts.FunctionName = "function"
	}
	if opts.Handler == "" {
		opts.Handler = "bootstrap"
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 3 * time.Second
	}
	if opts.MemoryMB <= 0 {
		opts.MemoryMB = 128
	}
	if opts.Max <= 0 {
		opts.Max = DefaultMax
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Output == nil {
		opts.Output = os.Stdout
	}
	return &Pool{
		opts: opts, out: &lineWriter{w: opts.Output}, addrs: freeAddrs, stop: make(chan struct{}),
		all: map[*environment]bool{}, freed: make(chan struct{}),
	}, nil
}

// Max is the pool's limit on environments.
func (p *Pool) Max() int { return p.opts.Max }

// Invoke runs one invocation with payload (the event's JSON) in a free
// environment, starting one if none is free and fewer than Max exist, else
// waiting for one. requestID is the Lambda request id the function sees
// (empty: the pool makes one). It returns the function's response payload;
// an error when no environment could be had before ctx ended, when an
// environment could not start, or when the invocation failed in the runtime
// (the function crashed, failed init, timed out, or answered with an error),
// in which case the environment is shut down. ctx bounds the wait for an
// environment; once invoked, the invocation runs to the function timeout
// whatever ctx does, as in Lambda.
//
// An invocation is never sent twice, with one exception that cannot run the
// function twice: when a warm environment's runtime had exited before the
// emulator began the invocation (its log says so, in that order), the event
// never reached the function, and it is sent once more, to another
// environment.
func (p *Pool) Invoke(ctx context.Context, requestID string, payload []byte) ([]byte, error) {
	if requestID == "" {
		requestID = newRequestID()
	}
	for attempt := 0; ; attempt++ {
		env, err := p.acquire(ctx)
		if err != nil {
			return nil, err
		}
		cold := env.invocations == 0
		start := time.Now()
		out, err := env.invoke(requestID, payload, p.opts.Timeout)
		took := time.Since(start)
		env.invocations++
		attrs := []any{"environment", env.id, "request_id", requestID, "cold_start", cold, "duration_ms", ms(took)}
		if cold {
			attrs = append(attrs, "init_duration_ms", ms(env.initDuration(100*time.Millisecond)), "start_ms", ms(env.startTook))
		}
		if err == nil {
			p.opts.Logger.Info("invocation", attrs...)
			p.release(env)
			return out, nil
		}
		notRun := !cold && attempt == 0 && env.exitedBeforeInvoke(requestID, time.Second)
		if notRun {
			p.opts.Logger.Warn("invocation not delivered: the runtime had exited; environment shut down, sending it to another", append(attrs, "err", err.Error())...)
			p.drop(env, "runtime exited before the invocation")
			continue
		}
		p.opts.Logger.Warn("invocation failed; environment shut down", append(attrs, "err", err.Error())...)
		p.drop(env, "invocation failed")
		return nil, err
	}
}

// Handler returns a Lambda handler for API Gateway HTTP API events (the
// signature of local/apigw.Handler) that invokes the function in the pool:
// the event goes to the function as JSON, as API Gateway sends it, with the
// request id of ctx's lambdacontext (if any) as the Lambda request id. A
// failed invocation, or an answer that is a Lambda error payload or not an
// API Gateway v2 response, is an error.
func (p *Pool) Handler() func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	return func(ctx context.Context, ev events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
		var resp events.APIGatewayV2HTTPResponse
		payload, err := json.Marshal(ev)
		if err != nil {
			return resp, err
		}
		var requestID string
		if lc, ok := lambdacontext.FromContext(ctx); ok {
			requestID = lc.AwsRequestID
		}
		out, err := p.Invoke(ctx, requestID, payload)
		if err != nil {
			return resp, err
		}
		var fnErr struct {
			Message *string `json:"errorMessage"`
			Type    string  `json:"errorType"`
		}
		if json.Unmarshal(out, &fnErr) == nil && fnErr.Message != nil {
			return resp, fmt.Errorf("rie: function error %s: %s", fnErr.Type, *fnErr.Message)
		}
		if err := json.Unmarshal(out, &resp); err != nil {
			return resp, fmt.Errorf("rie: the function's answer is not an API Gateway v2 response: %w: %.200s", err, out)
		}
		return resp, nil
	}
}

// Close shuts every environment down (invocations in flight fail), including
// those being started, and makes further invocations fail with ErrClosed. It
// returns once every emulator the pool started has exited.
func (p *Pool) Close() error {
	p.mu.Lock()
	if !p.closed {
		p.closed = true
		close(p.stop)
	}
	envs := make([]*environment, 0, len(p.all))
	for e := range p.all {
		envs = append(envs, e)
	}
	p.all = map[*environment]bool{}
	p.idle = nil
	p.wakeLocked()
	p.mu.Unlock()
	var wg sync.WaitGroup
	for _, e := range envs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e.stop()
			p.opts.Logger.Info("environment stopped", "environment", e.id, "reason", "pool closed")
		}()
	}
	wg.Wait()
	p.started.Wait() // no Add after closed is set: acquire checks it under mu
	return nil
}

// Environments returns the number of environments started and not stopped
// (not counting those still starting).
func (p *Pool) Environments() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.all)
}

// acquire returns an idle environment (the most recently used), or a new one
// when none is idle and fewer than Max exist or are starting, or waits for
// one for up to QueueWait or until ctx ends, then fails with a
// throttleError.
func (p *Pool) acquire(ctx context.Context) (*environment, error) {
	began := time.Now()
	var queued <-chan time.Time
	if p.opts.QueueWait != 0 {
		t := time.NewTimer(max(p.opts.QueueWait, 0))
		defer t.Stop()
		queued = t.C
	}
	for {
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			return nil, ErrClosed
		}
		for len(p.idle) > 0 {
			e := p.idle[len(p.idle)-1]
			p.idle = p.idle[:len(p.idle)-1]
			if e.runtimeAlive() {
				p.mu.Unlock()
				return e, nil
			}
			// Its runtime or emulator exited while idle; watch drops it
			// too, whichever gets there first.
			delete(p.all, e)
			go p.stopIdle(e)
		}
		if len(p.all)+p.starting < p.opts.Max {
			p.nextID++
			id := "env-" + strconv.Itoa(p.nextID)
			p.starting++
			p.started.Add(1)
			p.mu.Unlock()
			return p.start(id)
		}
		freed := p.freed
		p.mu.Unlock()
		select {
		case <-freed:
		case <-queued:
			return nil, &throttleError{max: p.opts.Max, waited: time.Since(began)}
		case <-ctx.Done():
			return nil, &throttleError{max: p.opts.Max, waited: time.Since(began), cause: ctx.Err()}
		}
	}
}

// start starts environment id, which acquire has counted in p.starting and
// p.started, and returns it to the caller, busy.
func (p *Pool) start(id string) (*environment, error) {
	defer p.started.Done()
	e, err := startEnvironment(id, p.opts, p.out, p.addrs, p.stop)
	p.mu.Lock()
	p.starting--
	closed := p.closed
	if err == nil && !closed {
		p.all[e] = true
	}
	p.wakeLocked()
	p.mu.Unlock()
	switch {
	case errors.Is(err, ErrClosed):
		return nil, ErrClosed
	case err != nil:
		p.opts.Logger.Error("environment failed to start", "environment", id, "err", err.Error())
		return nil, err
	case closed:
		e.stop() // before started.Done: Close waits for it
		return nil, ErrClosed
	}
	p.opts.Logger.Info("environment started", "environment", id, "pid", e.pid(), "invoke_address", e.addr, "start_ms", ms(e.startTook))
	go p.watch(e)
	return e, nil
}

// watch drops e should its runtime or its emulator exit while it is idle.
// (While it is busy, the invocation fails and Invoke drops it.)
func (p *Pool) watch(e *environment) {
	select {
	case <-e.runtimeExited:
	case <-e.exited:
	}
	p.mu.Lock()
	for i, x := range p.idle {
		if x == e {
			p.idle = append(p.idle[:i], p.idle[i+1:]...)
			delete(p.all, e)
			p.wakeLocked()
			p.mu.Unlock()
			p.stopIdle(e)
			return
		}
	}
	p.mu.Unlock()
}

func (p *Pool) stopIdle(e *environment) {
	e.stop()
	p.opts.Logger.Warn("environment stopped", "environment", e.id, "reason", "its runtime exited while idle", "invocations", e.invocations)
}

func (p *Pool) release(e *environment) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || !p.all[e] {
		return
	}
	p.idle = append(p.idle, e)
	p.wakeLocked()
}

func (p *Pool) drop(e *environment, reason string) {
	p.mu.Lock()
	delete(p.all, e)
	p.wakeLocked()
	p.mu.Unlock()
	e.stop()
	p.opts.Logger.Info("environment stopped", "environment", e.id, "reason", reason, "invocations", e.invocations)
}

func (p *Pool) wakeLocked() {
	close(p.freed)
	p.freed = make(chan struct{})
}

// newRequestID returns a random (version 4) UUID, the shape of Lambda's
// request ids.
func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	s := hex.EncodeToString(b[:])
	return s[0:8] + "-" + s[8:12] + "-" + s[12:16] + "-" + s[16:20] + "-" + s[20:]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
