package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parcelhq/orderservice/client"
	"github.com/parcelhq/orderservice/internal/apitest"
	"github.com/parcelhq/orderservice/internal/orders/orderstest"
)

// gateway stands in front of the real API (which checks tokens as the
// deployed one does) and fails on purpose: the first create of an order
// whose description starts with "flaky" gets a 503, every create of one
// starting with "down" does; of one starting with "lost", the first is
// passed on and its answer dropped, the second gets API Gateway's 401 (as
// for a token that expired meanwhile). token is a token of caller
// "orderctl" with the default scopes.
type gateway struct {
	api   *apitest.API
	URL   string
	token string
	mu    sync.Mutex
	seen  map[string]int
	proxy *httputil.ReverseProxy
}

func newGateway(t *testing.T) *gateway {
	api := apitest.Start(t)
	u, _ := url.Parse(api.URL)
	g := &gateway{api: api, token: api.Token(t, "orderctl"), seen: map[string]int{}, proxy: httputil.NewSingleHostReverseProxy(u)}
	srv := httptest.NewServer(g) // 127.0.0.1
	t.Cleanup(srv.Close)
	g.URL = srv.URL
	return g
}

func (g *gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(body))
	var o client.OrderRequest
	_ = json.Unmarshal(body, &o)
	tag := o.Parcel.Description
	g.mu.Lock()
	g.seen[tag]++
	n := g.seen[tag]
	g.mu.Unlock()
	switch {
	case strings.HasPrefix(tag, "down") || (strings.HasPrefix(tag, "flaky") && n == 1):
		writeJSON(w, http.StatusServiceUnavailable, `{"message":"Service Unavailable"}`)
		return
	case strings.HasPrefix(tag, "lost") && n == 1:
		g.proxy.ServeHTTP(httptest.NewRecorder(), r) // the order is made
		panic(http.ErrAbortHandler)                  // and its answer lost
	case strings.HasPrefix(tag, "lost") && n == 2:
		writeJSON(w, http.StatusUnauthorized, `{"message":"Unauthorized"}`)
		return
	}
	g.proxy.ServeHTTP(w, r)
}

func writeJSON(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body)
}

// orderFile writes the example order with description tag to a file.
func orderFile(t *testing.T, tag string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "order.json")
	if err := os.WriteFile(path, []byte(orderstest.WithDescription(tag)), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

type result struct {
	code           int
	stdout, stderr string
}

// orderctl runs the command with env as its whole environment.
func orderctl(t *testing.T, env map[string]string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	code := run(ctx, args, func(k string) string { return env[k] }, strings.NewReader(""), &stdout, &stderr)
	return result{code, stdout.String(), stderr.String()}
}

func (r result) order(t *testing.T) client.Order {
	t.Helper()
	var o client.Order
	if err := json.Unmarshal([]byte(r.stdout), &o); err != nil || o.ID == "" {
		t.Fatalf("stdout is not an order (%v): %q; stderr %q", err, r.stdout, r.stderr)
	}
	return o
}

// creates returns how many creates of tag reached the gateway.
func (g *gateway) creates(tag string) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.seen[tag]
}

func (g *gateway) ordersOf(t *testing.T, tag string) []string {
	var ids []string
	for id, d := range g.api.Orders(t) {
		if d == tag {
			ids = append(ids, id)
		}
	}
	return ids
}

func TestCreate(t *testing.T) {
	t.Parallel()
	g := newGateway(t)
	env := map[string]string{envURL: g.URL, envToken: g.token}

	t.Run("create prints the order as JSON and exits 0", func(t *testing.T) {
		t.Parallel()
		r := orderctl(t, env, "create", orderFile(t, "plain"))
		if r.code != exitOK {
			t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
		}
		o := r.order(t)
		if o.Parcel.Description != "plain" || o.Price.Amount != "18.45" {
			t.Errorf("printed %+v", o)
		}
		if ids := g.ordersOf(t, "plain"); len(ids) != 1 || ids[0] != o.ID {
			t.Errorf("table holds %v, want [%s]", ids, o.ID)
		}
		if !strings.Contains(r.stderr, "Idempotency-Key ") {
			t.Errorf("stderr %q does not name the key", r.stderr)
		}
	})

	t.Run("each retry is reported on stderr with its attempt, status and wait", func(t *testing.T) {
		t.Parallel()
		r := orderctl(t, env, "create", orderFile(t, "flaky"))
		if r.code != exitOK {
			t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
		}
		if !strings.Contains(r.stderr, "attempt 1 of 8: 503 Service Unavailable; retrying in ") {
			t.Errorf("stderr %q does not report the retry", r.stderr)
		}
		if ids := g.ordersOf(t, "flaky"); len(ids) != 1 {
			t.Errorf("table holds %v, want one order", ids)
		}
	})

	t.Run("--key resumes: the same key and order print the same order, replayed", func(t *testing.T) {
		t.Parallel()
		file := orderFile(t, "resumed")
		key := client.NewKey()
		first := orderctl(t, env, "create", "--key", key, file)
		again := orderctl(t, env, "create", file, "--key", key) // flags after the file too
		if first.code != exitOK || again.code != exitOK {
			t.Fatalf("exits %d, %d; stderr %q, %q", first.code, again.code, first.stderr, again.stderr)
		}
		if first.stdout != again.stdout {
			t.Errorf("resumed create printed\n%s\nwant\n%s", again.stdout, first.stdout)
		}
		if !strings.Contains(again.stderr, "replayed") {
			t.Errorf("stderr %q does not say the answer was replayed", again.stderr)
		}
		if ids := g.ordersOf(t, "resumed"); len(ids) != 1 {
			t.Errorf("table holds %v, want one order", ids)
		}
	})

	t.Run("--key with a different order exits 3 and says the key was reused", func(t *testing.T) {
		t.Parallel()
		key := client.NewKey()
		if r := orderctl(t, env, "create", "--key", key, orderFile(t, "reuse-a")); r.code != exitOK {
			t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
		}
		r := orderctl(t, env, "-q", "create", "--key", key, orderFile(t, "reuse-b"))
		wantError(t, r, exitNotRetryable, "already used for a different request")
		if ids := g.ordersOf(t, "reuse-b"); len(ids) != 0 {
			t.Errorf("table holds %v for the second order", ids)
		}
	})

	t.Run("an invalid order exits 3 with the field in the error", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(t.TempDir(), "bad.json")
		_ = os.WriteFile(path, []byte(strings.Replace(orderstest.JSON, `"4000"`, `"40000"`, 1)), 0o600)
		wantError(t, orderctl(t, env, "create", "-q", path), exitNotRetryable, "400 invalid-order")
	})

	t.Run("giving up exits 4 with the key to resume with", func(t *testing.T) {
		t.Parallel()
		file := orderFile(t, "down")
		r := orderctl(t, env, "create", "-q", "--attempts", "2", file)
		wantError(t, r, exitGaveUp, "gave up after 2 attempts (no attempts left)")
		if !strings.Contains(r.stderr, "orderctl create --key ") || !strings.Contains(r.stderr, file) {
			t.Errorf("stderr %q does not say how to resume", r.stderr)
		}
	})

	t.Run("a 401 after an attempt whose answer was lost exits 4 with the command that resumes it", func(t *testing.T) {
		t.Parallel()
		file := orderFile(t, "lost")
		r := orderctl(t, env, "create", file)
		wantError(t, r, exitGaveUp, "once that is fixed, resume with the same key")
		if !strings.Contains(r.stderr, "attempt 2 was refused, and attempt 1 may have made the order") || strings.Contains(r.stderr, "without --key") {
			t.Errorf("stderr %q does not say that attempt 1 may have made the order", r.stderr)
		}
		resume := resumeCommand(t, r.stderr)
		if len(resume) != 5 || resume[4] != file {
			t.Fatalf("resume command %q, want orderctl create --key KEY %s", resume, file)
		}
		again := orderctl(t, env, resume[1:]...)
		if again.code != exitOK || !strings.Contains(again.stderr, "replayed") {
			t.Fatalf("the resume command: exit %d, stderr %q; want the replay", again.code, again.stderr)
		}
		if ids := g.ordersOf(t, "lost"); len(ids) != 1 || ids[0] != again.order(t).ID {
			t.Errorf("table holds %v, want the one order the resume printed", ids)
		}
	})

	t.Run("--key refused with 401 exits 4: an earlier run may have made the order", func(t *testing.T) {
		t.Parallel()
		file := orderFile(t, "resumed with a bad token")
		key := "order 42; batch 7" // printed shell-quoted
		r := orderctl(t, map[string]string{envURL: g.URL, envToken: "not-a-jwt"}, "create", "-q", "--key", key, file)
		wantError(t, r, exitGaveUp, "get a new token")
		if want := "(resume: orderctl create --key 'order 42; batch 7' " + file + ")"; !strings.Contains(r.stderr, want) {
			t.Errorf("stderr %q lacks %q", r.stderr, want)
		}
		if again := orderctl(t, env, "create", "-q", "--key", key, file); again.code != exitOK {
			t.Fatalf("with a valid token: exit %d, stderr %q", again.code, again.stderr)
		}
		if ids := g.ordersOf(t, "resumed with a bad token"); len(ids) != 1 {
			t.Errorf("table holds %v, want one order", ids)
		}
	})

	for _, tc := range []struct {
		name, token, want string
	}{
		{"without a token the gateway's 401 exits 3", "", "get a new token: 401"},
		{"with a token the API did not issue the gateway's 401 exits 3", "not-a-jwt", "get a new token: 401"},
		{"with a token without orders/create the gateway's 403 exits 3", g.api.Token(t, "orderctl", "orders/read"), "(orders/create); use a token with it: 403"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tag := "refused: " + tc.name
			r := orderctl(t, map[string]string{envURL: g.URL, envToken: tc.token}, "create", "-q", orderFile(t, tag))
			wantError(t, r, exitNotRetryable, tc.want)
			if strings.Contains(r.stderr, "retrying") {
				t.Errorf("stderr %q reports a retry", r.stderr)
			}
			if n := g.creates(tag); n != 1 {
				t.Errorf("%d requests sent, want 1", n)
			}
			if ids := g.ordersOf(t, tag); len(ids) != 0 {
				t.Errorf("table holds %v", ids)
			}
		})
	}

	t.Run("--token and --url override the environment", func(t *testing.T) {
		t.Parallel()
		r := orderctl(t, map[string]string{envURL: "http://127.0.0.1:1", envToken: "wrong"},
			"create", "--url", g.URL, "--token", g.token, orderFile(t, "flags"))
		if r.code != exitOK {
			t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
		}
	})

	t.Run("standard input is read for -", func(t *testing.T) {
		t.Parallel()
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), []string{"create", "-"}, func(k string) string { return env[k] },
			strings.NewReader(orderstest.WithDescription("stdin")), &stdout, &stderr)
		if code != exitOK {
			t.Fatalf("exit %d, stderr %q", code, stderr.String())
		}
		if ids := g.ordersOf(t, "stdin"); len(ids) != 1 {
			t.Errorf("table holds %v", ids)
		}
	})
}

func TestGet(t *testing.T) {
	t.Parallel()
	g := newGateway(t)
	env := map[string]string{envURL: g.URL, envToken: g.token}
	created := orderctl(t, env, "create", "-q", orderFile(t, "to-read"))
	if created.code != exitOK {
		t.Fatalf("create: exit %d, %q", created.code, created.stderr)
	}

	t.Run("get prints the order as create did", func(t *testing.T) {
		r := orderctl(t, env, "get", created.order(t).ID)
		if r.code != exitOK || r.stdout != created.stdout {
			t.Errorf("exit %d, printed\n%s\nwant\n%s", r.code, r.stdout, created.stdout)
		}
	})
	t.Run("an unknown order exits 3", func(t *testing.T) {
		wantError(t, orderctl(t, env, "get", "ord_aaaaaaaaaaaaaaaaaaaaaaaaaa"), exitNotRetryable, "404 order-not-found")
	})
}

func TestUsageErrorsExit2AndSendNothing(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	notJSON := filepath.Join(dir, "not.json")
	_ = os.WriteFile(notJSON, []byte("sender: Ann"), 0o600)
	typo := filepath.Join(dir, "typo.json")
	_ = os.WriteFile(typo, []byte(strings.Replace(orderstest.JSON, "weight_kg", "weigth_kg", 1)), 0o600)
	two := filepath.Join(dir, "two.json")
	_ = os.WriteFile(two, []byte(orderstest.JSON+orderstest.JSON), 0o600)
	good := filepath.Join(dir, "good.json")
	_ = os.WriteFile(good, []byte(orderstest.JSON), 0o600)

	// Nothing listens at this URL: a request sent would exit 4, not 2.
	env := map[string]string{envURL: "http://127.0.0.1:1"}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no command", nil, "usage:"},
		{"an unknown command", []string{"delete", "x"}, `unknown command "delete"`},
		{"create without a file", []string{"create"}, "create takes one order file, got 0"},
		{"create with two files", []string{"create", good, good}, "got 2"},
		{"a file that does not exist", []string{"create", filepath.Join(dir, "missing.json")}, "no such file"},
		{"a file that is not JSON", []string{"create", notJSON}, "is not an order"},
		{"a file with a misspelt member", []string{"create", typo}, `unknown field "weigth_kg"`},
		{"a file with two orders", []string{"create", two}, "more than one JSON value"},
		{"a key the API would refuse", []string{"create", "--key", "a,b", good}, "--key: the idempotency key holds a comma"},
		{"--key on get", []string{"get", "--key", "k", "ord_x"}, "--key is for create only"},
		{"an unknown flag", []string{"create", "--retries", "3", good}, "flag provided but not defined: -retries"},
		{"get without an id", []string{"get"}, "get takes one order id"},
		{"a URL that is not http", []string{"create", "--url", "ftp://x", good}, "not an http:// or https:// URL"},
		{"no attempts", []string{"create", "--attempts", "0", good}, "--attempts must be at least 1"},
	} {
		t.Run(tc.name+" exits 2", func(t *testing.T) {
			wantError(t, orderctl(t, env, tc.args...), exitUsage, tc.want)
		})
	}
}

// resumeCommand returns the words of the "(resume: orderctl ...)" command
// in stderr, its single-quoted words unquoted.
func resumeCommand(t *testing.T, stderr string) []string {
	t.Helper()
	_, after, ok := strings.Cut(stderr, "(resume: ")
	cmd, _, ok2 := strings.Cut(after, ")")
	if !ok || !ok2 {
		t.Fatalf("stderr %q names no resume command", stderr)
	}
	var words []string
	for _, w := range strings.Fields(cmd) { // no test key or path has spaces
		words = append(words, strings.Trim(w, "'"))
	}
	return words
}

func wantError(t *testing.T, r result, code int, want string) {
	t.Helper()
	if r.code != code {
		t.Errorf("exit %d, want %d; stderr %q", r.code, code, r.stderr)
	}
	if r.stdout != "" {
		t.Errorf("stdout %q, want nothing", r.stdout)
	}
	last := strings.TrimSpace(r.stderr)
	if i := strings.LastIndex(last, "\n"); i >= 0 && code != exitUsage {
		last = last[i+1:]
	}
	if !strings.Contains(last, want) {
		t.Errorf("stderr %q lacks %q", r.stderr, want)
	}
	if code != exitUsage && !strings.HasPrefix(last, "orderctl: ") {
		t.Errorf("error line %q does not start with orderctl:", last)
	}
}

// TestBinaryExitStatus runs the built command, so that the exit statuses are
// those a shell sees.
func TestBinaryExitStatus(t *testing.T) {
	t.Parallel()
	bin := filepath.Join(t.TempDir(), "orderctl")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	g := newGateway(t)
	for _, tc := range []struct {
		name string
		args []string
		want int
	}{
		{"a create exits 0", []string{"create", orderFile(t, "binary")}, exitOK},
		{"an unknown order exits 3", []string{"get", "ord_aaaaaaaaaaaaaaaaaaaaaaaaaa"}, exitNotRetryable},
		{"a create that gives up exits 4", []string{"create", "--attempts", "2", orderFile(t, "down-binary")}, exitGaveUp},
		{"no arguments exit 2", nil, exitUsage},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(bin, tc.args...)
			cmd.Env = []string{envURL + "=" + g.URL, envToken + "=" + g.token}
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			err := cmd.Run()
			code := 0
			if ee, ok := err.(*exec.ExitError); ok {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if code != tc.want {
				t.Errorf("exit %d, want %d; stderr %q", code, tc.want, stderr.String())
			}
		})
	}
}

func TestShellQuote(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"3f0c4b1e-8d2a-4c57-9e1b-2f6a7d9c0b13", "3f0c4b1e-8d2a-4c57-9e1b-2f6a7d9c0b13"},
		{"/tmp/order.json", "/tmp/order.json"},
		{"order 42", "'order 42'"},
		{"it's", `'it'\''s'`},
		{"$HOME;rm", "'$HOME;rm'"},
		{"", "''"},
	} {
		t.Run(tc.in+" is quoted as "+tc.want, func(t *testing.T) {
			if got := shellQuote(tc.in); got != tc.want {
				t.Errorf("shellQuote(%q) = %s, want %s", tc.in, got, tc.want)
			}
			out, err := exec.Command("sh", "-c", "printf %s "+shellQuote(tc.in)).Output()
			if err != nil || string(out) != tc.in {
				t.Errorf("sh reads %s as %q (%v), want %q", shellQuote(tc.in), out, err, tc.in)
			}
		})
	}
}
