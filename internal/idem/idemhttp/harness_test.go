package idemhttp

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/parcelhq/orderservice/internal/ddb"
	"github.com/parcelhq/orderservice/internal/ddbtest"
	"github.com/parcelhq/orderservice/internal/idem"
	"github.com/parcelhq/orderservice/internal/problem"
)

// harness is a guarded test service on DynamoDB Local: an idempotency table,
// and an "effects" table into which the test handler writes one item per
// execution through ddb.Write, so a test can count both how often the
// handler ran and how many of its runs took effect.
type harness struct {
	client  *dynamodb.Client
	idem    ddb.Table
	effects ddb.Table
	guard   *idem.Guard
	runs    atomic.Int64 // handler executions, committed or not
	srv     *httptest.Server

	mu       sync.Mutex
	outcomes []Outcome
}

// handlerFunc is a test handler; run is its 1-based execution number.
type handlerFunc func(h *harness, w http.ResponseWriter, r *http.Request, run int64)

// newHarness serves handler at "POST /orders" (and at "POST /returns", a
// second route guarded by the same guard) behind Middleware with opts, on a
// 127.0.0.1 server closed when the test ends. opts.Route is set per route.
func newHarness(t *testing.T, cfg idem.Config, opts Options, handler handlerFunc) *harness {
	t.Helper()
	h := &harness{client: ddbtest.Client(t)}
	h.idem = ddbtest.Table(t, idem.TableDefinition("idem"))
	h.effects = ddbtest.Table(t, ddb.Table{Name: "effects", PartitionKey: "id"})
	if cfg.Table == "" {
		cfg.Table = h.idem.Name
	}
	h.guard = idem.New(h.client, cfg)
	opts.OnOutcome = func(r *http.Request, o Outcome, err error) {
		h.mu.Lock()
		defer h.mu.Unlock()
		h.outcomes = append(h.outcomes, o)
	}
	mux := http.NewServeMux()
	for _, route := range []string{"POST /orders", "POST /returns"} {
		o := opts
		o.Route = route
		mux.Handle(route, Middleware(h.guard, o)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			handler(h, w, r, h.runs.Add(1))
		})))
	}
	h.srv = httptest.NewServer(mux)
	t.Cleanup(h.srv.Close)
	return h
}

// createOrder is the default test handler: it records the execution in the
// effects table through ddb.Write (so the write joins the guard's unit of
// work) and answers 201 with a body unique to this execution.
func createOrder(h *harness, w http.ResponseWriter, r *http.Request, run int64) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	id := randomID()
	if err := h.writeEffect(r.Context(), id, string(body)); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Location", "/orders/"+id)
	w.Header().Add("X-Trace", "a")
	w.Header().Add("X-Trace", "b")
	w.WriteHeader(http.StatusCreated)
	_, _ = fmt.Fprintf(w, `{"order_id":%q,"run":%d,"received":%s}`, id, run, strconv.Quote(string(body)))
}

func (h *harness) writeEffect(ctx context.Context, id, body string) error {
	return ddb.Write(ctx, h.client, types.TransactWriteItem{Put: &types.Put{
		TableName: aws.String(h.effects.Name),
		Item: map[string]types.AttributeValue{
			"id":   &types.AttributeValueMemberS{Value: id},
			"body": &types.AttributeValueMemberS{Value: body},
		},
	}})
}

func randomID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// count returns the number of items in table, read consistently.
func (h *harness) count(t *testing.T, table string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := h.client.Scan(ctx, &dynamodb.ScanInput{TableName: aws.String(table), Select: types.SelectCount, ConsistentRead: aws.Bool(true)})
	if err != nil {
		t.Fatalf("scan %s: %v", table, err)
	}
	return int(out.Count)
}

// effects returns how many handler executions took effect.
func (h *harness) effectCount(t *testing.T) int { return h.count(t, h.effects.Name) }

// records returns how many idempotency records exist.
func (h *harness) records(t *testing.T) int { return h.count(t, h.idem.Name) }

func (h *harness) lastOutcome() Outcome {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.outcomes) == 0 {
		return ""
	}
	return h.outcomes[len(h.outcomes)-1]
}

// reply is a response read in full.
type reply struct {
	Status int
	Header http.Header
	Body   []byte
}

// send sends a request to the test server. keys are the Idempotency-Key
// fields to send, one per header line; none sends no header.
func (h *harness) send(t *testing.T, path, contentType, body string, keys ...string) reply {
	t.Helper()
	return h.sendReader(t, path, contentType, strings.NewReader(body), keys...)
}

func (h *harness) sendReader(t *testing.T, path, contentType string, body io.Reader, keys ...string) reply {
	t.Helper()
	return h.sendWith(t, path, contentType, body, http.Header{HeaderKey: keys})
}

// sendWith sends a request with the header fields of hdr besides
// Content-Type.
func (h *harness) sendWith(t *testing.T, path, contentType string, body io.Reader, hdr http.Header) reply {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, h.srv.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	for name, values := range hdr {
		for _, v := range values {
			req.Header.Add(name, v)
		}
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := h.srv.Client().Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	return reply{Status: resp.StatusCode, Header: resp.Header, Body: b}
}

// wantProblem fails t unless rep is a problem+json document of the given
// status and type slug.
func wantProblem(t *testing.T, rep reply, status int, slug string) problem.Problem {
	t.Helper()
	if rep.Status != status {
		t.Fatalf("status %d, want %d; body %s", rep.Status, status, rep.Body)
	}
	if ct := rep.Header.Get("Content-Type"); ct != problem.ContentType {
		t.Fatalf("Content-Type %q, want %q", ct, problem.ContentType)
	}
	var p problem.Problem
	if err := json.Unmarshal(rep.Body, &p); err != nil {
		t.Fatalf("problem body %s: %v", rep.Body, err)
	}
	if p.Type != problem.Type(slug) || p.Status != status || p.Title == "" || p.Detail == "" {
		t.Fatalf("problem %+v, want type %s and status %d with title and detail", p, problem.Type(slug), status)
	}
	if rep.Header.Get(HeaderReplayed) != "" {
		t.Fatalf("a problem response carries %s", HeaderReplayed)
	}
	return p
}

// wantReplayOf fails t unless replay repeats first's status, headers and
// body exactly, adds Idempotent-Replayed: true, and first has no such
// header. Date differs by nature and is not compared.
func wantReplayOf(t *testing.T, first, replay reply) {
	t.Helper()
	if v := first.Header.Values(HeaderReplayed); len(v) != 0 {
		t.Fatalf("first response carries %s: %q", HeaderReplayed, v)
	}
	if v := replay.Header.Values(HeaderReplayed); len(v) != 1 || v[0] != "true" {
		t.Fatalf("replay carries %s %q, want exactly \"true\"", HeaderReplayed, v)
	}
	if replay.Status != first.Status {
		t.Fatalf("replay status %d, first %d", replay.Status, first.Status)
	}
	if string(replay.Body) != string(first.Body) {
		t.Fatalf("replay body %s\nfirst body  %s", replay.Body, first.Body)
	}
	strip := func(h http.Header) http.Header {
		h = h.Clone()
		h.Del("Date")
		h.Del(HeaderReplayed)
		return h
	}
	a, b := strip(first.Header), strip(replay.Header)
	if fmt.Sprint(a) != fmt.Sprint(b) {
		t.Fatalf("replay headers %v\nfirst headers  %v", b, a)
	}
}

// writeEffectOnce writes the effect item id on condition that it does not
// exist yet.
func (h *harness) writeEffectOnce(ctx context.Context, id string) error {
	return ddb.Write(ctx, h.client, types.TransactWriteItem{Put: &types.Put{
		TableName:           aws.String(h.effects.Name),
		Item:                map[string]types.AttributeValue{"id": &types.AttributeValueMemberS{Value: id}},
		ConditionExpression: aws.String("attribute_not_exists(id)"),
	}})
}
