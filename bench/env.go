package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// fatal is the panic value of runner.Fatalf; main recovers it, runs the
// cleanups and exits 1.
type fatal struct{ msg string }

// runner is the lambdatest.TB of this program: Fatalf aborts the run (after
// the cleanups ran), Cleanup functions run in reverse order when the scope
// that registered them ends, TempDir is a fresh directory under one root
// removed at exit.
type runner struct {
	root     string
	cleanups []func()
	n        int
}

func newRunner() (*runner, error) {
	dir, err := os.MkdirTemp("", "orderservice-bench-")
	if err != nil {
		return nil, err
	}
	return &runner{root: dir}, nil
}

func (r *runner) Helper() {}

func (r *runner) Fatalf(format string, args ...any) {
	panic(fatal{fmt.Sprintf(format, args...)})
}

func (r *runner) Cleanup(f func()) { r.cleanups = append(r.cleanups, f) }

func (r *runner) TempDir() string {
	r.n++
	dir := filepath.Join(r.root, strconv.Itoa(r.n))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		r.Fatalf("bench: %v", err)
	}
	return dir
}

// scope returns a runner sharing r's temporary root whose cleanups run when
// the returned function is called (so one cold start's Runtime API server is
// gone before the next one starts).
func (r *runner) scope() (*runner, func()) {
	s := &runner{root: r.root, n: r.n*1000 + 1}
	r.n++
	return s, s.close
}

// close runs the cleanups, last registered first.
func (r *runner) close() {
	for i := len(r.cleanups) - 1; i >= 0; i-- {
		r.cleanups[i]()
	}
	r.cleanups = nil
}

// machine describes where the run happened.
type machine struct {
	CPU, Kernel, Go, DynamoDBLocal, Endpoint string
	Cores                                    int
	MemoryMiB                                int64
	LoadStart, LoadEnd                       string
	Date                                     time.Time
}

func describeMachine(ctx context.Context, root, endpoint string) machine {
	m := machine{
		CPU:      cpuModel(),
		Cores:    runtime.NumCPU(),
		Go:       runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH,
		Endpoint: endpoint,
		Date:     time.Now().UTC(),
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		if v := procField(b, "MemTotal"); v > 0 {
			m.MemoryMiB = v / 1024
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	m.LoadStart = loadAvg()
	m.DynamoDBLocal = dynamoDBLocalVersion(ctx, root, endpoint)
	return m
}

func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return "unknown"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

// loadAvg returns the 1, 5 and 15 minute load averages.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// procField returns the number (in kB for memory fields) of the "Name:"
// line of a /proc file, or -1.
func procField(b []byte, name string) int64 {
	for _, line := range bytes.Split(b, []byte("\n")) {
		k, v, ok := bytes.Cut(line, []byte(":"))
		if !ok || string(k) != name {
			continue
		}
		f := strings.Fields(string(v))
		if len(f) == 0 {
			return -1
		}
		n, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return -1
		}
		return n
	}
	return -1
}

// peakRSS returns VmHWM and VmRSS of process pid, in KiB.
func peakRSS(pid int) (hwm, rss int64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	hwm, rss = procField(b, "VmHWM"), procField(b, "VmRSS")
	if hwm < 0 || rss < 0 {
		return 0, 0, fmt.Errorf("no VmHWM/VmRSS in /proc/%d/status", pid)
	}
	return hwm, rss, nil
}

var versionRE = regexp.MustCompile(`^\d+\.\d+\.\d+`)

// dynamoDBLocalVersion returns the version of the DynamoDB Local serving
// endpoint's port (see endpointPort): the java process on this machine
// running DynamoDBLocal.jar with that -port, asked with -version; else the
// "Version:" line of local/dynamodb-local.sh's log for that port under root;
// else "unknown" (a Docker container's image tag is not looked up).
func dynamoDBLocalVersion(ctx context.Context, root, endpoint string) string {
	port := endpointPort(endpoint)
	if p, ok := findDynamoDBLocal(port); ok {
		vctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		out, err := exec.CommandContext(vctx, p.java, "-jar", p.jar, "-version").Output()
		cancel()
		if v := versionRE.FindString(strings.TrimSpace(string(out))); err == nil && v != "" {
			return v + " (" + filepath.Base(filepath.Dir(p.jar)) + ")"
		}
	}
	if b, err := os.ReadFile(filepath.Join(root, ".local", "dynamodb-"+port+".log")); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "Version:"); ok {
				return strings.TrimSpace(v) + " (from .local/dynamodb-" + port + ".log)"
			}
		}
	}
	return "unknown"
}
