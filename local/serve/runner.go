package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/parcelhq/orderservice/functions/createorder/app"
	"github.com/parcelhq/orderservice/internal/ddb"
	"github.com/parcelhq/orderservice/internal/samtemplate"
	"github.com/parcelhq/orderservice/local/apigw"
	"github.com/parcelhq/orderservice/local/rie"
)

const goos = runtime.GOOS

// runner is what the gateway invokes: the function in a pool of emulated
// execution environments, or its handler in this process.
type runner struct {
	handler     apigw.Handler
	description string // for the ready line
	close       func()
}

// loadFunction reads the template at path (empty: template.yaml in the
// working directory or its nearest parent that has one) and returns its one
// function behind the HTTP API, and the template's path.
func loadFunction(path string) (samtemplate.Function, string, error) {
	if path == "" {
		var err error
		if path, err = findTemplate(); err != nil {
			return samtemplate.Function{}, "", err
		}
	}
	tpl, err := samtemplate.Load(path)
	if err != nil {
		return samtemplate.Function{}, "", err
	}
	fns, err := tpl.HTTPAPIFunctions()
	if err != nil {
		return samtemplate.Function{}, "", err
	}
	if len(fns) != 1 {
		var ids []string
		for _, f := range fns {
			ids = append(ids, f.ID)
		}
		return samtemplate.Function{}, "", fmt.Errorf("%s: serve runs one function behind the HTTP API; the template has %d: %s", path, len(fns), strings.Join(ids, ", "))
	}
	if rel, err := filepath.Rel(mustGetwd(), path); err == nil && !strings.HasPrefix(rel, "..") {
		path = rel
	}
	return fns[0], path, nil
}

func findTemplate() (string, error) {
	p, err := samtemplate.Find("template.yaml")
	if err != nil {
		return "", fmt.Errorf("%w; pass -template", err)
	}
	return p, nil
}

func mustGetwd() string {
	wd, err := os.Getwd()
	if err != nil {
		return "."
	}
	return wd
}

// rieRunner runs o.bootstrap under the emulator in a pool of up to
// o.maxEnvs environments. The function's environment is the function's
// variables (app.EnvVars) as set in this process, and DYNAMODB_ENDPOINT =
// endpoint; nothing else of this process's environment (no AWS credentials)
// reaches it.
func rieRunner(fn samtemplate.Function, tplPath string, o options, endpoint string, logger *slog.Logger) (*runner, error) {
	emulator := o.rie
	if emulator == "" {
		emulator = filepath.Join(filepath.Dir(tplPath), "bin", "aws-lambda-rie")
	}
	env := []string{ddb.EndpointEnv + "=" + endpoint}
	for _, name := range app.EnvVars {
		if v, ok := os.LookupEnv(name); ok {
			env = append(env, name+"="+v)
		}
	}
	pool, err := rie.NewPool(rie.Options{
		RIE: emulator, Bootstrap: o.bootstrap,
		FunctionName: fn.ID, Handler: fn.Handler, Timeout: fn.Timeout, MemoryMB: fn.MemoryMB,
		Env: env, Max: o.maxEnvs, QueueWait: *o.queueWait, Logger: logger, Output: os.Stdout,
	})
	if err != nil {
		return nil, fmt.Errorf("%w (`make deps` installs the emulator into bin/; `make local` builds the bootstrap)", err)
	}
	return &runner{
		handler:     pool.Handler(),
		description: fmt.Sprintf("bootstrap %s under the Lambda Runtime Interface Emulator (RIE) in a pool of up to %d execution environments (%s)", o.bootstrap, pool.Max(), queueing(*o.queueWait)),
		close:       func() { _ = pool.Close() },
	}, nil
}

// queueing describes for the ready line what becomes of a request that finds
// every environment busy, given rie.Options.QueueWait.
func queueing(wait time.Duration) string {
	switch {
	case wait < 0:
		return "beyond them a request is throttled at once"
	case wait == 0:
		return "beyond them a request waits up to the function timeout, then is throttled"
	}
	return fmt.Sprintf("beyond them a request waits up to %s, then is throttled", wait)
}

// inProcessRunner calls the handler the bootstrap registers, in this
// process; why says why this runner was chosen.
func inProcessRunner(ctx context.Context, cfg app.Config, client *dynamodb.Client, logger *slog.Logger, why string) (*runner, error) {
	h, err := app.New(ctx, cfg, client, logger)
	if err != nil {
		return nil, err
	}
	return &runner{
		handler:     app.LambdaHandler(h),
		description: "in-process runner: the handler called directly, one process, no cold starts (" + why + ")",
		close:       func() {},
	}, nil
}
