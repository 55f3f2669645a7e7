// Package lambdatest runs a real Lambda bootstrap binary in tests, with no
// Docker and no Runtime Interface Emulator: it serves the Lambda Runtime API
// (the small HTTP protocol a custom runtime polls) on 127.0.0.1 and hands
// invocations to whichever bootstrap processes poll it, as Lambda does.
package lambdatest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// TB is the part of testing.TB this package uses, so that a program (the
// benchmark report) can use it too.
type TB interface {
	Helper()
	Fatalf(format string, args ...any)
	Cleanup(func())
	TempDir() string
}

// Runtime is a Lambda Runtime API server. Its zero value is not usable; call
// Start.
type Runtime struct {
	addr    string
	queue   chan *invocation
	mu      sync.Mutex
	pending map[string]*invocation
	initErr chan string
	timeout time.Duration
}

type invocation struct {
	id      string
	event   []byte
	done    chan struct{}
	payload []byte
	err     *InvocationError
}

// InvocationError is what a function reported through the runtime's error
// endpoint (a returned error or a panic), or an initialisation failure.
type InvocationError struct {
	Type    string `json:"errorType"`
	Message string `json:"errorMessage"`
}

func (e *InvocationError) Error() string { return e.Type + ": " + e.Message }

// Start serves the Runtime API on a free 127.0.0.1 port until t ends.
// Invocations get a deadline of timeout (the function's configured timeout).
func Start(t TB, timeout time.Duration) *Runtime {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("lambdatest: %v", err)
	}
	r := &Runtime{
		addr:    l.Addr().String(),
		queue:   make(chan *invocation),
		pending: map[string]*invocation{},
		initErr: make(chan string, 16),
		timeout: timeout,
	}
	srv := &http.Server{Handler: r.routes(), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		_ = srv.Close()
	})
	return r
}

// Addr is the value for AWS_LAMBDA_RUNTIME_API.
func (r *Runtime) Addr() string { return r.addr }

// Env returns the environment Lambda gives a function process, pointed at r.
func (r *Runtime) Env(functionName string) []string {
	return []string{
		"AWS_LAMBDA_RUNTIME_API=" + r.addr,
		"AWS_LAMBDA_FUNCTION_NAME=" + functionName,
		"AWS_LAMBDA_FUNCTION_VERSION=$LATEST",
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE=256",
		"AWS_LAMBDA_LOG_GROUP_NAME=/aws/lambda/" + functionName,
		"AWS_LAMBDA_LOG_STREAM_NAME=local",
		"_HANDLER=bootstrap",
		"AWS_REGION=us-east-1",
		"AWS_DEFAULT_REGION=us-east-1",
	}
}

// InitErrors delivers the errors bootstrap processes reported from init
// (before they could poll for work).
func (r *Runtime) InitErrors() <-chan string { return r.initErr }

// Invoke queues event for the next polling process and waits for its
// response payload. It returns an *InvocationError when the function reported
// one, and ctx's error when ctx ends first (the invocation may still run).
func (r *Runtime) Invoke(ctx context.Context, event []byte) ([]byte, error) {
	var id [16]byte
	_, _ = rand.Read(id[:])
	inv := &invocation{id: hex.EncodeToString(id[:]), event: event, done: make(chan struct{})}
	r.mu.Lock()
	r.pending[inv.id] = inv
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		delete(r.pending, inv.id)
		r.mu.Unlock()
	}()
	select {
	case r.queue <- inv:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	select {
	case <-inv.done:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if inv.err != nil {
		return nil, inv.err
	}
	return inv.payload, nil
}

const prefix = "/2018-06-01/runtime/"

func (r *Runtime) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+prefix+"invocation/next", r.next)
	mux.HandleFunc("POST "+prefix+"invocation/{id}/response", r.respond)
	mux.HandleFunc("POST "+prefix+"invocation/{id}/error", r.fail)
	mux.HandleFunc("POST "+prefix+"init/error", func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		select {
		case r.initErr <- string(body):
		default:
		}
		w.WriteHeader(http.StatusAccepted)
	})
	return mux
}

// next blocks, like Lambda's, until there is an invocation for the caller.
func (r *Runtime) next(w http.ResponseWriter, req *http.Request) {
	var inv *invocation
	select {
	case inv = <-r.queue:
	case <-req.Context().Done():
		return
	}
	deadline := time.Now().Add(r.timeout)
	h := w.Header()
	h.Set("Lambda-Runtime-Aws-Request-Id", inv.id)
	h.Set("Lambda-Runtime-Deadline-Ms", strconv.FormatInt(deadline.UnixMilli(), 10))
	h.Set("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:us-east-1:123456789012:function:test")
	h.Set("Lambda-Runtime-Trace-Id", "Root=1-00000000-000000000000000000000000;Sampled=0")
	h.Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(inv.event)
}

func (r *Runtime) take(id string) *invocation {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.pending[id]
}

func (r *Runtime) respond(w http.ResponseWriter, req *http.Request) {
	inv := r.take(req.PathValue("id"))
	if inv == nil {
		http.Error(w, "unknown request id", http.StatusBadRequest)
		return
	}
	inv.payload, _ = io.ReadAll(req.Body)
	close(inv.done)
	w.WriteHeader(http.StatusAccepted)
}

func (r *Runtime) fail(w http.ResponseWriter, req *http.Request) {
	inv := r.take(req.PathValue("id"))
	if inv == nil {
		http.Error(w, "unknown request id", http.StatusBadRequest)
		return
	}
	body, _ := io.ReadAll(req.Body)
	e := &InvocationError{}
	if json.Unmarshal(body, e) != nil || e.Type == "" {
		e = &InvocationError{Type: req.Header.Get("Lambda-Runtime-Function-Error-Type"), Message: string(body)}
	}
	inv.err = e
	close(inv.done)
	w.WriteHeader(http.StatusAccepted)
}
