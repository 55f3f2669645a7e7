package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"mime"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strings"
	"sync/atomic"
	"time"
	"unicode"
)

// Defaults of the Options fields left zero.
const (
	DefaultMaxAttempts    = 8
	DefaultAttemptTimeout = 15 * time.Second
	DefaultBaseDelay      = 250 * time.Millisecond
	DefaultMaxDelay       = 8 * time.Second
	DefaultMaxRetryAfter  = time.Minute
)

// maxResponseBytes bounds the body the client reads: an order is a few
// hundred bytes, a problem document less.
const maxResponseBytes = 1 << 20

// Options configures a Client. The zero value of every field has a default.
type Options struct {
	// HTTPClient sends the requests (default: a client on
	// http.DefaultTransport). The Client uses a copy that does not follow
	// redirects: a POST that a redirect turned into a GET would not create
	// the order.
	HTTPClient *http.Client
	// Token returns the bearer token for a request; it is called before
	// every attempt, so a token that expires while a create is retried is
	// replaced. An error from it ends the call: ErrNotRetryable, or, for a
	// create whose order an earlier attempt may have made, ErrGaveUp. Nil
	// sends no Authorization header. StaticToken wraps a fixed token.
	Token func(context.Context) (string, error)
	// MaxAttempts bounds the requests one call sends, the first included
	// (default DefaultMaxAttempts; 1 never retries).
	MaxAttempts int
	// AttemptTimeout bounds each attempt, from sending the request to
	// reading the whole answer (default DefaultAttemptTimeout, above the
	// function's 10 s timeout). An attempt that times out is retried with
	// the same key: if it did reach the service, the retry gets its outcome
	// (or 409 while it still runs, and then its outcome).
	AttemptTimeout time.Duration
	// BaseDelay and MaxDelay shape the backoff: the pause after failed
	// attempt n is uniform in [0, min(MaxDelay, BaseDelay·2^(n-1))]
	// ("full jitter"; defaults DefaultBaseDelay, DefaultMaxDelay). A
	// Retry-After is a floor on that pause.
	BaseDelay, MaxDelay time.Duration
	// MaxRetryAfter is the longest Retry-After the client waits out; asked
	// to wait longer, it gives up at once (ErrGaveUp) rather than sleep
	// (default DefaultMaxRetryAfter). It also gives up at once when the
	// pause would outlast the context's deadline.
	MaxRetryAfter time.Duration
	// OnRetry, when set, is called after each failed attempt that will be
	// retried, before the pause (for logs and progress reports). It must
	// not block for long.
	OnRetry func(Retry)
	// OnAttempt, when set, is called just before each request is sent,
	// once its token is got (for logs: a create's key is known before
	// anything is sent). It must not block for long.
	OnAttempt func(Attempt)
}

// Attempt describes a request about to be sent.
type Attempt struct {
	Op      string // "create order" or "get order"
	Key     string // the Idempotency-Key (creates only)
	Attempt int    // from 1
}

// Retry describes an attempt that failed and is about to be retried.
type Retry struct {
	Op      string        // "create order" or "get order"
	Key     string        // the Idempotency-Key (creates only)
	Attempt int           // the attempt that failed, from 1
	Status  int           // its HTTP status; 0 when no answer arrived
	Err     error         // the failure: an *Error, a network error or timeout, or a 2xx that is not an order
	Wait    time.Duration // the pause before the next attempt
}

// StaticToken returns an Options.Token that always returns token.
func StaticToken(token string) func(context.Context) (string, error) {
	return func(context.Context) (string, error) { return token, nil }
}

// Client calls the order API. It is safe for concurrent use.
type Client struct {
	base string // scheme://host[/prefix], no trailing slash
	hc   *http.Client
	opts Options
	rnd  func(int64) int64
	now  func() time.Time
}

// New returns a Client for the API at baseURL, an http or https URL
// ("http://127.0.0.1:3000", or a deployed stack's ApiUrl, path prefix
// included). It fails on a URL that is not absolute http(s) or that has a
// query or fragment.
func New(baseURL string, opts Options) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil {
		return nil, fmt.Errorf("client: base URL: %w", err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("client: base URL %q is not an http:// or https:// URL with a host", baseURL)
	}
	if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return nil, fmt.Errorf("client: base URL %q has a query, fragment or user info", baseURL)
	}
	hc := http.Client{}
	if opts.HTTPClient != nil {
		hc = *opts.HTTPClient
	}
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	if opts.MaxAttempts <= 0 {
		opts.MaxAttempts = DefaultMaxAttempts
	}
	if opts.AttemptTimeout <= 0 {
		opts.AttemptTimeout = DefaultAttemptTimeout
	}
	if opts.BaseDelay <= 0 {
		opts.BaseDelay = DefaultBaseDelay
	}
	if opts.MaxDelay <= 0 {
		opts.MaxDelay = DefaultMaxDelay
	}
	if opts.MaxRetryAfter <= 0 {
		opts.MaxRetryAfter = DefaultMaxRetryAfter
	}
	return &Client{
		base: strings.TrimSuffix(u.String(), "/"),
		hc:   &hc,
		opts: opts,
		rnd:  rand.Int64N,
		now:  time.Now,
	}, nil
}

// Created is the outcome of a create.
type Created struct {
	Order Order
	// Replayed: the answer carried Idempotent-Replayed: true. It is the
	// stored outcome of an earlier request with this key (an earlier
	// attempt of this call whose answer was lost, or, with CreateWithKey,
	// an earlier run): the order was created once, then.
	Replayed bool
	// Key is the Idempotency-Key every attempt carried.
	Key string
	// Attempts is how many requests were sent.
	Attempts int
}

// Create books the delivery req, exactly once however many attempts it
// takes: it makes a new key (NewKey) and sends it, with the same body, on
// every attempt. It retries network errors, timeouts, 408, 409, 425, 429,
// 5xx and a 2xx that is not an order (see Options for the backoff), and
// returns the order when the API answers 201. Otherwise it returns a
// *CallError with the key:
//
//   - ErrNotRetryable when an attempt failed in a way a retry cannot
//     change (400 invalid order, 401, 403, 422, no token, ...) and no
//     attempt can have made the order: nothing was created; fix the
//     request and Create it again (a new key).
//   - ErrGaveUp when the order may or may not exist: attempts or the
//     context ran out, or an attempt failed in a way a retry cannot change
//     after an earlier attempt may have made the order (its answer was
//     lost or cut, it timed out, or it was a 5xx): fix what the error
//     names if need be, then resume with CreateWithKey and CallError.Key.
//
// A process that may die before Create returns loses the key with it; use
// NewKey and CreateWithKey and store the key first (see the package doc).
func (c *Client) Create(ctx context.Context, req OrderRequest) (Created, error) {
	return c.create(ctx, NewKey(), true, req)
}

// CreateWithKey is Create with the caller's key: to resume an order whose
// earlier attempts (perhaps in a process that has since died) used key, pass
// the same key and the same req. The API answers with the stored outcome
// (Created.Replayed) or runs the request if no attempt ever reached it.
//
// The client cannot know whether key was sent before, so a failure a retry
// cannot change is ErrGaveUp (the order may exist: fix it, and resume with
// the key again), except for the API's own outcome for the key, which says
// no order was made with it: a 400 invalid-order bound to the key, or a 422
// for a key used before with a different request (matching ErrKeyReused);
// these are ErrNotRetryable, as is a key the API would refuse (CheckKey),
// with no request sent. Resume within the API's retention (24 hours by
// default): after it the key is forgotten and the request runs again.
func (c *Client) CreateWithKey(ctx context.Context, key string, req OrderRequest) (Created, error) {
	return c.create(ctx, key, false, req)
}

func (c *Client) create(ctx context.Context, key string, own bool, req OrderRequest) (Created, error) {
	const op = "create order"
	if err := CheckKey(key); err != nil {
		return Created{}, &CallError{Op: op, Key: key, Reason: ErrNotRetryable, Err: err}
	}
	body, err := json.Marshal(req)
	if err != nil {
		return Created{}, &CallError{Op: op, Key: key, OwnKey: own, Reason: ErrNotRetryable, Err: fmt.Errorf("encode order: %w", err)}
	}
	o, ans, n, cerr := c.call(ctx, op, key, own, func(ctx context.Context) (*http.Request, error) {
		r, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+"/orders", bytes.NewReader(body))
		if err != nil {
			return nil, err
		}
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set("Idempotency-Key", keyHeader(key))
		// Without GetBody the transport does not resend the request by
		// itself (it would for one with an Idempotency-Key), so that every
		// resend is an attempt: counted, paced and reported.
		r.GetBody = nil
		return r, nil
	})
	if cerr != nil {
		return Created{}, cerr
	}
	return Created{Order: o, Replayed: ans.header.Get("Idempotent-Replayed") == "true", Key: key, Attempts: n}, nil
}

// Get returns the order with id, retrying network errors, timeouts, 429 and
// 5xx as Create does, and a 2xx whose body is not an order. An unknown id is
// ErrNotRetryable matching ErrNotFound.
func (c *Client) Get(ctx context.Context, id string) (Order, error) {
	const op = "get order"
	if id == "" {
		return Order{}, &CallError{Op: op, Reason: ErrNotRetryable, Err: errors.New("the order id is empty")}
	}
	o, _, _, cerr := c.call(ctx, op, "", false, func(ctx context.Context) (*http.Request, error) {
		return http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/orders/"+url.PathEscape(id), nil)
	})
	if cerr != nil {
		return Order{}, cerr
	}
	return o, nil
}

// answer is one complete HTTP answer.
type answer struct {
	status int
	header http.Header
	body   []byte
}

// call sends the request newReq makes until the policy says succeed or fail,
// attempts run out or ctx ends. It returns the order of the successful
// answer, the answer and the number of attempts, or a *CallError.
//
// A call with a key (a create) keeps track of whether the order may exist:
// an attempt may have made it when it timed out, failed after it may have
// been sent, was answered 408, 409, 425, 429 or 5xx, or got a 2xx that is
// not an order or an answer too large to read; and with the caller's key
// (own false) an earlier call may have. Once the order may exist, an
// attempt that fails in a way a retry cannot fix ends the call in ErrGaveUp
// (the outcome is unknown: resume with the key once that is fixed), unless
// its answer is the API's outcome for the key itself (keyOutcome), which
// says no order was made with it.
func (c *Client) call(ctx context.Context, op, key string, own bool, newReq func(context.Context) (*http.Request, error)) (Order, answer, int, *CallError) {
	callErr := func(n int, reason, err error) *CallError {
		return &CallError{Op: op, Key: key, OwnKey: own, Attempts: n, Reason: reason, Err: err}
	}
	gaveUp := func(n int, last error, why string) *CallError {
		e := callErr(n, ErrGaveUp, last)
		e.Stopped = why
		if err := ctx.Err(); err != nil {
			e.ctxErr = err
			if last == nil {
				e.Err = err
			}
		}
		return e
	}
	var (
		last error
		// mayExist: the order may exist; firstMaybe is the first attempt
		// of this call that may have made it (0: none, but the caller's
		// key may have been used before).
		mayExist   = key != "" && !own
		firstMaybe int
	)
	for n := 1; ; n++ {
		if ctx.Err() != nil {
			return Order{}, answer{}, n - 1, gaveUp(n-1, last, "the context ended")
		}
		ans, sent, err := c.attempt(ctx, op, key, n, mayExist, newReq)
		var (
			v          verdict
			retryAfter time.Duration
			status     int
			order      Order
			ran        bool   // this attempt may have made the order
			failed     string // how an attempt that cannot succeed failed
		)
		switch {
		case err != nil && ctx.Err() != nil:
			return Order{}, answer{}, n, gaveUp(n, last, "the context ended")
		case err != nil:
			last, ran = err, sent
			var (
				local localError
				big   tooLargeError
			)
			switch {
			case errors.As(err, &local):
				v, failed = fail, "could not be sent"
			case errors.As(err, &big):
				v, failed, status = fail, "got an answer too large to read", big.status
			case !retryableTransport(err):
				v, failed = fail, "failed in a way a retry cannot fix"
			default:
				v = retry
			}
		default:
			status = ans.status
			var typ string
			if ans.status < 200 || ans.status > 299 {
				apiErr := parseError(ans, c.now())
				typ, last, retryAfter = apiErr.Type, apiErr, apiErr.RetryAfter
			}
			switch v = policy(ans.status, typ); v {
			case succeed:
				if order, err = decodeOrder(ans); err != nil {
					// Perhaps the API's answer, cut short: the order may
					// exist, and the replay of a retry carries it whole.
					v, last, ran = retry, err, true
				}
			case retry:
				ran = true
			case fail:
				failed = "was refused"
			}
		}
		if key != "" && ran && firstMaybe == 0 {
			mayExist, firstMaybe = true, n
		}
		switch v {
		case succeed:
			return order, ans, n, nil
		case fail:
			if mayExist && !keyOutcome(last) {
				e := gaveUp(n, last, unknownOutcome(n, failed, firstMaybe))
				e.fixFirst = true
				return Order{}, answer{}, n, e
			}
			return Order{}, answer{}, n, callErr(n, ErrNotRetryable, last)
		}
		if n >= c.opts.MaxAttempts {
			return Order{}, answer{}, n, gaveUp(n, last, "no attempts left")
		}
		if retryAfter > c.opts.MaxRetryAfter {
			return Order{}, answer{}, n, gaveUp(n, last, fmt.Sprintf("the server asked to wait %v, longer than %v", retryAfter, c.opts.MaxRetryAfter))
		}
		wait := pause(n, retryAfter, c.opts.BaseDelay, c.opts.MaxDelay, c.rnd)
		next := c.now().Add(wait)
		if deadline, ok := ctx.Deadline(); ok && !next.Before(deadline) {
			return Order{}, answer{}, n, gaveUp(n, last, fmt.Sprintf("the next attempt, in %v, would start after the context's deadline", wait.Round(time.Millisecond)))
		}
		if c.opts.OnRetry != nil {
			c.opts.OnRetry(Retry{Op: op, Key: key, Attempt: n, Status: status, Err: last, Wait: wait})
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return Order{}, answer{}, n, gaveUp(n, last, "the context ended")
		case <-t.C:
		}
	}
}

// unknownOutcome is CallError.Stopped for attempt n, which failed as failed
// says, after attempt first of the call (0: an earlier call with the key)
// may have made the order.
func unknownOutcome(n int, failed string, first int) string {
	s := fmt.Sprintf("attempt %d %s", n, failed)
	switch first {
	case 0:
		return s + ", and an earlier use of this key may have made the order"
	case n:
		return s + ", and may itself have made the order"
	}
	return s + fmt.Sprintf(", and attempt %d may have made the order", first)
}

// keyOutcome reports whether err is an answer the API gives a create only
// as the outcome its key is bound to, and so only when no order was made
// with the key: a replayed answer (a stored 400 invalid-order), a 400
// invalid-order (which the API stores under the key, or, when another
// attempt with the key committed first, replaces with that attempt's
// outcome), or a 422 idempotency-key-reused (the key is bound to a
// different request). After an earlier attempt that may have made the
// order, such an answer still means it did not.
func keyOutcome(err error) bool {
	var e *Error
	if !errors.As(err, &e) {
		return false
	}
	return e.Replayed || errors.Is(e, ErrKeyReused) ||
		(e.Status == http.StatusBadRequest && e.Type == TypeInvalidOrder)
}

// localError is a failure before anything was sent (no token).
type localError struct{ err error }

func (e localError) Error() string { return e.err.Error() }
func (e localError) Unwrap() error { return e.err }

// tooLargeError is an answer whose body is longer than maxResponseBytes.
type tooLargeError struct{ status int }

func (e tooLargeError) Error() string {
	return fmt.Sprintf("the answer (%d %s) is larger than %d bytes", e.status, http.StatusText(e.status), maxResponseBytes)
}

// timeoutError is an attempt that ran out of Options.AttemptTimeout.
type timeoutError struct{ d time.Duration }

func (e timeoutError) Error() string {
	return fmt.Sprintf("the attempt timed out after %v", e.d)
}
func (e timeoutError) Timeout() bool { return true }

// attempt sends one request, attempt n of op, and reads its whole answer
// within the attempt timeout. An error is a transport failure (no complete
// answer), a timeoutError, a tooLargeError, or a localError. sent reports,
// with an error, whether the request may have reached the server: false
// only when it failed before anything of it could be written (no token, no
// connection). mayExist, for a create, says an earlier attempt or use of
// the key may have reached the API: the request then carries
// "Idempotency-Retry: ?1", with which the API looks up the stored outcome
// before it runs anything.
func (c *Client) attempt(ctx context.Context, op, key string, n int, mayExist bool, newReq func(context.Context) (*http.Request, error)) (ans answer, sent bool, err error) {
	actx, cancel := context.WithTimeout(ctx, c.opts.AttemptTimeout)
	defer cancel()
	var gotConn atomic.Bool
	actx = httptrace.WithClientTrace(actx, &httptrace.ClientTrace{
		GotConn: func(httptrace.GotConnInfo) { gotConn.Store(true) },
	})
	req, err := newReq(actx)
	if err != nil {
		return answer{}, false, localError{err}
	}
	req.Header.Set("Accept", "application/json, application/problem+json")
	req.Header.Set("User-Agent", "orderservice-go-client")
	if key != "" && mayExist {
		req.Header.Set("Idempotency-Retry", "?1")
	}
	if c.opts.Token != nil {
		tok, err := c.opts.Token(ctx)
		if err != nil {
			return answer{}, false, localError{fmt.Errorf("bearer token: %w", err)}
		}
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	if c.opts.OnAttempt != nil {
		c.opts.OnAttempt(Attempt{Op: op, Key: key, Attempt: n})
	}
	res, err := c.hc.Do(req)
	if err == nil {
		var body []byte
		body, err = io.ReadAll(io.LimitReader(res.Body, maxResponseBytes+1))
		res.Body.Close()
		if err == nil && len(body) > maxResponseBytes {
			return answer{}, true, tooLargeError{res.StatusCode}
		}
		if err == nil {
			return answer{status: res.StatusCode, header: res.Header, body: body}, true, nil
		}
		err = fmt.Errorf("reading the answer (%d %s): %w", res.StatusCode, http.StatusText(res.StatusCode), err)
		sent = true
	} else {
		sent = gotConn.Load() || !beforeSending(err)
	}
	if ctx.Err() == nil && errors.Is(actx.Err(), context.DeadlineExceeded) {
		return answer{}, sent, timeoutError{c.opts.AttemptTimeout}
	}
	return answer{}, sent, err
}

// parseError returns the *Error of a non-2xx answer.
func parseError(a answer, now time.Time) *Error {
	e := &Error{Status: a.status, Replayed: a.header.Get("Idempotent-Replayed") == "true"}
	e.RetryAfter, _ = parseRetryAfter(a.header.Get("Retry-After"), now)
	if a.status == http.StatusUnauthorized || a.status == http.StatusForbidden {
		e.Challenge = a.header.Get("WWW-Authenticate")
	}
	mt, _, _ := mime.ParseMediaType(a.header.Get("Content-Type"))
	var doc struct {
		Type     string       `json:"type"`
		Title    string       `json:"title"`
		Detail   string       `json:"detail"`
		Instance string       `json:"instance"`
		Errors   []FieldError `json:"errors"`
		Message  string       `json:"message"` // API Gateway's own answers
	}
	switch err := json.Unmarshal(a.body, &doc); {
	case err == nil && mt == "application/problem+json":
		e.Type, e.Title, e.Detail, e.Instance, e.Errors = doc.Type, doc.Title, doc.Detail, doc.Instance, doc.Errors
	case err == nil && doc.Message != "":
		e.Detail = doc.Message
	case err != nil:
		e.Detail = snippet(a.body)
	}
	if e.Title == "" {
		e.Title = http.StatusText(a.status)
	}
	return e
}

// snippet returns the start of a body that is not JSON (an HTML error page
// of a proxy) as one short line.
func snippet(b []byte) string {
	s := strings.Map(func(r rune) rune {
		if unicode.IsSpace(r) || !unicode.IsPrint(r) {
			return ' '
		}
		return r
	}, string(b))
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > 120 {
		s = string(r[:120]) + "..."
	}
	return s
}

// decodeOrder decodes a 2xx answer's body as an order.
func decodeOrder(a answer) (Order, error) {
	var o Order
	if err := json.Unmarshal(a.body, &o); err != nil {
		return Order{}, fmt.Errorf("the API answered %d with a body that is not an order: %w", a.status, err)
	}
	if o.ID == "" {
		return Order{}, fmt.Errorf("the API answered %d with an order without order_id", a.status)
	}
	return o, nil
}
