// Package lambdatest helps tests and the benchmark run a function the way
// Lambda does: Build compiles a bootstrap as `make build` does (for this
// machine's architecture), and RIE finds the pinned AWS Lambda Runtime
// Interface Emulator that local/rie runs it under.
package lambdatest

import (
	"os"
	"path/filepath"
)

// TB is the part of testing.TB this package uses, so that a program (the
// benchmark report) can use it too.
type TB interface {
	Helper()
	Fatalf(format string, args ...any)
	Cleanup(func())
	TempDir() string
}

// RIEEnv names the variable that can point at an aws-lambda-rie binary; by
// default RIE uses the one `make deps` installs into the module's bin/.
const RIEEnv = "AWS_LAMBDA_RIE"

// RIE returns the path of the aws-lambda-rie binary: $AWS_LAMBDA_RIE if set,
// else bin/aws-lambda-rie under the module root. It fails t, saying how to
// install it, when there is none.
func RIE(t TB) string {
	t.Helper()
	p := os.Getenv(RIEEnv)
	if p == "" {
		p = filepath.Join(moduleRoot(t), "bin", "aws-lambda-rie")
	}
	if fi, err := os.Stat(p); err != nil || fi.IsDir() {
		t.Fatalf("lambdatest: no Lambda Runtime Interface Emulator at %s: run `make deps` (it installs the version pinned in tools/go.mod), or set %s", p, RIEEnv)
	}
	return p
}
