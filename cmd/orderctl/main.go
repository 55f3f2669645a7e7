// Command orderctl books and reads parcel orders through the order API,
// retrying safely: a create is sent with one Idempotency-Key on every
// attempt, so however often the network fails, it makes at most one order.
//
//	orderctl create [flags] ORDER.json   # or - for standard input
//	orderctl get [flags] ORDER_ID
//
// On success the order is printed as JSON on standard output. Progress goes
// to standard error: for create the key first (so that it can be resumed
// even if orderctl itself is killed), then one line per retry with the
// attempt, the answer or network error, and the wait, and last a one-line
// error if it fails.
//
// Flags may come before or after the command and its argument:
//
//	--url URL              the API's base URL (default $ORDERS_API_URL, else http://127.0.0.1:3000)
//	--token TOKEN          bearer token (default $ORDERS_API_TOKEN; none when both are empty)
//	--key KEY              create: the Idempotency-Key to use; pass the key of an earlier run to resume it
//	                       (default: a new UUID v4)
//	--timeout D            give up after D in all (default 2m)
//	--attempts N           at most N attempts (default 8)
//	--attempt-timeout D    give up on one attempt after D and retry (default 15s)
//	-q                     no progress on standard error, only errors
//
// The order file is one JSON object with sender, receiver and parcel, as in
// api/openapi.yaml; a member the API does not know is refused before anything
// is sent. It is sent re-encoded (compact, numbers in their shortest form),
// so the same file always makes the same request.
//
// Exit status:
//
//	0  the order was created (or had been, under this key: "replayed"), or read
//	1  any other failure (the order could not be printed)
//	2  usage: bad flags or arguments, or an order file that cannot be read or is not an order; nothing was sent
//	3  not retryable, and nothing was created: the API refused the request and would refuse it again (an invalid
//	   order, a key reused for a different order, 401, 403, 404 ...), and no attempt can have made the order.
//	   Fix the order (or the token) and create it again without --key.
//	4  the order may or may not exist: attempts or --timeout ran out, or orderctl was interrupted, while the API
//	   was unreachable or busy; or an attempt was refused (an expired token, say) after an earlier one may have
//	   made the order, or, with --key, after an earlier run may have. Fix what the message names, if anything,
//	   and run the same create again with --key KEY (the message gives the command): it returns the order if it
//	   was made, and makes it if not. Never create it again without --key: that could book it twice.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/parcelhq/orderservice/client"
)

// Exit statuses.
const (
	exitOK           = 0
	exitFailure      = 1
	exitUsage        = 2
	exitNotRetryable = 3
	exitGaveUp       = 4
)

// Environment variables.
const (
	envURL   = "ORDERS_API_URL"
	envToken = "ORDERS_API_TOKEN"
)

const defaultURL = "http://127.0.0.1:3000"

const usage = `usage:
  orderctl create [flags] ORDER.json   book the order in the file (- for standard input); prints it
  orderctl get [flags] ORDER_ID        print an order

flags:
  --url URL             the API's base URL (default $ORDERS_API_URL, else http://127.0.0.1:3000)
  --token TOKEN         bearer token (default $ORDERS_API_TOKEN)
  --key KEY             create: the Idempotency-Key; the key of an earlier run resumes it (default: new)
  --timeout D           give up after D in all (default 2m)
  --attempts N          at most N attempts (default 8)
  --attempt-timeout D   give up on one attempt after D and retry (default 15s)
  -q                    report only errors on standard error

exit status: 0 done, 2 usage, 3 not retryable (refused; nothing created: fix it, create it anew),
             4 gave up (the order may exist: fix what the message names, then rerun with --key KEY), 1 other
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// config is what the flags and the environment say.
type config struct {
	url, token, key  string
	timeout, attempt time.Duration
	attempts         int
	quiet            bool
}

// run is orderctl with its arguments (without the program name), its
// environment and its streams; it returns the exit status.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) int {
	var cfg config
	fs := flag.NewFlagSet("orderctl", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&cfg.url, "url", "", "")
	fs.StringVar(&cfg.token, "token", "", "")
	fs.StringVar(&cfg.key, "key", "", "")
	fs.DurationVar(&cfg.timeout, "timeout", 2*time.Minute, "")
	fs.IntVar(&cfg.attempts, "attempts", client.DefaultMaxAttempts, "")
	fs.DurationVar(&cfg.attempt, "attempt-timeout", client.DefaultAttemptTimeout, "")
	fs.BoolVar(&cfg.quiet, "q", false, "")
	pos, err := parseInterspersed(fs, args)
	if errors.Is(err, flag.ErrHelp) || (err == nil && len(pos) > 0 && pos[0] == "help") {
		fmt.Fprint(stdout, usage)
		return exitOK
	}
	if err != nil {
		return usageErr(stderr, err.Error())
	}
	if len(pos) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	cmd, pos := pos[0], pos[1:]
	switch cmd {
	case "create":
	case "get":
		if cfg.key != "" {
			return usageErr(stderr, "--key is for create only")
		}
	default:
		return usageErr(stderr, fmt.Sprintf("unknown command %q", cmd))
	}
	if len(pos) != 1 {
		what := map[string]string{"create": "one order file", "get": "one order id"}[cmd]
		return usageErr(stderr, fmt.Sprintf("%s takes %s, got %d arguments", cmd, what, len(pos)))
	}
	switch {
	case cfg.attempts < 1:
		return usageErr(stderr, "--attempts must be at least 1")
	case cfg.timeout <= 0 || cfg.attempt <= 0:
		return usageErr(stderr, "--timeout and --attempt-timeout must be positive")
	}
	if cfg.url == "" {
		cfg.url = getenv(envURL)
	}
	if cfg.url == "" {
		cfg.url = defaultURL
	}
	if cfg.token == "" {
		cfg.token = getenv(envToken)
	}

	say := func(format string, a ...any) {
		if !cfg.quiet {
			fmt.Fprintf(stderr, "orderctl: "+format+"\n", a...)
		}
	}
	opts := client.Options{
		MaxAttempts:    cfg.attempts,
		AttemptTimeout: cfg.attempt,
		OnRetry: func(r client.Retry) {
			say("attempt %d of %d: %s; retrying in %v", r.Attempt, cfg.attempts, failure(r), r.Wait.Round(time.Millisecond))
		},
		OnAttempt: func(a client.Attempt) {
			if a.Attempt == 1 && a.Key != "" && cfg.key == "" {
				// Before anything is sent, so that a killed run can be resumed.
				say("creating the order with Idempotency-Key %s (to resume: --key %s)", a.Key, shellQuote(a.Key))
			}
		},
	}
	if cfg.token != "" {
		opts.Token = client.StaticToken(cfg.token)
	}
	c, err := client.New(cfg.url, opts)
	if err != nil {
		return usageErr(stderr, strings.TrimPrefix(err.Error(), "client: "))
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.timeout)
	defer cancel()

	var order client.Order
	if cmd == "get" {
		order, err = c.Get(ctx, pos[0])
	} else {
		order, err = create(ctx, c, cfg, pos[0], stdin, say)
	}
	var uerr usageError
	switch {
	case errors.As(err, &uerr):
		return usageErr(stderr, uerr.msg)
	case err != nil:
		return fail(stderr, cmd, pos[0], err)
	}
	out, err := json.MarshalIndent(order, "", "  ")
	if err == nil {
		_, err = fmt.Fprintf(stdout, "%s\n", out)
	}
	if err != nil {
		fmt.Fprintf(stderr, "orderctl: writing the order: %v\n", err)
		return exitFailure
	}
	return exitOK
}

type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

// create reads the order in file (- for stdin) and books it.
func create(ctx context.Context, c *client.Client, cfg config, file string, stdin io.Reader, say func(string, ...any)) (client.Order, error) {
	req, err := readOrder(file, stdin)
	if err != nil {
		return client.Order{}, usageError{err.Error()}
	}
	var created client.Created
	if cfg.key == "" {
		// A key of its own, which no earlier run can have sent: a refusal
		// before any attempt may have made the order is "nothing created".
		created, err = c.Create(ctx, req)
	} else {
		if err := client.CheckKey(cfg.key); err != nil {
			return client.Order{}, usageError{"--key: " + err.Error()}
		}
		say("creating the order with Idempotency-Key %s", cfg.key)
		created, err = c.CreateWithKey(ctx, cfg.key, req)
	}
	if err != nil {
		return client.Order{}, err
	}
	if created.Replayed {
		say("order %s had already been created with this key (replayed; attempt %d)", created.Order.ID, created.Attempts)
	} else {
		say("order %s created (attempt %d)", created.Order.ID, created.Attempts)
	}
	return created.Order, nil
}

// readOrder decodes the order in file strictly: one JSON object, no member
// the API does not know.
func readOrder(file string, stdin io.Reader) (client.OrderRequest, error) {
	var b []byte
	var err error
	name := file
	if file == "-" {
		b, err = io.ReadAll(stdin)
		name = "standard input"
	} else {
		b, err = os.ReadFile(file)
	}
	if err != nil {
		return client.OrderRequest{}, err
	}
	var req client.OrderRequest
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(&req); err != nil {
		return client.OrderRequest{}, fmt.Errorf("%s is not an order: %v", name, err)
	}
	if _, err := d.Token(); err != io.EOF {
		return client.OrderRequest{}, fmt.Errorf("%s is not an order: more than one JSON value", name)
	}
	return req, nil
}

// failure describes a failed attempt in a few words: its status and
// problem type, what was wrong with an answer, or the network error.
func failure(r client.Retry) string {
	var apiErr *client.Error
	switch {
	case errors.As(r.Err, &apiErr):
		s := fmt.Sprintf("%d %s", apiErr.Status, apiErr.Title)
		if slug := strings.TrimPrefix(apiErr.Type, client.ProblemBase); slug != "" {
			s += " (" + slug + ")"
		}
		return s
	case r.Status != 0:
		return r.Err.Error() // a 2xx that is not an order: the error names its status
	}
	return "no answer: " + r.Err.Error()
}

// fail reports err in one line and returns its exit status.
func fail(stderr io.Writer, cmd, arg string, err error) int {
	msg := strings.ReplaceAll(err.Error(), "\n", " ")
	var ce *client.CallError
	switch {
	case errors.Is(err, client.ErrGaveUp):
		if errors.As(err, &ce) && ce.Key != "" {
			msg += fmt.Sprintf(" (resume: orderctl create --key %s %s)", shellQuote(ce.Key), shellQuote(arg))
		}
		fmt.Fprintf(stderr, "orderctl: %s\n", msg)
		return exitGaveUp
	case errors.Is(err, client.ErrNotRetryable):
		fmt.Fprintf(stderr, "orderctl: %s\n", msg)
		return exitNotRetryable
	}
	fmt.Fprintf(stderr, "orderctl: %s\n", msg)
	return exitFailure
}

// shellQuote returns s as one word of a POSIX shell command line: as it is
// when it holds only characters no shell treats specially, else in single
// quotes.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789@%+=:,./_-") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func usageErr(stderr io.Writer, msg string) int {
	fmt.Fprintf(stderr, "orderctl: %s (orderctl help for usage)\n", msg)
	return exitUsage
}

// parseInterspersed parses fs's flags wherever they are among args and
// returns the other arguments; everything after "--" is an argument.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var rest []string
	for i, a := range args {
		if a == "--" {
			args, rest = args[:i], args[i+1:]
			break
		}
	}
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return append(pos, rest...), nil
		}
		pos, args = append(pos, args[0]), args[1:]
	}
}
