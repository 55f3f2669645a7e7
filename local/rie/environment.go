package rie

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

// invokePath is the emulator's invoke endpoint (the Lambda Invoke API's path
// for a function named "function").
const invokePath = "/2015-03-31/functions/function/invocations"

// startTimeout bounds an emulator's start, until its invoke address accepts
// connections.
const startTimeout = 30 * time.Second

// environment is one execution environment: an aws-lambda-rie process,
// which starts the bootstrap on its first invocation (the init phase).
type environment struct {
	id          string
	cmd         *exec.Cmd
	addr        string // invoke address, 127.0.0.1:port
	client      *http.Client
	startTook   time.Duration // process start to invoke address listening
	exited      chan struct{} // closed when the emulator has exited
	waitErr     error         // set before exited is closed
	initReports chan time.Duration
	invocations int // touched only by the invocation holding the environment
	stopOnce    sync.Once
}

// startEnvironment starts an emulator for opts.Bootstrap on two free
// 127.0.0.1 ports (invoke and Runtime API) and waits until it accepts
// invocations. A port taken by someone else between its choice and the
// emulator's bind makes the emulator exit; that is retried with new ports.
func startEnvironment(id string, opts Options, out *lineWriter) (*environment, error) {
	var lastErr error
	for range 3 {
		e, err := tryStart(id, opts, out)
		if err == nil {
			return e, nil
		}
		lastErr = err
	}
	return nil, lastErr
}

func tryStart(id string, opts Options, out *lineWriter) (*environment, error) {
	invokeAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	runtimeAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	bootstrap, err := filepath.Abs(opts.Bootstrap)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(opts.RIE,
		"--log-level", "info", // INIT REPORT lines (the init duration) are at info
		"--runtime-interface-emulator-address", invokeAddr,
		"--runtime-api-address", runtimeAddr,
		bootstrap)
	cmd.Dir = filepath.Dir(bootstrap) // the emulator's /var/task: the function's code directory
	cmd.Env = lambdaEnv(id, opts)
	setProcessGroup(cmd)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	e := &environment{
		id: id, cmd: cmd, addr: invokeAddr,
		exited:      make(chan struct{}),
		initReports: make(chan time.Duration, 1),
		client: &http.Client{Transport: &http.Transport{
			Proxy: nil, MaxIdleConnsPerHost: 1, IdleConnTimeout: 5 * time.Minute,
		}},
	}
	began := time.Now()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("rie: start %s: %w", opts.RIE, err)
	}
	var pipes sync.WaitGroup
	pipes.Add(2)
	go func() { defer pipes.Done(); e.copyOutput(stdout, out) }()
	go func() { defer pipes.Done(); e.scanEmulatorLog(stderr, opts) }()
	go func() {
		pipes.Wait() // Wait closes the pipes: read them to the end first
		e.waitErr = cmd.Wait()
		close(e.exited)
	}()

	deadline := time.Now().Add(startTimeout)
	for {
		c, err := net.DialTimeout("tcp", invokeAddr, time.Second)
		if err == nil {
			c.Close()
			e.startTook = time.Since(began)
			return e, nil
		}
		select {
		case <-e.exited:
			return nil, fmt.Errorf("rie: %s exited before it listened on %s: %v", id, invokeAddr, e.waitErr)
		case <-time.After(5 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			e.stop()
			return nil, fmt.Errorf("rie: %s did not listen on %s within %s", id, invokeAddr, startTimeout)
		}
	}
}

// lambdaEnv is the emulator's environment, which it passes on to the
// function: opts.Env over what Lambda defines for every function.
func lambdaEnv(id string, opts Options) []string {
	timeoutSecs := int(math.Ceil(opts.Timeout.Seconds()))
	base := []string{
		"PATH=/usr/local/bin:/usr/bin:/bin",
		"LANG=en_US.UTF-8",
		"TZ=:UTC",
		"AWS_REGION=us-east-1",
		"AWS_DEFAULT_REGION=us-east-1",
		"AWS_LAMBDA_FUNCTION_NAME=" + opts.FunctionName,
		"AWS_LAMBDA_FUNCTION_VERSION=$LATEST",
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE=" + strconv.Itoa(opts.MemoryMB),
		"AWS_LAMBDA_FUNCTION_TIMEOUT=" + strconv.Itoa(timeoutSecs),
		"AWS_LAMBDA_LOG_GROUP_NAME=/aws/lambda/" + opts.FunctionName,
		"AWS_LAMBDA_LOG_STREAM_NAME=" + time.Now().UTC().Format("2006/01/02") + "/[$LATEST]" + id,
		"_HANDLER=" + opts.Handler,
	}
	set := map[string]bool{}
	for _, kv := range opts.Env {
		k, _, _ := strings.Cut(kv, "=")
		set[k] = true
	}
	var env []string
	for _, kv := range base {
		if k, _, _ := strings.Cut(kv, "="); !set[k] {
			env = append(env, kv)
		}
	}
	return append(env, opts.Env...)
}

// invoke sends one invocation and returns the function's response payload.
// It is bounded by the function timeout plus a grace for the emulator's own
// timeout answer, never by the caller.
func (e *environment) invoke(requestID string, payload []byte, timeout time.Duration) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout+2*time.Second)
	defer cancel()
	go func() {
		select {
		case <-e.exited:
			cancel()
		case <-ctx.Done():
		}
	}()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+e.addr+invokePath, bytes.NewReader(payload))
	if err != nil {
		return nil, err
	}
	if requestID != "" {
		req.Header.Set("X-Amzn-RequestId", requestID)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := e.client.Do(req)
	if err != nil {
		if !e.alive() {
			return nil, fmt.Errorf("rie: %s exited: %v", e.id, e.waitErr)
		}
		return nil, fmt.Errorf("rie: %s: %w", e.id, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("rie: %s: reading the response: %w", e.id, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("rie: %s answered %d (the runtime failed: crashed, failed init or was reset): %.200s", e.id, resp.StatusCode, body)
	}
	if bytes.HasPrefix(body, []byte("Task timed out after")) {
		return nil, fmt.Errorf("rie: %s: %s", e.id, body)
	}
	return body, nil
}

func (e *environment) alive() bool {
	select {
	case <-e.exited:
		return false
	default:
		return true
	}
}

func (e *environment) pid() int { return e.cmd.Process.Pid }

// initDuration returns the duration of the environment's init phase as the
// emulator reported it, waiting up to wait for its log line; 0 if none came.
func (e *environment) initDuration(wait time.Duration) time.Duration {
	select {
	case d := <-e.initReports:
		return d
	case <-time.After(wait):
		return 0
	}
}

// stop ends the emulator and the runtime it started (its process group,
// while the emulator is alive, so the group id is still theirs): SIGTERM,
// then SIGKILL after 2 s, and waits for the emulator to exit. A runtime
// whose emulator is gone exits by itself: its Runtime API is gone.
func (e *environment) stop() {
	if e.cmd == nil { // a placeholder for an environment being started
		return
	}
	e.stopOnce.Do(func() {
		if !e.alive() {
			return
		}
		signalGroup(e.cmd, false)
		select {
		case <-e.exited:
		case <-time.After(2 * time.Second):
			signalGroup(e.cmd, true)
			<-e.exited
		}
	})
	e.client.CloseIdleConnections()
}

// The emulator's own lines on stdout around each invocation; the pool logs
// its own invocation record instead.
var platformLine = regexp.MustCompile(`^(START|END|REPORT) RequestId: `)

// copyOutput forwards the function's output (the emulator's stdout, which
// carries the runtime's stdout and stderr) to out line by line, without the
// emulator's START/END/REPORT lines.
func (e *environment) copyOutput(r io.Reader, out *lineWriter) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if line := sc.Bytes(); !platformLine.Match(line) {
			out.writeLine(line)
		}
	}
	_, _ = io.Copy(io.Discard, r)
}

var (
	initReport   = regexp.MustCompile(`INIT REPORT\(durationMs: ([0-9.]+)\)`)
	emulatorWarn = regexp.MustCompile(`\[(WARNING|ERROR|FATAL|PANIC)\]`)
)

// scanEmulatorLog reads the emulator's log (stderr): the first INIT REPORT
// gives the init duration; warnings and errors are logged.
func (e *environment) scanEmulatorLog(r io.Reader, opts Options) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	reported := false
	for sc.Scan() {
		line := sc.Text()
		if m := initReport.FindStringSubmatch(line); m != nil && !reported {
			if v, err := strconv.ParseFloat(m[1], 64); err == nil {
				reported = true
				e.initReports <- time.Duration(v * float64(time.Millisecond))
			}
			continue
		}
		if emulatorWarn.MatchString(line) {
			opts.Logger.Warn("emulator", "environment", e.id, "line", line)
		}
	}
	_, _ = io.Copy(io.Discard, r)
}

// freeAddr returns a 127.0.0.1 address with a port free at the time of the
// call.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// lineWriter writes whole lines to w, one writer at a time, so that the
// output of several environments never interleaves within a line.
type lineWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lineWriter) writeLine(b []byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	_, _ = l.w.Write(append(append([]byte(nil), b...), '\n'))
}
