package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parcelhq/orderservice/client"
	"github.com/parcelhq/orderservice/internal/apitest"
	"github.com/parcelhq/orderservice/internal/orders/orderstest"
)

// testFunctionTimeout is the emulated Lambda's timeout in the client tests
// (startAPI), and testAttemptTimeout, a second above it, their clients'
// attempt timeout: an attempt that reaches the API gets the invocation's
// own answer (the function's, or the 5xx of one that ran out of time)
// before the client gives up on it, so that no attempt is abandoned while
// its invocation still runs and retries do not pile up on a loaded
// machine. Only the faults that hold an answer past the timeout
// (slowAnswer, lateRequest) cost an attempt timeout each.
const (
	testFunctionTimeout = 2 * time.Second
	testAttemptTimeout  = testFunctionTimeout + time.Second
)

// startAPI runs the API with testFunctionTimeout.
func startAPI(t *testing.T) *apitest.API {
	t.Helper()
	return apitest.Start(t, apitest.FunctionTimeout(testFunctionTimeout))
}

// testOptions keeps waits short: backoff of a few milliseconds, an attempt
// timeout of testAttemptTimeout, and attempts to spare for the 5xx of a
// loaded machine. The API's own Retry-After (1 s on 409 and 503) is
// honoured as is. Requests go through stampingClient, so that checkCreated
// can tell which one the client's answer came from. Every request carries
// token (from apitest.API.Token), none when it is "".
func testOptions(token string) client.Options {
	var src func(context.Context) (string, error)
	if token != "" {
		src = client.StaticToken(token)
	}
	return client.Options{
		HTTPClient:     stampingClient,
		Token:          src,
		MaxAttempts:    20,
		AttemptTimeout: testAttemptTimeout,
		BaseDelay:      2 * time.Millisecond,
		MaxDelay:       20 * time.Millisecond,
	}
}

// exactOptions is testOptions with an attempt timeout no loaded machine
// reaches, for tests that count attempts exactly.
func exactOptions(token string) client.Options {
	o := testOptions(token)
	o.AttemptTimeout = 15 * time.Second
	return o
}

func newClient(t *testing.T, url string, o client.Options) *client.Client {
	t.Helper()
	c, err := client.New(url, o)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// order returns the example order with tag as its parcel description, so
// that its row in the table can be told apart.
func order(t *testing.T, tag string) client.OrderRequest {
	t.Helper()
	var r client.OrderRequest
	if err := json.Unmarshal([]byte(orderstest.JSON), &r); err != nil {
		t.Fatal(err)
	}
	r.Parcel.Description = tag
	return r
}

func callCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// checkCreated checks a create's result against what the proxy saw: the
// answer the client used is the one to its last request, delivered whole,
// and Replayed is what that answer said, true when the proxy saw the API
// make the order for another request with the key; the proxy saw the API
// execute at most one create for the key, and exactly that one when the
// client was answered a fresh 201. (That the table holds exactly one order
// for the create is checkTable's and checkOneOrder's.) At most one create
// may have run with got.Key, not counting those that ended before it began.
func checkCreated(t *testing.T, p *faultProxy, got client.Created, tag string) {
	t.Helper()
	if got.Order.Parcel.Description != tag || !strings.HasPrefix(got.Order.ID, "ord_") {
		t.Errorf("created %+v, want an order of %q", got.Order, tag)
	}
	switch a, ok, madeByAnother := p.consumed(got.Key); {
	case !ok:
		t.Errorf("the proxy never saw the last request sent with key %s, yet Create returned", got.Key)
	case !a.delivered:
		t.Errorf("Create returned after its last request (fault %q), whose answer the proxy did not deliver whole", a.fault)
	case got.Replayed != a.replayed:
		t.Errorf("Replayed = %v, but the answer the client used said Idempotent-Replayed: %v", got.Replayed, a.replayed)
	case madeByAnother && !got.Replayed:
		t.Error("Replayed = false, but the API had made the order for an earlier request")
	}
	k := p.keyLog(got.Key)
	if k.executions > 1 {
		t.Errorf("the API executed %d creates for key %s, want at most 1", k.executions, got.Key)
	}
	if !got.Replayed && k.executions != 1 {
		t.Errorf("the client was answered a fresh 201 for key %s, but the proxy saw %d", got.Key, k.executions)
	}
}

// checkTable checks that the orders table holds exactly one order per tag,
// the one the client returned.
func checkTable(t *testing.T, api *apitest.API, want map[string]string) {
	t.Helper()
	byTag := map[string][]string{}
	rows := api.Orders(t)
	for id, tag := range rows {
		byTag[tag] = append(byTag[tag], id)
	}
	for tag, id := range want {
		if ids := byTag[tag]; len(ids) != 1 || ids[0] != id {
			t.Errorf("order %q: table holds %v, want exactly [%s]", tag, ids, id)
		}
	}
	if len(rows) != len(want) {
		t.Errorf("table holds %d orders, want %d", len(rows), len(want))
	}
}

func TestCreateThroughFaults(t *testing.T) {
	t.Parallel()
	api := startAPI(t)
	scenarios := []struct {
		name   string
		faults []fault
		// (Where a fault hit an attempt the API had answered 201, the
		// client's answer must be the replay: checkCreated.)
	}{
		{"an answer dropped after the order was made is replayed on the retry", []fault{dropAnswer}},
		{"an answer cut mid-body is replayed on the retry", []fault{cutAnswer}},
		{"API Gateway's 502 after the function ran is retried and replayed", []fault{gatewayError}},
		{"API Gateway's 504 after the function ran is retried and replayed", []fault{gatewayTimeout}},
		{"an answer held past the attempt timeout is replayed on the retry", []fault{slowAnswer}},
		{"a 201 whose body ended early, in a close-delimited answer, is resent and replayed", []fault{truncatedAnswer}},
		{"a connection cut mid-request is resent", []fault{cutRequest}},
		{"a 503 with Retry-After in seconds is waited out and retried", []fault{unavailable}},
		{"a 429 with Retry-After as an HTTP-date is waited out and retried", []fault{throttled}},
		{"a request that reaches the API after the client gave up on it makes no second order", []fault{lateRequest}},
		{"a drop, a 503 and a cut request in a row end in the one order, replayed", []fault{dropAnswer, unavailable, cutRequest}},
		{"every fault in a row ends in the one order", []fault{cutRequest, unavailable, lateRequest, throttled, dropAnswer, cutAnswer, truncatedAnswer, gatewayError, slowAnswer}},
	}
	plan := map[string][]fault{}
	for _, s := range scenarios {
		plan[s.name] = s.faults
	}
	p := newFaultProxy(t, api.URL, func(tag string, n int) fault {
		if seq := plan[tag]; n <= len(seq) {
			return seq[n-1]
		}
		return pass
	})
	var mu sync.Mutex
	created := map[string]string{}
	t.Run("each create", func(t *testing.T) {
		for _, s := range scenarios {
			t.Run(s.name, func(t *testing.T) {
				t.Parallel()
				var retries []client.Retry
				o := testOptions(api.Token(t, "alice"))
				o.OnRetry = func(r client.Retry) { retries = append(retries, r) }
				got, err := newClient(t, p.URL, o).Create(callCtx(t), order(t, s.name))
				if err != nil {
					t.Fatalf("Create: %v", err)
				}
				mu.Lock()
				created[s.name] = got.Order.ID
				mu.Unlock()
				checkCreated(t, p, got, s.name)
				seen := p.attempts(s.name)
				if len(seen) < len(s.faults)+1 {
					t.Errorf("the API saw %d attempts, want at least %d", len(seen), len(s.faults)+1)
				}
				for i, a := range seen {
					if a.key != got.Key {
						t.Errorf("an attempt carried key %q, want %q on every attempt", a.key, got.Key)
					}
					// Every fault here leaves the order possibly made, so
					// every retry says it is one, and the first attempt
					// of a fresh key does not.
					if want := map[bool]string{true: "", false: "?1"}[i == 0]; a.hint != want {
						t.Errorf("attempt %d carried Idempotency-Retry %q, want %q", i+1, a.hint, want)
					}
				}
				for _, r := range retries {
					var apiErr *client.Error
					if errors.As(r.Err, &apiErr) && apiErr.RetryAfter > 0 && r.Wait < apiErr.RetryAfter {
						t.Errorf("attempt %d: waited %v, less than Retry-After %v", r.Attempt, r.Wait, apiErr.RetryAfter)
					}
				}
			})
		}
	})
	checkTable(t, api, created)
}

// TestCreateStorm creates many orders at once through random faults: each
// create returns its order, the table holds exactly one order per create,
// and each answer's Replayed is what the answer the client used said.
func TestCreateStorm(t *testing.T) {
	t.Parallel()
	const orders, maxFaults = 40, 5
	api := startAPI(t)
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 13))
	plan := map[string][]fault{}
	tags := make([]string, orders)
	injected := 0
	for i := range tags {
		tags[i] = fmt.Sprintf("storm-%02d", i)
		for j := rng.IntN(maxFaults + 1); j > 0; j-- {
			plan[tags[i]] = append(plan[tags[i]], transientFaults[rng.IntN(len(transientFaults))])
			injected++
		}
	}
	p := newFaultProxy(t, api.URL, func(tag string, n int) fault {
		if seq := plan[tag]; n <= len(seq) {
			return seq[n-1]
		}
		return pass
	})
	c := newClient(t, p.URL, testOptions(api.Token(t, "alice")))
	var (
		mu       sync.Mutex
		created  = map[string]string{}
		replayed atomic.Int32
		wg       sync.WaitGroup
	)
	for _, tag := range tags {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got, err := c.Create(callCtx(t), order(t, tag))
			if err != nil {
				t.Errorf("%s (faults %v): %v", tag, plan[tag], err)
				return
			}
			checkCreated(t, p, got, tag)
			if got.Replayed {
				replayed.Add(1)
			}
			mu.Lock()
			created[tag] = got.Order.ID
			mu.Unlock()
		}()
	}
	wg.Wait()
	checkTable(t, api, created)
	total := 0
	for _, tag := range tags {
		total += len(p.attempts(tag))
	}
	t.Logf("%d creates, %d faults injected, %d requests reached the proxy, %d reached the API, %d orders in the table, %d answers replayed",
		orders, injected, total, p.forwarded(), len(api.Orders(t)), replayed.Load())
}

func TestResumeAfterACrash(t *testing.T) {
	t.Parallel()
	api := startAPI(t)
	p := newFaultProxy(t, api.URL, faults(dropAnswer))

	t.Run("a caller that stored its key gets the order its dead predecessor made", func(t *testing.T) {
		t.Parallel()
		const tag = "resume-own-key"
		key := client.NewKey()
		// The first process sends one attempt, which makes the order, and
		// dies before it sees the answer.
		o := testOptions(api.Token(t, "alice"))
		o.MaxAttempts = 1
		_, err := newClient(t, p.URL, o).CreateWithKey(callCtx(t), key, order(t, tag))
		if !errors.Is(err, client.ErrGaveUp) {
			t.Fatalf("first process: %v, want ErrGaveUp", err)
		}
		// The next one resumes with the stored key and request.
		got, err := newClient(t, p.URL, testOptions(api.Token(t, "alice"))).CreateWithKey(callCtx(t), key, order(t, tag))
		if err != nil {
			t.Fatalf("resume: %v", err)
		}
		if got.Key != key {
			t.Errorf("resume: key %q, want %q", got.Key, key)
		}
		checkCreated(t, p, got, tag) // the replay of the order the first process made
		checkOneOrder(t, api, tag, got.Order.ID)
		// Both calls are CreateWithKey, which cannot know whether the key
		// was used before: each says it may have been.
		if seen := p.attempts(tag); len(seen) != 2 || seen[0].hint != "?1" || seen[1].hint != "?1" {
			t.Errorf("attempts %+v, want two, each with Idempotency-Retry ?1 (CreateWithKey cannot know the key is fresh)", seen)
		}
	})

	t.Run("the key of a create that gave up resumes it", func(t *testing.T) {
		t.Parallel()
		const tag = "resume-from-error"
		o := testOptions(api.Token(t, "alice"))
		o.MaxAttempts = 1
		_, err := newClient(t, p.URL, o).Create(callCtx(t), order(t, tag))
		var ce *client.CallError
		if !errors.As(err, &ce) || !errors.Is(err, client.ErrGaveUp) || ce.Key == "" || !ce.OwnKey {
			t.Fatalf("Create: %v, want a *CallError with ErrGaveUp and the key", err)
		}
		got, err := newClient(t, p.URL, testOptions(api.Token(t, "alice"))).CreateWithKey(callCtx(t), ce.Key, order(t, tag))
		if err != nil {
			t.Fatalf("resume: %v", err)
		}
		checkCreated(t, p, got, tag) // the replay
		checkOneOrder(t, api, tag, got.Order.ID)
	})

	t.Run("processes resuming one key at once all get the same order", func(t *testing.T) {
		t.Parallel()
		const tag, callers = "resume-concurrently", 6
		key := client.NewKey()
		results := make([]client.Created, callers)
		errs := make([]error, callers)
		var wg sync.WaitGroup
		for i := range callers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				results[i], errs[i] = newClient(t, p.URL, testOptions(api.Token(t, "alice"))).CreateWithKey(callCtx(t), key, order(t, tag))
			}()
		}
		wg.Wait()
		fresh := 0
		for i, err := range errs {
			if err != nil {
				t.Fatalf("caller %d: %v", i, err)
			}
			if results[i].Order != results[0].Order {
				t.Errorf("caller %d got order %s, caller 0 %s", i, results[i].Order.ID, results[0].Order.ID)
			}
			if !results[i].Replayed {
				fresh++
			}
		}
		if fresh > 1 {
			t.Errorf("%d callers were told their answer was not a replay; at most one can be", fresh)
		}
		if k := p.keyLog(key); k.executions > 1 || k.executions < fresh {
			t.Errorf("the proxy saw the API execute %d creates for the key, and %d callers were answered a fresh 201; want at most 1 and at least that", k.executions, fresh)
		}
		checkOneOrder(t, api, tag, results[0].Order.ID)
	})
}

// checkOneOrder checks that the table holds exactly one order of tag, id
// (any id when it is "").
func checkOneOrder(t *testing.T, api *apitest.API, tag, id string) {
	t.Helper()
	var ids []string
	for oid, d := range api.Orders(t) {
		if d == tag {
			ids = append(ids, oid)
		}
	}
	if len(ids) != 1 || (id != "" && ids[0] != id) {
		t.Errorf("table holds %v for %q, want exactly [%s]", ids, tag, id)
	}
}
