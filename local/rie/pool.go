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
// environments are reused warm. Unlike Lambda, which throttles invocations
// beyond a function's reserved concurrency, an invocation that finds Max
// environments busy waits for one to come free (until its context ends).
// An environment whose invocation failed in the runtime (crash, init
// failure, timeout, an answer that is not a response) is shut down, as
// Lambda resets it; the next invocation gets a fresh one.
//
// The emulator runs on Linux only (it starts the runtime in its own process
// group); Supported reports whether this is such a machine.
package rie

import (
	"context"
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
	opts Options
	out  *lineWriter

	mu     sync.Mutex
	idle   []*environment // most recently used last
	all    map[*environment]bool
	nextID int
	closed bool
	freed  chan struct{} // closed and replaced whenever an environment comes free or goes
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
	return &Pool{opts: opts, out: &lineWriter{w: opts.Output}, all: map[*environment]bool{}, freed: make(chan struct{})}, nil
}

// Max is the pool's limit on environments.
func (p *Pool) Max() int { return p.opts.Max }

// Invoke runs one invocation with payload (the event's JSON) in a free
// environment, starting one if none is free and fewer than Max exist, else
// waiting for one. requestID is the Lambda request id the function sees
// (empty: the emulator makes one). It returns the function's response
// payload; an error when no environment could be had before ctx ended, when
// an environment could not start, or when the invocation failed in the
// runtime (the function crashed, failed init, timed out, or answered with an
// error), in which case the environment is shut down. ctx bounds the wait
// for an environment; once invoked, the invocation runs to the function
// timeout whatever ctx does, as in Lambda.
func (p *Pool) Invoke(ctx context.Context, requestID string, payload []byte) ([]byte, error) {
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
	if err != nil {
		p.opts.Logger.Warn("invocation failed; environment shut down", append(attrs, "err", err.Error())...)
		p.drop(env)
		return nil, err
	}
	p.opts.Logger.Info("invocation", attrs...)
	p.release(env)
	return out, nil
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

// Close shuts every environment down (invocations in flight fail) and makes
// further invocations fail with ErrClosed. It waits until the processes
// have exited.
func (p *Pool) Close() error {
	p.mu.Lock()
	p.closed = true
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
		if e.cmd == nil {
			continue // still starting: acquire stops it when it sees the pool closed
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			e.stop()
			p.opts.Logger.Info("environment stopped", "environment", e.id, "reason", "pool closed")
		}()
	}
	wg.Wait()
	return nil
}

// Environments returns the number of environments alive now.
func (p *Pool) Environments() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.all)
}

// acquire returns an idle environment (the most recently used), or a new one
// when none is idle and fewer than Max exist, or waits for one until ctx ends.
func (p *Pool) acquire(ctx context.Context) (*environment, error) {
	for {
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			return nil, ErrClosed
		}
		for len(p.idle) > 0 {
			e := p.idle[len(p.idle)-1]
			p.idle = p.idle[:len(p.idle)-1]
			if e.alive() {
				p.mu.Unlock()
				return e, nil
			}
			delete(p.all, e) // it exited while idle
			go e.stop()
		}
		if len(p.all) < p.opts.Max {
			p.nextID++
			id := "env-" + strconv.Itoa(p.nextID)
			placeholder := &environment{id: id}
			p.all[placeholder] = true
			p.mu.Unlock()
			e, err := startEnvironment(id, p.opts, p.out)
			p.mu.Lock()
			delete(p.all, placeholder)
			if err == nil && !p.closed {
				p.all[e] = true
			}
			closed := p.closed
			p.wakeLocked()
			p.mu.Unlock()
			if err != nil {
				p.opts.Logger.Error("environment failed to start", "environment", id, "err", err.Error())
				return nil, err
			}
			if closed {
				e.stop()
				return nil, ErrClosed
			}
			p.opts.Logger.Info("environment started", "environment", id, "pid", e.pid(), "invoke_address", e.addr, "start_ms", ms(e.startTook))
			return e, nil
		}
		freed := p.freed
		p.mu.Unlock()
		select {
		case <-freed:
		case <-ctx.Done():
			return nil, fmt.Errorf("rie: all %d environments busy: %w", p.opts.Max, ctx.Err())
		}
	}
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

func (p *Pool) drop(e *environment) {
	p.mu.Lock()
	delete(p.all, e)
	p.wakeLocked()
	p.mu.Unlock()
	e.stop()
	p.opts.Logger.Info("environment stopped", "environment", e.id, "reason", "invocation failed", "invocations", e.invocations)
}

func (p *Pool) wakeLocked() {
	close(p.freed)
	p.freed = make(chan struct{})
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
