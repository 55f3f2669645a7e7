// Package reliability_test proves the order service's idempotency under load,
// crashes, DynamoDB faults and bad input, by running the real service binaries
// (local/serve, and reliability/internal/crashserve built with the crashtest
// tag) as OS processes on 127.0.0.1 against DynamoDB Local, each with tables
// of its own. `go test` runs the short versions; SOAK=1 the long ones
// (`make soak`). Like `make local`, the servers' gateway requires bearer
// tokens (AUTH_MODE=jwt); every request is sent as one caller, callerSub,
// with a token signed by the suite's own key pair.
package reliability_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/parcelhq/orderservice/functions/createorder/app"
	"github.com/parcelhq/orderservice/internal/ddb"
	"github.com/parcelhq/orderservice/internal/ddbtest"
	"github.com/parcelhq/orderservice/internal/orders/orderstest"
	"github.com/parcelhq/orderservice/local/jwtauth"
)

// soak reports whether the long versions run (SOAK=1, `make soak`).
var soak = os.Getenv("SOAK") != ""

// scale returns short for `go test` and long under SOAK=1.
func scale(short, long int) int {
	if soak {
		return long
	}
	return short
}

var binDir string

// callerSub is the subject of the suite's token: its requests' caller.
const callerSub = "reliability-client"

// otherSub is a second caller, for the storm's shared hot key.
const otherSub = "reliability-client-b"

var (
	keyFile     string // the servers' LOCAL_JWT_KEY
	bearer      string // "Bearer " + a token for callerSub, valid for the whole run
	otherBearer string // the same for otherSub
	callerScope = "jwt:" + jwtauth.Issuer + "|" + callerSub
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "reliability-")
	if err != nil {
		panic(err)
	}
	binDir = dir
	keyFile = filepath.Join(dir, "jwt-key.pem")
	key, err := jwtauth.LoadOrCreateKey(keyFile)
	if err != nil {
		panic(err)
	}
	tok, err := key.Mint(callerSub, []string{app.ScopeCreateOrders, app.ScopeReadOrders}, 3*time.Hour) // make soak runs up to 80 min
	if err != nil {
		panic(err)
	}
	bearer = "Bearer " + tok
	tok, err = key.Mint(otherSub, []string{app.ScopeCreateOrders, app.ScopeReadOrders}, 3*time.Hour)
	if err != nil {
		panic(err)
	}
	otherBearer = "Bearer " + tok
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

type built struct {
	once sync.Once
	path string
	err  error
}

var (
	buildsMu sync.Mutex
	builds   = map[string]*built{}
)

// binary builds the main package pkg (relative to the module root) with tags,
// once per test binary, and returns its path.
func binary(t *testing.T, pkg string, tags ...string) string {
	t.Helper()
	key := pkg + "|" + strings.Join(tags, ",")
	buildsMu.Lock()
	b := builds[key]
	if b == nil {
		b = &built{}
		builds[key] = b
	}
	buildsMu.Unlock()
	b.once.Do(func() {
		b.path = filepath.Join(binDir, strings.NewReplacer("/", "_", ".", "_").Replace(key))
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		args := []string{"build", "-o", b.path}
		if len(tags) > 0 {
			args = append(args, "-tags", strings.Join(tags, ","))
		}
		cmd := exec.CommandContext(ctx, "go", append(args, pkg)...)
		cmd.Dir = ".."
		if out, err := cmd.CombinedOutput(); err != nil {
			b.err = fmt.Errorf("go build %s: %v\n%s", pkg, err, out)
		}
	})
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.path
}

func serveBin(t *testing.T) string { return binary(t, "./local/serve") }
func crashBin(t *testing.T) string {
	return binary(t, "./reliability/internal/crashserve", "crashtest")
}

// tables are one service instance's tables, made for the test.
type tables struct {
	Orders, Idem string
}

func newTables(t *testing.T) tables {
	t.Helper()
	cfg := app.Config{OrdersTable: "rel-orders", IdempotencyTable: "rel-idem"}
	var tb tables
	for _, def := range cfg.Tables() {
		made := ddbtest.Table(t, def)
		switch def.Name {
		case cfg.OrdersTable:
			tb.Orders = made.Name
		case cfg.IdempotencyTable:
			tb.Idem = made.Name
		}
	}
	return tb
}

func (tb tables) env(mode string) []string {
	return []string{app.EnvOrdersTable + "=" + tb.Orders, app.EnvIdempotencyTable + "=" + tb.Idem, app.EnvIdempotencyMode + "=" + mode}
}

// cleanEnv is the test's environment without anything the servers read.
func cleanEnv() []string {
	var out []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if name == ddb.EndpointEnv || name == "API_ADDR" || strings.HasPrefix(name, "CRASH") || app.EnvOrdersTable == name ||
			name == app.EnvIdempotencyTable || name == app.EnvIdempotencyTTL || name == app.EnvIdempotencyMode || name == app.EnvLogLevel ||
			name == app.EnvAuthMode || name == jwtauth.KeyFileEnv {
			continue
		}
		out = append(out, kv)
	}
	return append(out, "AWS_ACCESS_KEY_ID=local", "AWS_SECRET_ACCESS_KEY=local", "AWS_REGION=us-east-1", "LOG_LEVEL=ERROR",
		jwtauth.KeyFileEnv+"="+keyFile)
}

// proc is a running server process.
type proc struct {
	URL    string
	cmd    *exec.Cmd
	exited chan struct{}
	state  *os.ProcessState
	mu     sync.Mutex
	log    bytes.Buffer
}

var readyLine = regexp.MustCompile(`listening on (http://127\.0\.0\.1:\d+)`)

// start runs bin with the given extra environment on a free 127.0.0.1 port,
// waits (bounded) for its ready line and kills it when t ends.
func start(t *testing.T, bin string, env ...string) *proc {
	t.Helper()
	cmd := exec.Command(bin)
	cmd.Env = append(append(cleanEnv(), "API_ADDR=127.0.0.1:0", ddb.EndpointEnv+"="+ddbtest.Endpoint()), env...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, exited: make(chan struct{})}
	base := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sent := false
		for sc.Scan() {
			p.mu.Lock()
			if p.log.Len() < 64<<10 {
				p.log.WriteString(sc.Text() + "\n")
			}
			p.mu.Unlock()
			if m := readyLine.FindStringSubmatch(sc.Text()); m != nil && !sent {
				base <- m[1]
				sent = true
			}
		}
		_ = cmd.Wait()
		p.state = cmd.ProcessState
		close(p.exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill() // no-op once exited
		<-p.exited
	})
	select {
	case p.URL = <-base:
	case <-p.exited:
		t.Fatalf("%s exited before it was ready: %v\n%s", filepath.Base(bin), p.state, p.logs())
	case <-time.After(60 * time.Second):
		t.Fatalf("%s not ready after 60s\n%s", filepath.Base(bin), p.logs())
	}
	return p
}

func (p *proc) logs() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.log.String()
}

// waitKilled waits (bounded) for p to exit and reports whether SIGKILL ended it.
func (p *proc) waitKilled(t *testing.T) bool {
	t.Helper()
	select {
	case <-p.exited:
	case <-time.After(30 * time.Second):
		t.Fatalf("process did not exit within 30s\n%s", p.logs())
	}
	ws, ok := p.state.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL
}

// orderBody is a valid create request whose parcel description carries tag,
// so each key's request (and order) is distinguishable.
func orderBody(tag string) string { return orderstest.WithDescription(tag) }

// newKey returns a fresh idempotency key with a readable prefix.
func newKey(prefix string) string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return prefix + "-" + hex.EncodeToString(b[:])
}

// resp is what a client got back.
type resp struct {
	Status int
	Header http.Header
	Body   []byte
	Err    error // transport error: no response
}

func (r resp) String() string {
	if r.Err != nil {
		return "transport error: " + r.Err.Error()
	}
	return fmt.Sprintf("%d %s %s", r.Status, r.Header.Get("Content-Type"), bytes.TrimSpace(r.Body))
}

// orderID returns the order_id of a 201 body.
func (r resp) orderID() string {
	var o struct {
		ID string `json:"order_id"`
	}
	_ = json.Unmarshal(r.Body, &o)
	return o.ID
}

var httpClient = &http.Client{
	Timeout:   30 * time.Second,
	Transport: &http.Transport{MaxIdleConnsPerHost: 256, MaxConnsPerHost: 0, IdleConnTimeout: 30 * time.Second},
}

// create sends POST /orders with key (raw header value; "" sends none) as
// the suite's caller.
func create(ctx context.Context, base, key, contentType string, body []byte) resp {
	return createAs(ctx, bearer, base, key, contentType, body)
}

// createAs is create with the Authorization header authorization ("" sends
// none).
func createAs(ctx context.Context, authorization, base, key, contentType string, body []byte) resp {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/orders", bytes.NewReader(body))
	if err != nil {
		return resp{Err: err}
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	res, err := httpClient.Do(req)
	if err != nil {
		return resp{Err: err}
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return resp{Status: res.StatusCode, Header: res.Header, Body: b, Err: err}
}

// retryUntilCreated resends the same request until it is answered 201, at
// most attempts times, pausing 200 ms after a 409, a 5xx or a transport error.
// It fails t on any other answer or when attempts run out.
func retryUntilCreated(t *testing.T, base, key, body string, attempts int) (resp, int) {
	t.Helper()
	r, n, err := retryCreate(base, key, body, attempts)
	if err != nil {
		t.Fatal(err)
	}
	return r, n
}

// retryCreate is retryUntilCreated for any goroutine: it returns an error
// instead of failing a test.
func retryCreate(base, key, body string, attempts int) (resp, int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var last resp
	for i := 1; i <= attempts; i++ {
		last = create(ctx, base, key, "application/json", []byte(body))
		if last.Err == nil && last.Status == http.StatusCreated {
			return last, i, nil
		}
		if last.Err == nil && last.Status != http.StatusConflict && last.Status < 500 {
			return last, i, fmt.Errorf("key %s: retry %d answered %v", key, i, last)
		}
		time.Sleep(200 * time.Millisecond)
	}
	return last, attempts, fmt.Errorf("key %s: no 201 after %d attempts; last %v", key, attempts, last)
}

// scanOrders returns every order in the table as order_id -> description.
func scanOrders(t *testing.T, table string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, item := range scanAll(t, table) {
		var o struct {
			ID     string `dynamodbav:"order_id"`
			Parcel struct {
				Description string `dynamodbav:"description"`
			} `dynamodbav:"parcel"`
		}
		if err := attributevalue.UnmarshalMap(item, &o); err != nil {
			t.Fatal(err)
		}
		out[o.ID] = o.Parcel.Description
	}
	return out
}

func scanAll(t *testing.T, table string) []map[string]types.AttributeValue {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var items []map[string]types.AttributeValue
	p := dynamodb.NewScanPaginator(ddbtest.Client(t), &dynamodb.ScanInput{TableName: aws.String(table), ConsistentRead: aws.Bool(true)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatalf("scan %s: %v", table, err)
		}
		items = append(items, page.Items...)
	}
	return items
}

// ordersByDescription inverts scanOrders: description -> order ids.
func ordersByDescription(orders map[string]string) map[string][]string {
	out := map[string][]string{}
	for id, d := range orders {
		out[d] = append(out[d], id)
	}
	return out
}

// problemType returns the type member of a problem+json body.
func problemType(r resp) string {
	var p struct {
		Type string `json:"type"`
	}
	_ = json.Unmarshal(r.Body, &p)
	return p.Type
}
