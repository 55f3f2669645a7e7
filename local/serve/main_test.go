package main_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/parcelhq/orderservice/internal/ddb"
	"github.com/parcelhq/orderservice/internal/ddbtest"
	"github.com/parcelhq/orderservice/internal/idem"
	"github.com/parcelhq/orderservice/internal/lambdatest"
	"github.com/parcelhq/orderservice/internal/orders/orderstest"
	"github.com/parcelhq/orderservice/local/jwtauth"
	"github.com/parcelhq/orderservice/local/rie"
)

var (
	binDir    string
	buildOnce sync.Once
	buildErr  error
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "serve-test-")
	if err != nil {
		panic(err)
	}
	binDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// build compiles local/serve once per test binary, into a temporary directory.
func build(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(binDir, "serve")
	buildOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return bin
}

// env returns the environment without the variables serve reads, plus extra.
func env(extra ...string) []string {
	var out []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		switch name {
		case ddb.EndpointEnv, "API_ADDR", "ORDERS_TABLE", "IDEMPOTENCY_TABLE", "IDEMPOTENCY_TTL", "IDEMPOTENCY_MODE", "LOG_LEVEL":
			continue
		}
		out = append(out, kv)
	}
	return append(out, extra...)
}

var ready = regexp.MustCompile(`serve: listening on (http://127\.0\.0\.1:\d+)`)

// syncBuffer collects a process's output for the test to read while it runs.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// records returns the JSON lines of the output whose message is msg.
func (s *syncBuffer) records(msg string) []map[string]any {
	var out []map[string]any
	for _, line := range strings.Split(s.String(), "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) == nil && rec["message"] == msg {
			out = append(out, rec)
		}
	}
	return out
}

// server is one local/serve process with tables of its own.
type server struct {
	url, readyLine      string
	idemTable           string
	stdout, stderr      *syncBuffer
	cmd                 *exec.Cmd
	exited              chan error
	client              *dynamodb.Client
	ordersTable, suffix string
	// key is the key pair serve checks bearer tokens against (its
	// -jwt-key); bearer is a token of caller "alice" with both scopes,
	// which do sends.
	key    *jwtauth.Key
	bearer string
}

// token mints a bearer token for caller sub, as `make token` does.
func (s *server) token(t *testing.T, sub string, scopes ...string) string {
	t.Helper()
	tok, err := s.key.Mint(sub, scopes, 0)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// scopeOf is the caller scope of a token s.token minted for sub.
func scopeOf(sub string) string { return "jwt:" + jwtauth.Issuer + "|" + sub }

// The two runners: the handler in-process, and the real bootstrap under the
// Lambda Runtime Interface Emulator in a pool of environments.
const (
	inProcess = "in-process"
	underRIE  = "RIE pool"
)

var (
	bootstrapOnce sync.Once
	bootstrapBin  string
)

// startServe starts local/serve with runner and args, on a free port, with
// fresh tables, and waits (bounded) for its ready line.
func startServe(t *testing.T, runner string, args ...string) *server {
	t.Helper()
	client := ddbtest.Client(t) // fails with instructions when DynamoDB Local is not configured
	bin := build(t)
	if runner == underRIE {
		if !rie.Supported() {
			t.Skip("the Lambda Runtime Interface Emulator runs on linux only")
		}
		bootstrapOnce.Do(func() {
			// Built into the shared directory, so that it outlives the test
			// that built it.
			b := lambdatest.Build(t, "./functions/createorder")
			bootstrapBin = filepath.Join(binDir, "bootstrap")
			data, err := os.ReadFile(b)
			if err == nil {
				err = os.WriteFile(bootstrapBin, data, 0o755)
			}
			if err != nil {
				t.Fatal(err)
			}
		})
		if _, err := os.Stat(bootstrapBin); bootstrapBin == "" || err != nil {
			t.Fatal("the bootstrap could not be built (see the test that built it first)")
		}
		args = append([]string{"-bootstrap", bootstrapBin, "-rie", lambdatest.RIE(t)}, args...)
	}

	var suffix [4]byte
	_, _ = rand.Read(suffix[:])
	s := &server{
		suffix: hex.EncodeToString(suffix[:]), client: client,
		stdout: &syncBuffer{}, stderr: &syncBuffer{}, exited: make(chan error, 1),
	}
	s.ordersTable, s.idemTable = "serve-orders-"+s.suffix, "serve-idem-"+s.suffix
	keyFile := filepath.Join(t.TempDir(), "jwt-key.pem")
	var err error
	if s.key, err = jwtauth.LoadOrCreateKey(keyFile); err != nil {
		t.Fatal(err)
	}
	s.bearer = s.token(t, "alice", "orders/create", "orders/read")
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		for _, name := range []string{s.ordersTable, s.idemTable} {
			if err := ddb.DeleteTable(ctx, client, name); err != nil {
				t.Error(err)
			}
		}
	})

	s.cmd = exec.Command(bin, args...)
	s.cmd.Env = env(ddb.EndpointEnv+"="+ddbtest.Endpoint(), "API_ADDR=127.0.0.1:0",
		"ORDERS_TABLE="+s.ordersTable, "IDEMPOTENCY_TABLE="+s.idemTable, "LOG_LEVEL=INFO", jwtauth.KeyFileEnv+"="+keyFile,
		// The conformance table's in-progress conflict (409 while the first
		// attempt holds the key) is Lease mode's answer; in the default
		// Optimistic mode concurrent duplicates get the winner's answer
		// (the reliability suite runs both modes through serve).
		"IDEMPOTENCY_MODE=lease")
	stderr, err := s.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	s.cmd.Stdout = s.stdout
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.cmd.Process.Kill() }) // a no-op once it has exited

	base := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sent := false
		for sc.Scan() {
			s.stderr.Write([]byte(sc.Text() + "\n"))
			if m := ready.FindStringSubmatch(sc.Text()); m != nil && !sent {
				s.readyLine = sc.Text()
				base <- m[1]
				sent = true
			}
		}
		s.exited <- s.cmd.Wait()
	}()
	select {
	case s.url = <-base:
	case err := <-s.exited:
		t.Fatalf("serve exited before it was ready: %v\n%s", err, s.stderr)
	case <-time.After(90 * time.Second):
		t.Fatalf("serve did not print its ready line within 90s\n%s", s.stderr)
	}
	return s
}

var httpc = &http.Client{Timeout: 30 * time.Second}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) problemType() string {
	var p struct{ Type string }
	_ = json.Unmarshal(r.body, &p)
	return p.Type[strings.LastIndex(p.Type, "/")+1:]
}

func (r response) orderID() string {
	var o struct {
		OrderID string `json:"order_id"`
	}
	_ = json.Unmarshal(r.body, &o)
	return o.OrderID
}

func (s *server) do(t *testing.T, method, path, key, body string) response {
	t.Helper()
	req, _ := http.NewRequest(method, s.url+path, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	req.Header.Set("Authorization", "Bearer "+s.bearer)
	resp, err := httpc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{resp.StatusCode, resp.Header, b}
}

// TestConformance runs one table of the API's behaviours (create, replay,
// 422, 400, GET, unknown path, a storm of duplicates, a conflict) through
// local/serve with each runner, checks each runner's answers, and checks that
// both answered alike. Both run with -hold=1s, so that every create holds its
// key for a second: the conflict case needs it, and it makes the burst case
// deterministic (eight creates in flight at once).
func TestConformance(t *testing.T) {
	t.Parallel()
	outcomes := map[string][]string{}
	var mu sync.Mutex
	t.Run("each runner", func(t *testing.T) {
		for _, runner := range []string{inProcess, underRIE} {
			t.Run(runner, func(t *testing.T) {
				t.Parallel()
				s := startServe(t, runner, "-hold=1s")
				got := conformance(t, s)
				mu.Lock()
				outcomes[runner] = got
				mu.Unlock()
				authSession(t, s.client, s.url, s.ordersTable, s.idemTable,
					func(sub string, scopes ...string) string { return s.token(t, sub, scopes...) }, scopeOf)
				if runner == underRIE {
					poolBehaviour(t, s)
				}
				shutdown(t, s, runner)
			})
		}
	})
	t.Run("both runners answer alike", func(t *testing.T) {
		a, b := outcomes[inProcess], outcomes[underRIE]
		if a == nil || b == nil {
			t.Skip("a runner did not finish its cases")
		}
		if strings.Join(a, "\n") != strings.Join(b, "\n") {
			t.Errorf("in-process:\n  %s\nRIE pool:\n  %s", strings.Join(a, "\n  "), strings.Join(b, "\n  "))
		}
	})
}

// conformance runs the cases against s and returns one line per case
// summarising the answer (status, problem type, replay marker).
func conformance(t *testing.T, s *server) []string {
	var out []string
	note := func(format string, args ...any) { out = append(out, fmt.Sprintf(format, args...)) }
	key := "conf-" + s.suffix
	var created response

	t.Run("a new order is created: 201 with its Location", func(t *testing.T) {
		created = s.do(t, "POST", "/orders", key, orderstest.JSON)
		note("create: %d replayed=%q", created.status, created.header.Get("Idempotent-Replayed"))
		if created.status != http.StatusCreated || created.orderID() == "" {
			t.Fatalf("status %d, body %s", created.status, created.body)
		}
		if loc := created.header.Get("Location"); loc != "/orders/"+created.orderID() {
			t.Errorf("Location = %q", loc)
		}
		if created.header.Get("Idempotent-Replayed") != "" {
			t.Error("a first response carries Idempotent-Replayed")
		}
	})
	if created.orderID() == "" {
		t.FailNow()
	}
	t.Run("a retry replays it byte for byte, marked Idempotent-Replayed", func(t *testing.T) {
		r := s.do(t, "POST", "/orders", key, orderstest.JSON)
		note("replay: %d replayed=%q same=%v", r.status, r.header.Get("Idempotent-Replayed"), bytes.Equal(r.body, created.body))
		if r.status != http.StatusCreated || !bytes.Equal(r.body, created.body) || r.header.Get("Idempotent-Replayed") != "true" {
			t.Errorf("replay %d %q %s", r.status, r.header.Get("Idempotent-Replayed"), r.body)
		}
	})
	t.Run("the same key with another body is 422 idempotency-key-reused", func(t *testing.T) {
		r := s.do(t, "POST", "/orders", key, strings.Replace(orderstest.JSON, `"weight_kg":2.5`, `"weight_kg":3`, 1))
		note("reuse: %d %s", r.status, r.problemType())
		if r.status != http.StatusUnprocessableEntity || r.problemType() != "idempotency-key-reused" {
			t.Errorf("%d %s", r.status, r.body)
		}
	})
	t.Run("a create without a key is 400 idempotency-key-missing", func(t *testing.T) {
		r := s.do(t, "POST", "/orders", "", orderstest.JSON)
		note("no key: %d %s", r.status, r.problemType())
		if r.status != http.StatusBadRequest || r.problemType() != "idempotency-key-missing" {
			t.Errorf("%d %s", r.status, r.body)
		}
	})
	t.Run("the order reads back as created", func(t *testing.T) {
		r := s.do(t, "GET", created.header.Get("Location"), "", "")
		note("get: %d same=%v", r.status, bytes.Equal(r.body, created.body))
		if r.status != http.StatusOK || !bytes.Equal(r.body, created.body) {
			t.Errorf("%d %s", r.status, r.body)
		}
	})
	t.Run("an unknown path reaches the function through $default and gets problem+json 404", func(t *testing.T) {
		r := s.do(t, "GET", "/nope", "", "")
		note("unknown path: %d %s", r.status, r.header.Get("Content-Type"))
		if r.status != http.StatusNotFound || !strings.HasPrefix(r.header.Get("Content-Type"), "application/problem+json") {
			t.Errorf("%d %q", r.status, r.header.Get("Content-Type"))
		}
	})
	t.Run("a storm of 12 concurrent identical requests with a new key creates one order", func(t *testing.T) {
		skey := "storm-" + s.suffix
		var wg sync.WaitGroup
		results := make([]response, 12)
		gate := make(chan struct{})
		for i := range results {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-gate
				results[i] = s.do(t, "POST", "/orders", skey, orderstest.JSON)
			}()
		}
		close(gate)
		wg.Wait()
		ids := map[string]bool{}
		statuses := map[int]int{}
		for _, r := range results {
			statuses[r.status]++
			switch r.status {
			case http.StatusCreated:
				ids[r.orderID()] = true
			case http.StatusConflict:
				if r.problemType() != "idempotency-key-in-use" || r.header.Get("Retry-After") == "" {
					t.Errorf("409 %s, Retry-After %q", r.body, r.header.Get("Retry-After"))
				}
			default:
				t.Errorf("status %d: %s", r.status, r.body)
			}
		}
		after := s.do(t, "POST", "/orders", skey, orderstest.JSON)
		ids[after.orderID()] = true
		note("storm: orders=%d, then replay %d", len(ids), after.status)
		if len(ids) != 1 || after.status != http.StatusCreated {
			t.Errorf("the storm's answers name %d orders %v (statuses %v), then %d; want exactly one", len(ids), ids, statuses, after.status)
		}
	})
	t.Run("a retry while the first attempt holds its key gets 409 with Retry-After; the first then gets 201", func(t *testing.T) {
		hkey := "hold-" + s.suffix
		first := make(chan response, 1)
		go func() { first <- s.do(t, "POST", "/orders", hkey, orderstest.JSON) }()
		// Send the second only once the first holds the key: its record is
		// in the idempotency table (it then holds it for the -hold time).
		waitForRecord(t, s.client, s.idemTable, idem.RecordID(scopeOf("alice"), hkey))
		r := s.do(t, "POST", "/orders", hkey, orderstest.JSON)
		f := <-first
		note("conflict: second %d %s, first %d", r.status, r.problemType(), f.status)
		if r.status != http.StatusConflict || r.header.Get("Retry-After") == "" {
			t.Errorf("second request: %d, Retry-After %q; want 409 with Retry-After", r.status, r.header.Get("Retry-After"))
		}
		if f.status != http.StatusCreated {
			t.Errorf("first request: %d, want 201", f.status)
		}
	})
	return out
}

// poolBehaviour checks what only the pool does: the ready line names the
// emulator and the pool, concurrent requests are spread over several
// environments, each cold start is logged.
func poolBehaviour(t *testing.T, s *server) {
	t.Run("the ready line names the emulator and the pool", func(t *testing.T) {
		for _, want := range []string{"Lambda Runtime Interface Emulator", "pool of up to 4 execution environments", "CreateOrderFunction"} {
			if !strings.Contains(s.readyLine, want) {
				t.Errorf("ready line %q lacks %q", s.readyLine, want)
			}
		}
	})
	t.Run("8 concurrent creates are served by several environments, and each cold start is logged", func(t *testing.T) {
		// Each response's Apigw-Requestid names the function's request log
		// line, whose Lambda request_id names the pool's invocation record,
		// which names the environment.
		apiIDs := make([]string, 8)
		var wg sync.WaitGroup
		gate := make(chan struct{})
		for i := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-gate
				r := s.do(t, "POST", "/orders", fmt.Sprintf("burst-%s-%d", s.suffix, i), orderstest.JSON)
				if r.status != http.StatusCreated {
					t.Errorf("status %d: %s", r.status, r.body)
				}
				apiIDs[i] = r.header.Get("Apigw-Requestid")
			}()
		}
		close(gate)
		wg.Wait()
		served := map[string]int{} // environment -> burst invocations
		deadline := time.Now().Add(5 * time.Second)
		for {
			lambdaID := map[string]string{} // api request id -> Lambda request id
			for _, r := range s.stdout.records("request") {
				api, _ := r["api_request_id"].(string)
				lambdaID[api], _ = r["request_id"].(string)
			}
			envOf := map[string]string{} // Lambda request id -> environment
			for _, r := range s.stdout.records("invocation") {
				id, _ := r["request_id"].(string)
				envOf[id], _ = r["environment"].(string)
			}
			served = map[string]int{}
			n := 0
			for _, api := range apiIDs {
				if env := envOf[lambdaID[api]]; env != "" {
					served[env]++
					n++
				}
			}
			if n == 8 || time.Now().After(deadline) {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		total := 0
		for _, n := range served {
			total += n
		}
		if total != 8 || len(served) < 2 || len(served) > 4 {
			t.Errorf("the burst's invocations were served by environments %v; want all 8 found, over 2 to 4 environments", served)
		}
		t.Logf("8 concurrent creates served by %v", served)
		envs := map[string]bool{}
		for _, r := range s.stdout.records("invocation") {
			if r["cold_start"] == true {
				env, _ := r["environment"].(string)
				if d, _ := r["init_duration_ms"].(float64); d <= 0 || envs[env] {
					t.Errorf("cold start record %v: want one per environment, with its init duration", r)
				}
				envs[env] = true
			}
		}
		for env := range served {
			if !envs[env] {
				t.Errorf("environment %s served without a logged cold start", env)
			}
		}
	})
}

// shutdown sends SIGINT and checks that serve exits 0 promptly and, with the
// pool, that no environment outlives it.
func shutdown(t *testing.T, s *server, runner string) {
	t.Run("SIGINT shuts it down promptly with exit status 0", func(t *testing.T) {
		if err := s.cmd.Process.Signal(syscall.SIGINT); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-s.exited:
			if err != nil {
				t.Fatalf("exit: %v\nstderr:\n%s", err, s.stderr)
			}
		case <-time.After(15 * time.Second):
			t.Fatal("serve still running 15s after SIGINT")
		}
		if runner != underRIE {
			return
		}
		var pids []int
		for _, r := range s.stdout.records("environment started") {
			if pid, ok := r["pid"].(float64); ok {
				pids = append(pids, int(pid))
			}
		}
		sort.Ints(pids)
		if len(pids) == 0 {
			t.Fatal("no environment was logged as started")
		}
		for _, pid := range pids {
			if syscall.Kill(pid, 0) == nil {
				t.Errorf("emulator %d outlived serve", pid)
			}
		}
	})
}

// waitForRecord polls table with consistent reads, every 20 ms for up to
// 30 s, until the idempotency record id exists.
func waitForRecord(t *testing.T, client *dynamodb.Client, table, id string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	var lastErr error // of a read that failed before the deadline
	for {
		out, err := client.GetItem(ctx, &dynamodb.GetItemInput{
			TableName: aws.String(table), ConsistentRead: aws.Bool(true),
			Key: map[string]types.AttributeValue{idem.AttrID: &types.AttributeValueMemberS{Value: id}},
		})
		switch {
		case err == nil && out.Item != nil:
			return
		case ctx.Err() != nil:
			t.Fatalf("record %s did not appear in %s within 30s (last read error: %v)", id, table, lastErr)
		case err != nil:
			lastErr = err
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
		}
	}
}

func TestServeRefusesToRunWithoutDynamoDBLocal(t *testing.T) {
	t.Parallel()
	bin := build(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin)
	cmd.Env = env("API_ADDR=127.0.0.1:0")
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() == 0 {
		t.Fatalf("serve without %s: err = %v, want a non-zero exit\n%s", ddb.EndpointEnv, err, out)
	}
	if !strings.Contains(string(out), ddb.EndpointEnv) || !strings.Contains(string(out), "make local") {
		t.Errorf("message does not say what to do: %s", out)
	}
}

// TestServeTakesItsRoutesFromTheTemplate serves an edited copy of
// template.yaml with each runner: a route added there reaches the function,
// a route removed there (the $default catch-all) no longer does, and the
// timeout and the pool's limit (ReservedConcurrentExecutions) are the
// template's, all with no code change.
func TestServeTakesItsRoutesFromTheTemplate(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile(filepath.Join("..", "..", "template.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	tpl := string(b)
	edits := []struct{ old, new string }{
		{"    Timeout: 10\n", "    Timeout: 7\n"},
		{"      CodeUri: .\n", "      CodeUri: .\n      ReservedConcurrentExecutions: 2\n"},
		{"        CatchAll:\n          Type: HttpApi\n          Properties:\n            ApiId: !Ref OrdersApi\n            PayloadFormatVersion: \"2.0\"\n",
			"        Ping:\n          Type: HttpApi\n          Properties:\n            ApiId: !Ref OrdersApi\n            Method: GET\n            Path: /ping\n            PayloadFormatVersion: \"2.0\"\n"},
	}
	for _, e := range edits {
		if !strings.Contains(tpl, e.old) {
			t.Fatalf("template.yaml no longer contains %q; update this test's edit", e.old)
		}
		tpl = strings.Replace(tpl, e.old, e.new, 1)
	}
	path := filepath.Join(t.TempDir(), "template.yaml")
	if err := os.WriteFile(path, []byte(tpl), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, runner := range []string{inProcess, underRIE} {
		t.Run(runner, func(t *testing.T) {
			t.Parallel()
			s := startServe(t, runner, "-template", path)
			t.Run("the ready line names the template's timeout and routes", func(t *testing.T) {
				if !strings.Contains(s.readyLine, "(3 routes, timeout 7s, 256 MB)") {
					t.Errorf("ready line %q", s.readyLine)
				}
				if runner == underRIE && !strings.Contains(s.readyLine, "pool of up to 2 execution environments (beyond them a request is throttled at once)") {
					t.Errorf("ready line %q does not take the pool's limit from ReservedConcurrentExecutions, throttling beyond it at once as Lambda does", s.readyLine)
				}
			})
			t.Run("the added route reaches the function, which answers problem+json", func(t *testing.T) {
				// The added route has no security in OrdersApi's definition,
				// so no authorizer runs for it: the function itself refuses
				// the unidentified caller (403 idempotency-caller-unknown),
				// which API Gateway never answers.
				r := s.do(t, "GET", "/ping", "", "")
				if r.status != http.StatusForbidden || r.problemType() != "idempotency-caller-unknown" || !strings.HasPrefix(r.header.Get("Content-Type"), "application/problem+json") {
					t.Errorf("%d %q %s", r.status, r.header.Get("Content-Type"), r.body)
				}
			})
			t.Run("without the $default route an unknown path gets API Gateway's own 404", func(t *testing.T) {
				r := s.do(t, "GET", "/nope", "", "")
				if r.status != http.StatusNotFound || strings.TrimSpace(string(r.body)) != `{"message":"Not Found"}` {
					t.Errorf("%d %s", r.status, r.body)
				}
			})
			t.Run("the declared routes still work", func(t *testing.T) {
				if r := s.do(t, "POST", "/orders", "tpl-"+s.suffix, orderstest.JSON); r.status != http.StatusCreated {
					t.Errorf("%d %s", r.status, r.body)
				}
			})
		})
	}
}

// TestServeThrottlesBeyondThePoolsLimit: with every environment busy and no
// queue wait, a request is throttled as Lambda throttles a function at its
// concurrency limit, and answered as API Gateway answers for one (500, its
// internal error body); the request holding the environment is unaffected.
func TestServeThrottlesBeyondThePoolsLimit(t *testing.T) {
	t.Parallel()
	s := startServe(t, underRIE, "-max-environments=1", "-queue-wait=0", "-hold=2s")
	if !strings.Contains(s.readyLine, "pool of up to 1 execution environments (beyond them a request is throttled at once)") {
		t.Errorf("ready line %q does not say what happens beyond the limit", s.readyLine)
	}
	key := "throttle-" + s.suffix
	first := make(chan response, 1)
	go func() { first <- s.do(t, "POST", "/orders", key, orderstest.JSON) }()
	// The first create holds the only environment once its key is taken.
	waitForRecord(t, s.client, s.idemTable, idem.RecordID(scopeOf("alice"), key))
	r := s.do(t, "POST", "/orders", key+"-other", orderstest.JSON)
	if r.status != http.StatusInternalServerError || strings.TrimSpace(string(r.body)) != `{"message":"Internal Server Error"}` {
		t.Errorf("the request beyond the limit: %d %s, want 500 {\"message\":\"Internal Server Error\"}", r.status, r.body)
	}
	if f := <-first; f.status != http.StatusCreated {
		t.Errorf("the request holding the environment: %d %s, want 201", f.status, f.body)
	}
	var refused int
	for _, rec := range s.stdout.records("invocation refused") {
		if rec["error_code"] == "TooManyRequestsException" {
			refused++
		}
	}
	if refused != 1 {
		t.Errorf("%d throttled invocations logged with TooManyRequestsException, want 1:\n%s", refused, s.stdout)
	}
}
