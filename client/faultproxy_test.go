package client_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
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
	// After the API answered, an answer that looks whole but is not:
	truncatedAnswer fault = "end the answer mid-body" // status, headers without Content-Length, half the body, a clean close
	// Answers that end a call, or a test:
	unavailableBare fault = "503 without Retry-After"
	waitTooLong     fault = "503 Retry-After: 120"
	tooLarge        fault = "500 idempotent-response-too-large"
	hugeAnswer      fault = "a 502 page over 1 MiB" // never forwarded
)

// transientFaults are the faults a create must survive.
var transientFaults = []fault{dropAnswer, cutAnswer, truncatedAnswer, gatewayError, gatewayTimeout, slowAnswer, cutRequest, unavailable, throttled, lateRequest}

// faultProxy is an HTTP proxy between a client and the API that injects the
// fault plan names for each attempt, and records what really happened: per
// request, its fault and whether its answer was delivered whole; per
// Idempotency-Key, how many creates the API was seen to execute (201
// without Idempotent-Replayed). A request the client gives up on is given
// up on by the proxy too (its forward is cancelled; the API runs it to
// completion, as Lambda does), except under lateRequest, which forwards it
// after the client left.
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
	// answer the proxy has not yet counted, and the late requests not yet
	// forwarded. An attempt the client gave up on can still be executing
	// at the API when the retry is replayed its stored answer.
	inflight map[string]int
	answered *sync.Cond // on mu, broadcast when an inflight count drops
	forwards int        // requests forwarded to the API
}

type attemptLog struct {
	fault   fault
	key     string // as the API reads it
	auth    string
	stamp   string // the stampHeader the client's transport set
	hint    string // the Idempotency-Retry header it carried
	arrived time.Time
	ended   time.Time // when the proxy finished with it
	// delivered: the API's answer was written to the client whole;
	// replayed: it said Idempotent-Replayed: true.
	delivered, replayed bool
	// made: the proxy read the API's 201 without Idempotent-Replayed to
	// it, whatever it then did with it.
	made bool
}

type keyLog struct {
	// executions counts the answers 201 without Idempotent-Replayed that
	// the proxy read: orders made. It can miss one, whose forward was
	// cancelled, or which the API answered 503 because its commit landed
	// as the function's deadline hit (and replays later): the table is
	// the count of orders, this is at most it.
	executions int
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
	stamp := r.Header.Get(stampHeader)
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
	p.tags[tag] = append(p.tags[tag], attemptLog{fault: f, key: key, auth: r.Header.Get("Authorization"), stamp: stamp, hint: r.Header.Get("Idempotency-Retry"), arrived: arrived})
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
	case hugeAnswer:
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusBadGateway)
		_, _ = w.Write(bytes.Repeat([]byte("<p>bad gateway</p>\n"), 1<<20/16))
		return
	case lateRequest:
		// Counted in flight from now, so that keyLog waits for it; added
		// to detached while the client still waits, long before the
		// cleanup's Wait.
		p.track(key, +1)
		p.detached.Add(1)
		holdUntilGone(r)
		go func() {
			defer p.detached.Done()
			defer p.track(key, -1)
			p.forward(context.WithoutCancel(r.Context()), r, key, body, tag, n)
		}()
		return
	}

	res, err := p.forward(r.Context(), r, key, body, tag, n)
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
	case truncatedAnswer:
		endMidBody(w, res)
		return
	}
	copyHeader(w, res)
	w.WriteHeader(res.status)
	if _, err := w.Write(res.body); err == nil {
		p.mu.Lock()
		p.tags[tag][n-1].delivered = true
		p.tags[tag][n-1].replayed = res.header.Get("Idempotent-Replayed") == "true"
		p.mu.Unlock()
	}
}

// endMidBody sends res's status and headers with Connection: close instead
// of a Content-Length, then half its body, and closes the connection
// cleanly: to the client the answer ends there, as a close-delimited body
// cut by a proxy does.
func endMidBody(w http.ResponseWriter, res backendAnswer) {
	conn, buf, err := w.(http.Hijacker).Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	defer conn.Close()
	h := res.header.Clone()
	h.Del("Content-Length")
	h.Set("Connection", "close")
	fmt.Fprintf(buf, "HTTP/1.1 %d %s\r\n", res.status, http.StatusText(res.status))
	_ = h.Write(buf)
	_, _ = buf.WriteString("\r\n")
	_, _ = buf.Write(res.body[:len(res.body)/2])
	_ = buf.Flush()
}

type backendAnswer struct {
	status int
	header http.Header
	body   []byte
}

// forward sends the request, the n-th of tag, to the API until ctx ends
// (r's context: until the client gives up on it), and counts the creates it
// executed.
func (p *faultProxy) forward(ctx context.Context, r *http.Request, key string, body []byte, tag string, n int) (backendAnswer, error) {
	p.track(key, +1)
	defer p.track(key, -1)
	p.mu.Lock()
	p.forwards++
	p.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
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
		p.tags[tag][n-1].made = true
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

// forwarded returns how many requests the proxy has forwarded to the API.
func (p *faultProxy) forwarded() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.forwards
}

// attempts returns what the proxy saw of tag's requests.
func (p *faultProxy) attempts(tag string) []attemptLog {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]attemptLog(nil), p.tags[tag]...)
}

// consumed returns the request whose answer the client used for the create
// with key that has just returned: the last one the client sent with key,
// told apart by its stamp; and whether the proxy saw the API make the order
// for another request with key. Only one create with key may have run.
func (p *faultProxy) consumed(key string) (used attemptLog, found, madeByAnother bool) {
	stamp := lastStamp(key)
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, seen := range p.tags {
		for _, a := range seen {
			switch {
			case a.key != key:
			case a.stamp == stamp && stamp != "":
				used, found = a, true
			case a.made:
				madeByAnother = true
			}
		}
	}
	return used, found, madeByAnother
}

// track adds delta to the requests of key in flight (see inflight).
func (p *faultProxy) track(key string, delta int) {
	p.mu.Lock()
	p.inflight[key] += delta
	p.mu.Unlock()
	if delta < 0 {
		p.answered.Broadcast()
	}
}

// keyLog returns what the proxy saw of key, once every late request of key
// that has reached the proxy has been delivered and every request of key
// forwarded so far has been answered.
func (p *faultProxy) keyLog(key string) keyLog {
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

// stampHeader carries a number unique to each request the client sends
// through stampingTransport, so that the proxy can tell which of its
// requests' answers the client used (the last one it sent), whatever order
// they reached the proxy in.
const stampHeader = "X-Test-Attempt"

var stamps struct {
	sync.Mutex
	next int
	last map[string]string // key -> stamp of the last request sent with it
}

// stampingTransport is a RoundTripper that stamps every request (see
// stampHeader) and sends it on a transport of its own.
type stampingTransport struct{ next http.RoundTripper }

func (s stampingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	key, _ := idemhttp.ParseKey(r.Header.Get(idemhttp.HeaderKey))
	stamps.Lock()
	stamps.next++
	stamp := strconv.Itoa(stamps.next)
	if key != "" {
		if stamps.last == nil {
			stamps.last = map[string]string{}
		}
		stamps.last[key] = stamp
	}
	stamps.Unlock()
	r = r.Clone(r.Context()) // a RoundTripper must not change its request
	r.Header.Set(stampHeader, stamp)
	return s.next.RoundTrip(r)
}

func lastStamp(key string) string {
	stamps.Lock()
	defer stamps.Unlock()
	return stamps.last[key]
}

// stampingClient is the HTTP client of the client tests (testOptions).
var stampingClient = &http.Client{Transport: stampingTransport{http.DefaultTransport.(*http.Transport).Clone()}}

// newServer serves h on 127.0.0.1 until t ends and returns its URL.
func newServer(t *testing.T, h http.Handler) string {
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}
