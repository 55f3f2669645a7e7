package main

import (
	"bytes"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// clockTick is the unit of utime and stime in /proc/PID/stat (USER_HZ, 100
// on every Linux this runs on; sysconf(_SC_CLK_TCK) needs cgo).
const clockTick = 10 * time.Millisecond

// cpuTime returns the CPU time (user + system, all threads, not children)
// process pid has used so far.
func cpuTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	return parseStatCPU(b)
}

// parseStatCPU returns utime+stime of a /proc/PID/stat line. The command
// name (field 2) is parenthesised and may hold spaces and parentheses, so
// fields are counted from the last ')'.
func parseStatCPU(b []byte) (time.Duration, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("not a /proc/PID/stat line: %.60q", b)
	}
	f := strings.Fields(string(b[i+1:]))
	// After the command: state (field 3) ... utime (14), stime (15).
	if len(f) < 13 {
		return 0, fmt.Errorf("short /proc/PID/stat line: %.60q", b)
	}
	var ticks int64
	for _, s := range f[11:13] {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/PID/stat: utime/stime %q: %v", s, err)
		}
		ticks += n
	}
	return time.Duration(ticks) * clockTick, nil
}

// endpointPort is the port of a DynamoDB endpoint URL: its own, else
// DYNAMODB_PORT (what local/dynamodb-local.sh starts on), else DynamoDB
// Local's default 8000.
func endpointPort(endpoint string) string {
	if u, err := url.Parse(endpoint); err == nil && u.Port() != "" {
		return u.Port()
	}
	if p := os.Getenv("DYNAMODB_PORT"); p != "" {
		return p
	}
	return "8000"
}

// dynamoDBLocalProc is a DynamoDB Local JVM on this machine.
type dynamoDBLocalProc struct {
	pid       int
	java, jar string
}

// findDynamoDBLocal returns the java process running DynamoDBLocal.jar with
// -port port (no -port means 8000), or false.
func findDynamoDBLocal(port string) (dynamoDBLocalProc, bool) {
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil || !bytes.Contains(b, []byte("DynamoDBLocal.jar")) {
			continue
		}
		args := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
		var jar, argPort string
		for i, a := range args {
			switch {
			case strings.HasSuffix(a, "DynamoDBLocal.jar"):
				jar = a
			case a == "-port" && i+1 < len(args):
				argPort = args[i+1]
			}
		}
		if argPort == "" {
			argPort = "8000"
		}
		if jar == "" || argPort != port {
			continue
		}
		pid, err := strconv.Atoi(filepath.Base(filepath.Dir(p)))
		if err != nil {
			continue
		}
		return dynamoDBLocalProc{pid: pid, java: args[0], jar: jar}, true
	}
	return dynamoDBLocalProc{}, false
}
