package rie

import (
	"bufio"
	"bytes"
	"context"
	"errors"
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

	// What the emulator's log says about the runtime (see scanEmulatorLog).
	runtimeExited chan struct{} // closed when the emulator reports the runtime exited
	logMu         sync.Mutex
	exitLogged    bool            // a runtime exit has been logged
	starts        map[string]bool // request id -> whether a runtime exit was logged before its INVOKE START
	startLogged   chan struct{}   // closed and replaced at each INVOKE START line
}

// addrPicker returns the invoke and Runtime API addresses for a new
// emulator.
type addrPicker func() (invoke, runtimeAPI string, err error)

// startEnvironment starts an emulator for opts.Bootstrap on two 127.0.0.1
// ports (invoke and Runtime API) chosen by pick and waits until the emulator
// itself listens on both. A port taken by someone else between its choice
// and the emulator's bind makes the emulator exit; that is retried with new
// ports. It returns ErrClosed, with no process left, when stop is closed
// first.
func startEnvironment(id string, opts Options, out *lineWriter, pick addrPicker, stop <-chan struct{}) (*environment, error) {
	var lastErr error
	for range 3 {
		e, err := tryStart(id, opts, out, pick, stop)
		if err == nil || errors.Is(err, ErrClosed) {
			return e, err
		}
		lastErr = err
	}
	return nil, lastErr
}

func tryStart(id string, opts Options, out *lineWriter, pick addrPicker, stop <-chan struct{}) (*environment, error) {
	invokeAddr, runtimeAddr, err := pick()
	if err != nil {
		return nil, err
	}
	if invokeAddr == runtimeAddr {
		return nil, fmt.Errorf("rie: invoke address %s is the Runtime API address too", invokeAddr)
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
		exited:        make(chan struct{}),
		initReports:   make(chan time.Duration, 1),
		runtimeExited: make(chan struct{}),
		starts:        map[string]bool{},
		startLogged:   make(chan struct{}),
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

	// A successful dial only shows that someone listens on the port: the
	// emulator logs nothing once it listens (its "Listening on" line is
	// written only after its server has stopped). So the start is confirmed
	// by the process: alive, and itself holding the listening sockets of
	// both addresses. Someone else's listener on a port makes the emulator
	// fail to bind and exit; that is waited out, not mistaken for a start.
	deadline := time.Now().Add(startTimeout)
	for {
		if c, err := net.DialTimeout("tcp", invokeAddr, time.Second); err == nil {
			c.Close()
			owned, err := listensOn(e.pid(), invokeAddr, runtimeAddr)
			if err != nil {
				e.stop()
				return nil, fmt.Errorf("rie: %s: checking its listeners: %w", id, err)
			}
			if owned && e.alive() {
				e.startTook = time.Since(began)
				return e, nil
			}
		}
		select {
		case <-e.exited:
			return nil, fmt.Errorf("rie: %s exited before it listened on %s and %s: %v", id, invokeAddr, runtimeAddr, e.waitErr)
		case <-stop:
			e.stop()
			return nil, ErrClosed
		case <-time.After(5 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			e.stop()
			return nil, fmt.Errorf("rie: %s did not listen on %s and %s within %s", id, invokeAddr, runtimeAddr, startTimeout)
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

// maxLine is the longest line of output forwarded whole; a longer line is
// cut there and marked (CloudWatch Logs, too, limits an event's size).
const maxLine = 1 << 20

// copyOutput forwards the function's output (the emulator's stdout, which
// carries the runtime's stdout and stderr) to out line by line, without the
// emulator's START/END/REPORT lines, until r ends. A line longer than
// maxLine is forwarded cut to maxLine, followed by " [line truncated: N
// bytes dropped]"; the lines after it are forwarded as usual.
func (e *environment) copyOutput(r io.Reader, out *lineWriter) {
	readLines(r, func(line []byte, dropped int) {
		if platformLine.Match(line) {
			return
		}
		if dropped > 0 {
			line = fmt.Appendf(line, " [line truncated: %d bytes dropped]", dropped)
		}
		out.writeLine(line)
	})
}

// readLines calls fn for each line of r (without its newline), until r
// ends: whole lines up to maxLine, longer ones cut to maxLine with the
// number of bytes dropped. line is valid only during the call.
func readLines(r io.Reader, fn func(line []byte, dropped int)) {
	br := bufio.NewReaderSize(r, 64<<10)
	var buf []byte
	dropped := 0
	for {
		chunk, err := br.ReadSlice('\n')
		full := err == nil
		chunk = bytes.TrimSuffix(chunk, []byte("\n"))
		if room := maxLine - len(buf); len(chunk) > room {
			dropped += len(chunk) - room
			chunk = chunk[:room]
		}
		buf = append(buf, chunk...)
		switch {
		case full:
		case errors.Is(err, bufio.ErrBufferFull):
			continue // the line goes on
		default: // the end: a last line without a newline, if any
			if len(buf) > 0 || dropped > 0 {
				fn(bytes.TrimSuffix(buf, []byte("\r")), dropped)
			}
			return
		}
		fn(bytes.TrimSuffix(buf, []byte("\r")), dropped)
		buf, dropped = buf[:0], 0
	}
}

var (
	initReport   = regexp.MustCompile(`INIT REPORT\(durationMs: ([0-9.]+)\)`)
	emulatorWarn = regexp.MustCompile(`\[(WARNING|ERROR|FATAL|PANIC)\]`)
	// The emulator's line when a process of the runtime domain (the
	// bootstrap is "runtime-N") exits while the emulator is not shutting
	// down; and its line as it begins an invocation, before the event is
	// made available to the runtime.
	runtimeExit = regexp.MustCompile(`Process runtime-[0-9]+ exited: `)
	invokeStart = regexp.MustCompile(`INVOKE START\(requestId: ([^)]+)\)`)
)

// scanEmulatorLog reads the emulator's log (stderr): the first INIT REPORT
// gives the init duration; the runtime's exit closes runtimeExited; each
// INVOKE START is recorded with whether a runtime exit came before it;
// warnings and errors are logged.
func (e *environment) scanEmulatorLog(r io.Reader, opts Options) {
	reported := false
	readLines(r, func(b []byte, _ int) {
		line := string(b)
		if m := initReport.FindStringSubmatch(line); m != nil && !reported {
			if v, err := strconv.ParseFloat(m[1], 64); err == nil {
				reported = true
				e.initReports <- time.Duration(v * float64(time.Millisecond))
			}
			return
		}
		if m := invokeStart.FindStringSubmatch(line); m != nil {
			e.logMu.Lock()
			e.starts[m[1]] = e.exitLogged
			close(e.startLogged)
			e.startLogged = make(chan struct{})
			e.logMu.Unlock()
		}
		if runtimeExit.MatchString(line) {
			e.logMu.Lock()
			if !e.exitLogged {
				e.exitLogged = true
				close(e.runtimeExited)
			}
			e.logMu.Unlock()
		}
		if emulatorWarn.MatchString(line) {
			opts.Logger.Warn("emulator", "environment", e.id, "line", line)
		}
	})
}

// exitedBeforeInvoke reports whether the emulator logged the runtime's exit
// before it began the invocation requestID: then the event was never made
// available to the function. It waits up to wait for the invocation's
// INVOKE START line; without it, it reports false.
func (e *environment) exitedBeforeInvoke(requestID string, wait time.Duration) bool {
	timeout := time.After(wait)
	for {
		e.logMu.Lock()
		before, seen := e.starts[requestID]
		next := e.startLogged
		e.logMu.Unlock()
		if seen {
			return before
		}
		select {
		case <-next:
		case <-e.exited:
			e.logMu.Lock()
			before = e.starts[requestID]
			e.logMu.Unlock()
			return before
		case <-timeout:
			return false
		}
	}
}

// runtimeAlive reports whether the emulator is alive and has not reported
// its runtime's exit.
func (e *environment) runtimeAlive() bool {
	select {
	case <-e.runtimeExited:
		return false
	default:
		return e.alive()
	}
}

// freeAddrs returns two distinct 127.0.0.1 addresses whose ports are free
// at the time of the call (both are held until both are chosen).
func freeAddrs() (invoke, runtimeAPI string, err error) {
	a, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", "", err
	}
	defer a.Close()
	b, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", "", err
	}
	defer b.Close()
	return a.Addr().String(), b.Addr().String(), nil
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
