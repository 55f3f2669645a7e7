package reliability_test

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"context"

	"github.com/parcelhq/orderservice/internal/ddbtest"
	"github.com/parcelhq/orderservice/internal/idem/idemhttp"
	"github.com/parcelhq/orderservice/internal/problem"
)

// fault is one kind of failure the proxy injects into a DynamoDB call.
type fault int

const (
	faultNone            fault = iota
	faultInternal              // 500 InternalServerError; the request is not forwarded
	faultThrottling            // 400 ThrottlingException; not forwarded
	faultThroughput            // 400 ProvisionedThroughputExceededException; not forwarded
	faultDelay                 // held past the client's timeout, then forwarded anyway: the write lands late
	faultDropResponse          // forwarded, then the connection is cut: the write happened, the client does not know
	faultReplaceResponse       // forwarded, then answered 500: the write happened, the client is told it failed
	numFaults
)

var faultNames = [numFaults]string{"none", "500 InternalServerError", "400 ThrottlingException",
	"400 ProvisionedThroughputExceededException", "delay past SDK timeout", "forwarded, response dropped", "forwarded, response replaced by 500"}

// faultProxy is a reverse proxy to DynamoDB that, while on, turns each request
// into one of the faults with probability rate each.
type faultProxy struct {
	rp     *httputil.ReverseProxy
	on     atomic.Bool
	rate   float64
	delay  time.Duration
	counts [numFaults]atomic.Int64
}

// startFaultProxy serves a fault proxy to target on 127.0.0.1 until t ends.
func startFaultProxy(t *testing.T, target string, rate float64, delay time.Duration) (*faultProxy, string) {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	p := &faultProxy{rate: rate, delay: delay}
	p.rp = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(u)
			pr.Out.Host = pr.In.Host // the SDK signed the proxy's host
		},
		ErrorHandler: func(w http.ResponseWriter, _ *http.Request, err error) {
			dynamoError(w, http.StatusInternalServerError, "InternalServerError", "proxy: "+err.Error())
		},
	}
	srv := httptest.NewServer(p) // 127.0.0.1
	t.Cleanup(srv.Close)
	return p, srv.URL
}

func (p *faultProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// Read the whole request first, so that it can still be forwarded after
	// the client has gone.
	body, err := io.ReadAll(r.Body)
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.ContentLength = int64(len(body))

	f := faultNone
	if p.on.Load() {
		if k := fault(rand.Float64()/p.rate) + 1; k < numFaults {
			f = k
		}
	}
	p.counts[f].Add(1)
	switch f {
	case faultNone:
		p.rp.ServeHTTP(w, r)
	case faultInternal:
		dynamoError(w, http.StatusInternalServerError, "InternalServerError", "injected internal server error")
	case faultThrottling:
		dynamoError(w, http.StatusBadRequest, "ThrottlingException", "injected: rate of requests exceeds the allowed throughput")
	case faultThroughput:
		dynamoError(w, http.StatusBadRequest, "ProvisionedThroughputExceededException", "injected: provisioned throughput exceeded")
	case faultDelay:
		time.Sleep(p.delay)
		p.rp.ServeHTTP(httptest.NewRecorder(), r.WithContext(context.WithoutCancel(r.Context())))
		panic(http.ErrAbortHandler) // the client gave up long ago
	case faultDropResponse:
		p.rp.ServeHTTP(httptest.NewRecorder(), r.WithContext(context.WithoutCancel(r.Context())))
		panic(http.ErrAbortHandler)
	case faultReplaceResponse:
		p.rp.ServeHTTP(httptest.NewRecorder(), r.WithContext(context.WithoutCancel(r.Context())))
		dynamoError(w, http.StatusInternalServerError, "InternalServerError", "injected: response replaced")
	}
}

// dynamoError writes a DynamoDB JSON error.
func dynamoError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.0")
	w.Header().Set("X-Amzn-Requestid", newKey("fault"))
	w.WriteHeader(status)
	fmt.Fprintf(w, `{"__type":"com.amazonaws.dynamodb.v20120810#%s","message":%q}`, code, msg)
}

func (p *faultProxy) summary() string {
	var parts []string
	for f := fault(0); f < numFaults; f++ {
		parts = append(parts, fmt.Sprintf("%s=%d", faultNames[f], p.counts[f].Load()))
	}
	return strings.Join(parts, ", ")
}

// TestReliabilityFaults puts a fault-injecting proxy between two service
// processes and DynamoDB Local — 500s, throttling, delays past the SDK's
// timeout, and requests that land but whose response is dropped or replaced —
// and sends every key's request from two concurrent clients, twice each, under
// bounded load. Then, with faults off, it retries every key until it
// succeeds. It proves: each key ends with exactly one order; every 201 any
// client ever got for a key is byte-identical to the final replay and names
// an order that exists; every other answer was a 409 with Retry-After or a
// 5xx (a 503 with Retry-After): never a wrong replay.
func TestReliabilityFaults(t *testing.T) {
	for _, mode := range []string{"lease", "optimistic", "item"} {
		t.Run("in "+mode+" mode DynamoDB faults never lose or double an order", func(t *testing.T) {
			t.Parallel()
			faults(t, mode, scale(48, 1000), 32)
		})
	}
}

func faults(t *testing.T, mode string, nkeys, inflight int) {
	tb := newTables(t)
	proxy, proxyURL := startFaultProxy(t, ddbtest.Endpoint(), 0.10, 1500*time.Millisecond)
	env := append(tb.env(mode), "CRASHSERVE_LEASE=2s", "CRASHSERVE_CLOCK_SKEW=100ms", "CRASHSERVE_DDB_TIMEOUT=1s",
		"DYNAMODB_ENDPOINT="+proxyURL) // later than start's own setting, so it wins
	bin := crashBin(t)
	servers := []*proc{start(t, bin, env...), start(t, bin, env...)}

	keys := make([]string, nkeys)
	for i := range keys {
		keys[i] = newKey("fault")
	}
	var mu sync.Mutex
	seen := map[string][]resp{}
	statuses := map[string]int{}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()

	proxy.on.Store(true)
	began := time.Now()
	sem := make(chan struct{}, inflight)
	var wg sync.WaitGroup
	for i, key := range keys {
		for c := 0; c < 2; c++ { // two clients per key, racing
			sem <- struct{}{}
			wg.Add(1)
			go func(base, key string) {
				defer func() { <-sem; wg.Done() }()
				for try := 0; try < 2; try++ {
					r := create(ctx, base, key, "application/json", []byte(orderBody(key)))
					mu.Lock()
					seen[key] = append(seen[key], r)
					label := fmt.Sprint(r.Status)
					if r.Err != nil {
						label = "transport error"
					} else if r.Status == http.StatusCreated && r.Header.Get(idemhttp.HeaderReplayed) == "true" {
						label = "201 replayed"
					}
					statuses[label]++
					mu.Unlock()
					if r.Err == nil && r.Status == http.StatusCreated {
						return
					}
				}
			}(servers[(i+c)%len(servers)].URL, key)
		}
	}
	wg.Wait()
	proxy.on.Store(false)
	faultPhase := time.Since(began)

	// Faults off: every key is retried until it succeeds, then replayed.
	final := make(map[string]resp, len(keys))
	var retries atomic.Int64
	for _, key := range keys {
		sem <- struct{}{}
		wg.Add(1)
		go func(key string) {
			defer func() { <-sem; wg.Done() }()
			r, n, err := retryCreate(servers[0].URL, key, orderBody(key), 60)
			retries.Add(int64(n))
			if err != nil {
				t.Error(err)
				return
			}
			// The other server's answer, retried past a 503 or 409 as any
			// client would (a loaded machine can time a call out with the
			// faults off too): its 201 must be the replay, byte for byte.
			again, _, err := retryCreate(servers[1].URL, key, orderBody(key), 20)
			if err != nil || again.Header.Get(idemhttp.HeaderReplayed) != "true" || string(again.Body) != string(r.Body) {
				t.Errorf("key %s: the replay after recovery is not byte-identical:\n got %v\nwant %v", key, again, r)
			}
			mu.Lock()
			final[key] = r
			mu.Unlock()
		}(key)
	}
	wg.Wait()

	orders := scanOrders(t, tb.Orders)
	byDesc := ordersByDescription(orders)
	if len(orders) != len(keys) {
		t.Errorf("%d orders for %d keys", len(orders), len(keys))
	}
	for _, key := range keys {
		ids := byDesc[key]
		if len(ids) != 1 {
			t.Errorf("key %s: %d orders %v, want exactly 1", key, len(ids), ids)
		}
		want, ok := final[key]
		if !ok {
			continue
		}
		if len(ids) == 1 && want.orderID() != ids[0] {
			t.Errorf("key %s: final answer names order %q, the table holds %q", key, want.orderID(), ids[0])
		}
		for _, r := range seen[key] {
			switch {
			case r.Err != nil:
				t.Errorf("key %s: transport error from the service: %v", key, r.Err)
			case r.Status == http.StatusCreated:
				if string(r.Body) != string(want.Body) {
					t.Errorf("key %s: WRONG REPLAY: a client got\n%s\nbut the key's outcome is\n%s", key, r.Body, want.Body)
				}
				if _, ok := orders[r.orderID()]; !ok {
					t.Errorf("key %s: a client was told of order %q, which does not exist", key, r.orderID())
				}
			case r.Status == http.StatusConflict:
				if r.Header.Get("Retry-After") == "" || r.Header.Get("Content-Type") != problem.ContentType {
					t.Errorf("key %s: 409 without Retry-After or problem+json: %v", key, r)
				}
			case r.Status == http.StatusServiceUnavailable:
				if r.Header.Get("Retry-After") == "" {
					t.Errorf("key %s: 503 without Retry-After: %v", key, r)
				}
			case r.Status >= 500:
			default:
				t.Errorf("key %s: during faults the service answered %v", key, r)
			}
		}
	}
	var hist []string
	for k, v := range statuses {
		hist = append(hist, fmt.Sprintf("%s=%d", k, v))
	}
	sort.Strings(hist)
	t.Logf("FIGURES faults mode=%s keys=%d processes=%d fault phase %.1fs; answers during faults: %s; recovery requests=%d; DynamoDB calls: %s",
		mode, len(keys), len(servers), faultPhase.Seconds(), strings.Join(hist, " "), retries.Load(), proxy.summary())
}
