package lambdatest

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

// Build compiles the main package pkg (an import path or ./relative to the
// module root) the way `make build` builds a function's bootstrap: linux,
// CGO_ENABLED=0 (static), -tags lambda.norpc plus extra tags, -trimpath,
// stripped; but for this machine's architecture, so that it runs here. It
// returns the binary's path in a directory removed when t ends.
func Build(t TB, pkg string, tags ...string) string {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Fatalf("lambdatest: a Lambda bootstrap runs on linux; this is %s", runtime.GOOS)
	}
	root := moduleRoot(t)
	out := filepath.Join(t.TempDir(), "bootstrap")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build",
		"-tags", strings.Join(append([]string{"lambda.norpc"}, tags...), ","),
		"-trimpath", "-ldflags=-s -w", "-o", out, pkg)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+runtime.GOARCH)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("lambdatest: go build %s: %v\n%s", pkg, err, b)
	}
	return out
}

func moduleRoot(t TB) string {
	t.Helper()
	b, err := exec.Command("go", "env", "GOMOD").Output()
	gomod := string(bytes.TrimSpace(b))
	if err != nil || gomod == "" || gomod == os.DevNull {
		t.Fatalf("lambdatest: cannot find the module root: %v", err)
	}
	return filepath.Dir(gomod)
}
