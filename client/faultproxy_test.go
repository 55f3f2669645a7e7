package client_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/parcelhq/orderservice/internal/idem/idemhttp"
)

// fault is what the fault proxy does to one request on its way to the API.
type fault string

const (
	pass fault = "pass"
	// After the API answered (so the order exists):
	dropAnswer     fault = "drop the answer"                  // close the connection, answer nothing
	cutAnswer      fault = "cut the answer mid-body"          // status, headers, half the body, close
	gatewayError   fault = "gateway 502"                      // API Gateway's {"message":"Internal Server Error"}
	gatewayTimeout fault = "gateway 504"                      // API Gateway's "Endpoint request timed out"
	slowAnswer     fault = "hold the answer past the timeout" // until the client gives up, then close
	// Before the API saw the request:
	cutRequest  fault = "cut the request"                // close the connection before answering; never forwarded
	unavailable fault = "503 Retry-After: 1"             // delay-seconds
	throttled   fault = "429 Retry-After: HTTP-date +2s" // an HTTP-date
	lateRequest fault = "deliver the request late"       // hold it until the client gave up, then forward it anyway
	// Answers that end a call, or a test:
	unavailableBare fault = "503 without Retry-After"
	waitTooLong     fault = "503 Retry-After: 120"
	tooLarge        fault = "500 idempotent-response-too-large"
)

// transientFaults are the faults a create must survive.
var transientFaults = []fault{dropAnswer, cutAnswer, gatewayError, gatewayTimeout, slowAnswer, cutRequest, unavailable, throttled, lateRequest}

// faultProxy is an HTTP proxy between a client and the API that injects the
// fault plan names for each attempt, and records what really happened: per
// Idempotency-Key, how many creates the API executed (201 without
// Idempotent-Replayed) and which answer was last delivered whole.
type faultProxy struct {
	URL     string
	backend string
	// plan returns the fault for the n-th request (from 1) of tag: the
	// order's parcel description for a create, "GET /orders/{id}" for a read.
	plan func(tag string, n int) fault
	hc   *http.Client

	mu       sync.Mutex
	tags     map[string][]attemptLog
	keys     map[string]*keyLog
	detached sync.WaitGroup
	// inflight counts, per key, the requests forwarded to the API whose
	// answer the proxy has not yet counted. An attempt the client gave up
	// on can still be executing at the API when the retry is replayed its
	// stored answer.
	inflight map[string]int
	answered *sync.Cond // on mu, broadcast when an inflight count drops
}

type attemptLog struct {
	fault   fault
	key     string
	auth    string
	arrived time.Time
	ended   time.Time // when the proxy finished with it
}

type keyLog struct {
	executions int // answers 201 without Idempotent-Replayed: orders made
	delivered  bool
	replayed   bool // of the last answer delivered whole
}

func newFaultProxy(t *testing.T, backend string, plan func(tag string, n int) fault) *faultProxy {
	p := &faultProxy{
		backend:  backend,
		plan:     plan,
		hc:       &http.Client{Timeout: 30 * time.Second},
		tags:     map[string][]attemptLog{},
		keys:     map[string]*keyLog{},
		inflight: map[string]int{},
	}
	p.answered = sync.NewCond(&p.mu)
	srv := httptest.NewServer(p) // 127.0.0.1
	p.URL = srv.URL
	t.Cleanup(func() {
		p.detached.Wait()
		srv.Close()
	})
	return p
}

// faults returns a plan that injects seq[n-1] for the n-th request of every
// tag and passes the rest.
func faults(seq ...fault) func(string, int) fault {
	return func(_ string, n int) fault {
		if n <= len(seq) {
			return seq[n-1]
		}
		return pass
	}
}

func (p *faultProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	arrived := time.Now()
	body, err := io.ReadAll(r.Body)
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	key, _ := idemhttp.ParseKey(r.Header.Get(idemhttp.HeaderKey)) // "" for a GET
	tag := r.Method + " " + r.URL.Path
	if r.Method == http.MethodPost {
		var o struct {
			Parcel struct {
				Description string `json:"description"`
			} `json:"parcel"`
		}
		_ = json.Unmarshal(body, &o)
		tag = o.Parcel.Description
	}
	p.mu.Lock()
	n := len(p.tags[tag]) + 1
	f := p.plan(tag, n)
	p.tags[tag] = append(p.tags[tag], attemptLog{fault: f, key: key, auth: r.Header.Get("Authorization"), arrived: arrived})
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		p.tags[tag][n-1].ended = time.Now()
		p.mu.Unlock()
	}()

	switch f {
	case cutRequest:
		panic(http.ErrAbortHandler)
	case unavailable:
		gateway(w, http.StatusServiceUnavailable, "1", `{"message":"Service Unavailable"}`)
		return
	case unavailableBare:
		gateway(w, http.StatusServiceUnavailable, "", `{"message":"Service Unavailable"}`)
		return
	case waitTooLong:
		gateway(w, http.StatusServiceUnavailable, "120", `{"message":"Service Unavailable"}`)
		return
	case throttled:
		gateway(w, http.StatusTooManyRequests, time.Now().Add(2*time.Second).UTC().Format(http.TimeFormat), `{"message":"Too Many Requests"}`)
		return
	case tooLarge:
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = io.WriteString(w, `{"type":"https://api.parcelhq.example/problems/idempotent-response-too-large","title":"Response too large to remember","status":500}`)
		return
	case lateRequest:
		holdUntilGone(r)
		p.detached.Add(1)
		go func() {
			defer p.detached.Done()
			p.forward(r, key, body)
		}()
		return
	}

	res, err := p.forward(r, key, body)
	if err != nil {
		gateway(w, http.StatusBadGateway, "", `{"message":"Internal Server Error"}`)
		return
	}
	switch f {
	case dropAnswer:
		panic(http.ErrAbortHandler)
	case cutAnswer:
		copyHeader(w, res)
		w.WriteHeader(res.status)
		_, _ = w.Write(res.body[:len(res.body)/2])
		w.(http.Flusher).Flush()
		panic(http.ErrAbortHandler)
	case gatewayError:
		gateway(w, http.StatusBadGateway, "", `{"message":"Internal Server Error"}`)
		return
	case gatewayTimeout:
		gateway(w, http.StatusGatewayTimeout, "", `{"message":"Endpoint request timed out"}`)
		return
	case slowAnswer:
		holdUntilGone(r)
		panic(http.ErrAbortHandler)
	}
	copyHeader(w, res)
	w.WriteHeader(res.status)
	if _, err := w.Write(res.body); err == nil && key != "" {
		p.mu.Lock()
		k := p.key(key)
		k.delivered, k.replayed = true, res.header.Get("Idempotent-Replayed") == "true"
		p.mu.Unlock()
	}
}

type backendAnswer struct {
	status int
	header http.Header
	body   []byte
}

// forward sends the request to the API, whatever the client does meanwhile,
// and counts the creates it executed.
func (p *faultProxy) forward(r *http.Request, key string, body []byte) (backendAnswer, error) {
	p.mu.Lock()
	p.inflight[key]++
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		p.inflight[key]--
		p.mu.Unlock()
		p.answered.Broadcast()
	}()
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, r.Method, p.backend+r.URL.RequestURI(), bytes.NewReader(body))
	if err != nil {
		return backendAnswer{}, err
	}
	req.Header = r.Header.Clone()
	res, err := p.hc.Do(req)
	if err != nil {
		return backendAnswer{}, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return backendAnswer{}, err
	}
	if key != "" && res.StatusCode == http.StatusCreated && res.Header.Get("Idempotent-Replayed") != "true" {
		p.mu.Lock()
		p.key(key).executions++
		p.mu.Unlock()
	}
	return backendAnswer{status: res.StatusCode, header: res.Header, body: b}, nil
}

func (p *faultProxy) key(k string) *keyLog {
	if p.keys[k] == nil {
		p.keys[k] = &keyLog{}
	}
	return p.keys[k]
}

// attempts returns what the proxy saw of tag's requests.
func (p *faultProxy) attempts(tag string) []attemptLog {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]attemptLog(nil), p.tags[tag]...)
}

// keyLog returns what the proxy saw of key, once every late request has
// been delivered and every request of key forwarded so far has been
// answered.
func (p *faultProxy) keyLog(key string) keyLog {
	p.detached.Wait()
	p.mu.Lock()
	defer p.mu.Unlock()
	for p.inflight[key] > 0 {
		p.answered.Wait()
	}
	return *p.key(key)
}

// holdUntilGone waits until the client has given up on r (its connection
// closed), at most 30 s.
func holdUntilGone(r *http.Request) {
	select {
	case <-r.Context().Done():
	case <-time.After(30 * time.Second):
	}
}

func copyHeader(w http.ResponseWriter, res backendAnswer) {
	for k, v := range res.header {
		w.Header()[k] = v
	}
}

// gateway writes an answer shaped like API Gateway's own.
func gateway(w http.ResponseWriter, status int, retryAfter, body string) {
	if retryAfter != "" {
		w.Header().Set("Retry-After", retryAfter)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body)
}

// newServer serves h on 127.0.0.1 until t ends and returns its URL.
func newServer(t *testing.T, h http.Handler) string {
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}
