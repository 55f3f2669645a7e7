// Tests of local/dynamodb-local.sh, the script that starts and stops DynamoDB
// Local for `make test` and `make local`. They run the real script and, where
// it starts one, a real DynamoDB Local.
package local_test

import (
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

const script = "./dynamodb-local.sh"

type run struct {
	stdout, stderr string
	code           int
}

// sh runs the script with env added to a minimal environment (no
// DYNAMODB_ENDPOINT from the caller) and fails t if it takes over a minute.
func sh(t *testing.T, env []string, args ...string) run {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", append([]string{script}, args...)...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}, env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("%s %v did not finish within a minute; stderr:\n%s", script, args, errb.String())
	}
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return run{strings.TrimSpace(out.String()), errb.String(), code}
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func answers(port int) bool {
	c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), time.Second)
	if err == nil {
		c.Close()
	}
	return err == nil
}

// instance is the environment of one private DynamoDB Local: its own port and
// state directory, stopped when the test ends even if the test fails.
func instance(t *testing.T) (env []string, port int) {
	port = freePort(t)
	env = []string{"DYNAMODB_PORT=" + strconv.Itoa(port), "DYNAMODB_LOCAL_STATE_DIR=" + t.TempDir(), "DYNAMODB_LOCAL_RUNTIME=java"}
	t.Cleanup(func() { sh(t, env, "stop") })
	return env, port
}

func TestStartStop(t *testing.T) {
	t.Parallel()
	env, port := instance(t)
	endpoint := "http://127.0.0.1:" + strconv.Itoa(port)

	first := sh(t, env, "start")
	if first.code != 0 || first.stdout != endpoint {
		t.Fatalf("start: code %d, stdout %q, want 0 and %q; stderr:\n%s", first.code, first.stdout, endpoint, first.stderr)
	}
	if !answers(port) {
		t.Fatal("start returned before DynamoDB Local answered")
	}

	t.Run("starting again reuses the running instance", func(t *testing.T) {
		again := sh(t, env, "start")
		if again.code != 0 || again.stdout != endpoint || !strings.Contains(again.stderr, "already running") {
			t.Fatalf("second start: %+v", again)
		}
	})

	t.Run("stop stops it and a second stop has nothing to do", func(t *testing.T) {
		if r := sh(t, env, "stop"); r.code != 0 {
			t.Fatalf("stop: %+v", r)
		}
		if answers(port) {
			t.Fatal("DynamoDB Local still answers after stop")
		}
		if r := sh(t, env, "stop"); r.code != 0 || !strings.Contains(r.stderr, "nothing to stop") {
			t.Fatalf("second stop: %+v", r)
		}
	})
}

func TestRunStopsOnlyWhatItStarted(t *testing.T) {
	t.Parallel()
	env, port := instance(t)

	t.Run("run starts DynamoDB Local for the command and stops it after", func(t *testing.T) {
		r := sh(t, env, "run", "--", "bash", "-c", `echo "$DYNAMODB_ENDPOINT"; (exec 3<>/dev/tcp/127.0.0.1/${DYNAMODB_ENDPOINT##*:})`)
		if r.code != 0 || r.stdout != "http://127.0.0.1:"+strconv.Itoa(port) {
			t.Fatalf("run: %+v", r)
		}
		if answers(port) {
			t.Fatal("run left the instance it started running")
		}
	})

	t.Run("run passes on the command's exit status", func(t *testing.T) {
		if r := sh(t, env, "run", "--", "bash", "-c", "exit 7"); r.code != 7 {
			t.Fatalf("exit code %d, want 7", r.code)
		}
	})

	t.Run("run leaves an instance that was already running", func(t *testing.T) {
		if r := sh(t, env, "start"); r.code != 0 {
			t.Fatalf("start: %+v", r)
		}
		if r := sh(t, env, "run", "--", "true"); r.code != 0 {
			t.Fatalf("run: %+v", r)
		}
		if !answers(port) {
			t.Fatal("run stopped an instance it had not started")
		}
	})
}

func TestStartRefuses(t *testing.T) {
	t.Parallel()

	t.Run("a port taken by another program is a clear error, not a hang", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		port := l.Addr().(*net.TCPAddr).Port
		r := sh(t, []string{"DYNAMODB_PORT=" + strconv.Itoa(port), "DYNAMODB_LOCAL_STATE_DIR=" + t.TempDir()}, "start")
		if r.code == 0 || !strings.Contains(r.stderr, "already in use") {
			t.Fatalf("start on a taken port: %+v", r)
		}
	})

	t.Run("DYNAMODB_ENDPOINT set starts nothing", func(t *testing.T) {
		port := freePort(t)
		r := sh(t, []string{"DYNAMODB_ENDPOINT=http://db.example:8000", "DYNAMODB_PORT=" + strconv.Itoa(port), "DYNAMODB_LOCAL_STATE_DIR=" + t.TempDir()}, "start")
		if r.code != 0 || r.stdout != "http://db.example:8000" || answers(port) {
			t.Fatalf("start with DYNAMODB_ENDPOINT: %+v", r)
		}
	})

	for _, tc := range []struct {
		name, java, want string
	}{
		{"neither Java nor Docker is a one-line error naming what to install", "", "needs Java 17+ or a running Docker daemon"},
		{"a Java older than 17 is named as such", `echo 'openjdk version "11.0.2" 2019-01-15' >&2`, "needs Java 17 or newer (found Java 11)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bin := toolsWithout(t, "java", "docker")
			if tc.java != "" {
				if err := os.WriteFile(filepath.Join(bin, "java"), []byte("#!/bin/bash\n"+tc.java+"\n"), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, filepath.Join(bin, "bash"), script, "start")
			cmd.Env = []string{"PATH=" + bin, "DYNAMODB_PORT=" + strconv.Itoa(freePort(t)), "DYNAMODB_LOCAL_STATE_DIR=" + t.TempDir()}
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("start succeeded without Java or Docker: %s", out)
			}
			lines := strings.Split(strings.TrimSpace(string(out)), "\n")
			if len(lines) != 1 || !strings.Contains(lines[0], tc.want) {
				t.Fatalf("output = %q, want one line containing %q", out, tc.want)
			}
		})
	}
}

// toolsWithout returns a directory holding links to the commands the script
// uses, leaving out the named ones: a PATH on which they are missing.
func toolsWithout(t *testing.T, missing ...string) string {
	t.Helper()
	dir := t.TempDir()
	for _, tool := range []string{"bash", "dirname", "sed", "head", "mkdir", "rm", "cat", "sleep", "timeout", "ls", "sort", "tail", "setsid"} {
		if slices.Contains(missing, tool) {
			continue
		}
		p, err := exec.LookPath(tool)
		if err != nil {
			t.Fatalf("test needs %s: %v", tool, err)
		}
		if err := os.Symlink(p, filepath.Join(dir, tool)); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}
