package client_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/parcelhq/orderservice/client"
	"github.com/parcelhq/orderservice/internal/apitest"
)

// tokenPlan is what the token source gives for each attempt of a create.
type tokenPlan string

const (
	goodToken     tokenPlan = "a valid token"
	expiredToken  tokenPlan = "a token that expired"
	readOnlyToken tokenPlan = "a token without orders/create"
	noToken       tokenPlan = "an error from the token source"
)

// tokenSource returns a Token that gives plan[n-1] on its n-th call (one
// call per attempt), and a valid token after the plan.
func tokenSource(t *testing.T, api *apitest.API, plan ...tokenPlan) func(context.Context) (string, error) {
	var mu sync.Mutex
	calls := 0
	return func(context.Context) (string, error) {
		mu.Lock()
		calls++
		p := goodToken
		if calls <= len(plan) {
			p = plan[calls-1]
		}
		mu.Unlock()
		switch p {
		case expiredToken:
			return api.ExpiredToken(t, "alice"), nil
		case readOnlyToken:
			return api.Token(t, "alice", "orders/read"), nil
		case noToken:
			return "", errors.New("the session ended")
		}
		return api.Token(t, "alice"), nil
	}
}

// TestARefusalAfterAnAttemptThatMayHaveRunKeepsTheKey: once an attempt may
// have created the order (its answer was lost, cut, held past the timeout,
// or was a 5xx), a later attempt that fails in a way a retry cannot fix is
// not "nothing was created": the create ends in ErrGaveUp with the key and
// says to resume with it once fixed; resuming returns the one order.
func TestARefusalAfterAnAttemptThatMayHaveRunKeepsTheKey(t *testing.T) {
	t.Parallel()
	api := startAPI(t)
	scenarios := []struct {
		name   string
		faults []fault
		tokens []tokenPlan
		status int    // of the last failure; 0: no answer
		says   string // in the message, besides the key and how to resume
	}{
		{"a 401 for a token that expired, after an answer was lost", []fault{dropAnswer}, []tokenPlan{goodToken, expiredToken}, 401, "get a new token"},
		{"a 403 for a token without the scope, after an answer was lost", []fault{dropAnswer}, []tokenPlan{goodToken, readOnlyToken}, 403, "use a token with it"},
		{"a token source that fails, after an answer was lost", []fault{dropAnswer}, []tokenPlan{goodToken, noToken}, 0, "the session ended"},
		{"an answer over 1 MiB, after an answer was lost", []fault{dropAnswer, hugeAnswer}, nil, 0, "larger than 1048576 bytes"},
		{"a 401, after an answer cut mid-body", []fault{cutAnswer}, []tokenPlan{goodToken, expiredToken}, 401, "get a new token"},
		{"a 401, after a 201 whose body ended early", []fault{truncatedAnswer}, []tokenPlan{goodToken, expiredToken}, 401, "get a new token"},
		{"a 401, after an attempt that timed out", []fault{slowAnswer}, []tokenPlan{goodToken, expiredToken}, 401, "get a new token"},
		{"a 401, after API Gateway's 504", []fault{gatewayTimeout}, []tokenPlan{goodToken, expiredToken}, 401, "get a new token"},
		{"a 401, after a request that reached the API late", []fault{lateRequest}, []tokenPlan{goodToken, expiredToken}, 401, "get a new token"},
		// The 503 came from the proxy and the order was never made, but the
		// client cannot know that: the resume makes it. (Where the first
		// attempt made it, checkCreated wants the resume to be its replay.)
		{"a 401, after a 503", []fault{unavailableBare}, []tokenPlan{goodToken, expiredToken}, 401, "get a new token"},
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
	for _, s := range scenarios {
		t.Run(s.name+" keeps the key, and the resume gets the one order", func(t *testing.T) {
			t.Parallel()
			o := testOptions("")
			o.Token = tokenSource(t, api, s.tokens...)
			_, err := newClient(t, p.URL, o).Create(callCtx(t), order(t, s.name))
			ce := wantOutcomeUnknown(t, err, s.says)
			var apiErr *client.Error
			if errors.As(err, &apiErr) != (s.status != 0) || (apiErr != nil && apiErr.Status != s.status) {
				t.Errorf("last failure %v, want status %d", ce.Err, s.status)
			}

			got, err := newClient(t, p.URL, testOptions(api.Token(t, "alice"))).CreateWithKey(callCtx(t), ce.Key, order(t, s.name))
			if err != nil {
				t.Fatalf("resume: %v", err)
			}
			checkCreated(t, p, got, s.name) // the replay, if an attempt made the order

			checkOneOrder(t, api, s.name, got.Order.ID)
		})
	}
}

// wantOutcomeUnknown checks that err is a create's ErrGaveUp, not
// ErrNotRetryable, that keeps its key and says what went wrong (says) and to
// resume with the key once that is fixed.
func wantOutcomeUnknown(t *testing.T, err error, says string) *client.CallError {
	t.Helper()
	var ce *client.CallError
	if !errors.As(err, &ce) || !errors.Is(err, client.ErrGaveUp) || errors.Is(err, client.ErrNotRetryable) {
		t.Fatalf("%v, want a *CallError with ErrGaveUp only: an earlier attempt may have created the order", err)
	}
	if ce.Key == "" {
		t.Fatalf("%v has no key", err)
	}
	msg := err.Error()
	for _, w := range []string{ce.Key, says, "the order may or may not exist", "once that is fixed, resume with the same key"} {
		if !strings.Contains(msg, w) {
			t.Errorf("message %q lacks %q", msg, w)
		}
	}
	return ce
}

// TestNothingCreatedOnlyWhenNoAttemptCouldHaveRun: ErrNotRetryable ("nothing
// was created") stays the answer when no attempt can have made the order:
// the attempts before the refusal never reached the API, or the refusal is
// the API's answer for the key itself (an invalid order bound to it, a key
// reused), which it gives only when no order was made with it.
func TestNothingCreatedOnlyWhenNoAttemptCouldHaveRun(t *testing.T) {
	t.Parallel()
	api := startAPI(t)
	p := newFaultProxy(t, api.URL, func(tag string, n int) fault {
		if n == 1 && strings.HasPrefix(tag, "after a lost answer") {
			return dropAnswer
		}
		return pass
	})

	t.Run("a 401 after a connection the server refused is ErrNotRetryable", func(t *testing.T) {
		t.Parallel()
		const tag = "after a refused connection"
		closed := closedAddr(t)
		dials := 0
		var mu sync.Mutex
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
			mu.Lock()
			dials++
			first := dials == 1
			mu.Unlock()
			if first {
				addr = closed // connection refused: nothing was sent
			}
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		}
		o := exactOptions("")
		o.HTTPClient = &http.Client{Transport: tr}
		o.Token = tokenSource(t, api, goodToken, expiredToken)
		var retried []client.Retry
		o.OnRetry = func(r client.Retry) { retried = append(retried, r) }
		_, err := newClient(t, p.URL, o).Create(callCtx(t), order(t, tag))
		wantNotRetryable(t, err, 401, "")
		if len(retried) != 1 || retried[0].Status != 0 {
			t.Errorf("retries %+v, want one, of a request that got no answer", retried)
		}
		wantAttempts(t, p, tag, 1)
		checkNoOrder(t, api, tag)
	})

	t.Run("an invalid order after a lost answer is ErrNotRetryable: the API bound the key to it", func(t *testing.T) {
		t.Parallel()
		const tag = "after a lost answer: an invalid order"
		req := order(t, tag)
		req.Receiver.Address.Postcode = "40000"
		_, err := newClient(t, p.URL, exactOptions(api.Token(t, "alice"))).Create(callCtx(t), req)
		if apiErr := wantNotRetryable(t, err, 400, client.TypeInvalidOrder); !apiErr.Replayed {
			t.Error("the second attempt's 400 was not the replay of the first's")
		}
		wantAttempts(t, p, tag, 2)
		checkNoOrder(t, api, tag)
	})

	t.Run("a reused key after a lost answer is ErrNotRetryable", func(t *testing.T) {
		t.Parallel()
		const tag = "after a lost answer: a reused key"
		c := newClient(t, p.URL, exactOptions(api.Token(t, "alice")))
		key := client.NewKey()
		if _, err := c.CreateWithKey(callCtx(t), key, order(t, "the key's first order")); err != nil {
			t.Fatal(err)
		}
		_, err := c.CreateWithKey(callCtx(t), key, order(t, tag))
		wantNotRetryable(t, err, 422, client.TypeKeyReused)
		wantAttempts(t, p, tag, 2)
		checkNoOrder(t, api, tag)
	})
}

// TestAResumeThatIsRefusedKeepsTheKey: CreateWithKey cannot know whether an
// earlier run's attempt with the key made the order, so a refusal of its
// first attempt is ErrGaveUp, not "nothing was created".
func TestAResumeThatIsRefusedKeepsTheKey(t *testing.T) {
	t.Parallel()
	api := startAPI(t)
	p := newFaultProxy(t, api.URL, faults(dropAnswer))
	const tag = "resumed with an expired token"
	key := client.NewKey()
	first := exactOptions(api.Token(t, "alice"))
	first.MaxAttempts = 1 // the process dies after its first attempt
	if _, err := newClient(t, p.URL, first).CreateWithKey(callCtx(t), key, order(t, tag)); !errors.Is(err, client.ErrGaveUp) {
		t.Fatalf("first run: %v, want ErrGaveUp", err)
	}
	for _, tc := range []struct {
		token tokenPlan
		says  string
	}{{expiredToken, "get a new token"}, {readOnlyToken, "use a token with it"}, {noToken, "the session ended"}} {
		o := exactOptions("")
		o.Token = tokenSource(t, api, tc.token)
		_, err := newClient(t, p.URL, o).CreateWithKey(callCtx(t), key, order(t, tag))
		t.Run("a resume with "+string(tc.token)+" is ErrGaveUp", func(t *testing.T) {
			if ce := wantOutcomeUnknown(t, err, tc.says); ce.Key != key {
				t.Errorf("key %q, want %q", ce.Key, key)
			}
		})
	}
	got, err := newClient(t, p.URL, testOptions(api.Token(t, "alice"))).CreateWithKey(callCtx(t), key, order(t, tag))
	if err != nil {
		t.Fatalf("resume with a valid token: %v", err)
	}
	checkCreated(t, p, got, tag) // the replay of the first run's order
	checkOneOrder(t, api, tag, got.Order.ID)
}

// TestATLSFailure: a certificate that does not verify is not retried; it
// is "nothing was created" on the first attempt, and an unknown outcome
// after an attempt whose answer was lost.
func TestATLSFailure(t *testing.T) {
	t.Parallel()
	api := startAPI(t)
	p := newFaultProxy(t, api.URL, func(tag string, n int) fault {
		if n == 1 && tag == "TLS after a lost answer" {
			return dropAnswer
		}
		return pass
	})
	front := httptest.NewTLSServer(p) // 127.0.0.1
	t.Cleanup(front.Close)
	trusted := x509.NewCertPool()
	trusted.AddCert(front.Certificate())

	// tlsClient trusts the server's certificate for its first `good`
	// connections and none after: the certificate changed to one that
	// does not verify.
	tlsClient := func(good int) *http.Client {
		var mu sync.Mutex
		dials := 0
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.DialTLSContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
			mu.Lock()
			dials++
			roots := trusted
			if dials > good {
				roots = x509.NewCertPool()
			}
			mu.Unlock()
			raw, err := (&net.Dialer{}).DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			conn := tls.Client(raw, &tls.Config{RootCAs: roots, ServerName: "127.0.0.1"})
			if err := conn.HandshakeContext(ctx); err != nil {
				raw.Close()
				return nil, err
			}
			return conn, nil
		}
		return &http.Client{Transport: stampingTransport{tr}}
	}

	t.Run("on the first attempt it is ErrNotRetryable, with nothing sent", func(t *testing.T) {
		t.Parallel()
		const tag = "TLS on the first attempt"
		o := exactOptions(api.Token(t, "alice"))
		o.HTTPClient = tlsClient(0)
		_, err := newClient(t, front.URL, o).Create(callCtx(t), order(t, tag))
		var verr *tls.CertificateVerificationError
		if !errors.Is(err, client.ErrNotRetryable) || errors.Is(err, client.ErrGaveUp) || !errors.As(err, &verr) {
			t.Fatalf("%v, want ErrNotRetryable with the certificate error", err)
		}
		wantAttempts(t, p, tag, 0)
	})

	t.Run("after an answer was lost it is ErrGaveUp, and the resume gets the order", func(t *testing.T) {
		t.Parallel()
		const tag = "TLS after a lost answer"
		o := exactOptions(api.Token(t, "alice"))
		o.HTTPClient = tlsClient(1)
		_, err := newClient(t, front.URL, o).Create(callCtx(t), order(t, tag))
		ce := wantOutcomeUnknown(t, err, "certificate")
		var verr *tls.CertificateVerificationError
		if !errors.As(err, &verr) {
			t.Errorf("%v does not carry the certificate error", err)
		}
		o.HTTPClient = tlsClient(1 << 30)
		got, err := newClient(t, front.URL, o).CreateWithKey(callCtx(t), ce.Key, order(t, tag))
		if err != nil {
			t.Fatalf("resume: %v", err)
		}
		checkCreated(t, p, got, tag) // the replay of the first attempt's order
		checkOneOrder(t, api, tag, got.Order.ID)
	})
}

// closedAddr returns a 127.0.0.1 address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func checkNoOrder(t *testing.T, api *apitest.API, tag string) {
	t.Helper()
	for id, d := range api.Orders(t) {
		if d == tag {
			t.Errorf("order %s was made for %q", id, tag)
		}
	}
}
