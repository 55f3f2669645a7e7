package client

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"math"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// verdict is what the client does with an answer.
type verdict int

const (
	// succeed: a 2xx, the answer to decode.
	succeed verdict = iota
	// retry: resend the same request (same key, same body) after a pause.
	retry
	// fail: return the answer as an error; resending it cannot help.
	fail
)

func (v verdict) String() string {
	switch v {
	case succeed:
		return "succeed"
	case retry:
		return "retry"
	default:
		return "fail"
	}
}

// policy is the retry policy: the verdict on an answer of status whose
// problem type is typ ("" when the body is not problem+json). It decides by
// status, refined by type only where a status mixes transient and permanent
// failures:
//
//   - 2xx: succeed.
//   - 408, 409, 425, 429: retry. 409 is a key in use, a lost commit or a
//     write conflict, each of which a retry of the same request resolves;
//     425 is the in-use answer in its Too Early form; 408 and 429 ask for it.
//   - 500-599: retry (the API stores no 5xx, so a retry runs afresh or
//     replays what an earlier attempt committed), except 501, 505, 506,
//     508, 510 and 511, which say the server or the network will never
//     handle this request as sent, and a 500 idempotent-response-too-large
//     or idempotent-request-too-many-writes, which fails the same way every
//     time.
//   - everything else, 1xx, 3xx (redirects are not followed: a POST must
//     not turn into a GET) and the other 4xx (400, 401, 403, 404, 405, 413,
//     415, 422, ...): fail. Resending the same request gets the same answer.
func policy(status int, typ string) verdict {
	switch {
	case status >= 200 && status <= 299:
		return succeed
	case status == http.StatusRequestTimeout, status == http.StatusConflict,
		status == http.StatusTooEarly, status == http.StatusTooManyRequests:
		return retry
	case status >= 500 && status <= 599:
		switch status {
		case http.StatusNotImplemented, http.StatusHTTPVersionNotSupported, http.StatusVariantAlsoNegotiates,
			http.StatusLoopDetected, http.StatusNotExtended, http.StatusNetworkAuthenticationRequired:
			return fail
		}
		if status == http.StatusInternalServerError && (typ == TypeResponseTooLarge || typ == TypeTooManyWrites) {
			return fail
		}
		return retry
	}
	return fail
}

// retryableTransport reports whether a request that got no answer, failing
// with err, may pass if sent again. Network errors and timeouts may (the
// request may or may not have reached the server; the key makes resending
// it safe); a certificate that does not verify, or a server that does not
// speak TLS where TLS was asked for, will not.
func retryableTransport(err error) bool {
	var (
		verr    *tls.CertificateVerificationError
		unknown x509.UnknownAuthorityError
		host    x509.HostnameError
		invalid x509.CertificateInvalidError
		record  tls.RecordHeaderError
	)
	switch {
	case errors.As(err, &verr), errors.As(err, &unknown), errors.As(err, &host),
		errors.As(err, &invalid), errors.As(err, &record):
		return false
	}
	return true
}

// beforeSending reports whether err, the error of a request that got no
// answer, arises only before any of the request is written: no connection
// could be made (a dial, DNS or proxy failure) or its TLS handshake was
// refused (the certificate errors retryableTransport names). For any other
// error the request may have reached the server.
func beforeSending(err error) bool {
	var (
		op  *net.OpError
		dns *net.DNSError
	)
	switch {
	case errors.As(err, &op) && (op.Op == "dial" || op.Op == "proxyconnect"),
		errors.As(err, &dns):
		return true
	}
	return !retryableTransport(err)
}

// backoff returns the pause after failed attempt n (from 1) when the server
// named none: "full jitter", uniform in [0, min(max, base·2^(n-1))]. rnd(k)
// returns a uniform integer in [0, k).
func backoff(n int, base, max time.Duration, rnd func(int64) int64) time.Duration {
	if base <= 0 || max <= 0 {
		return 0
	}
	if n < 1 {
		n = 1
	}
	ceiling := max
	if n-1 < 62 {
		if d := base << (n - 1); d > 0 && d>>(n-1) == base && d < max {
			ceiling = d
		}
	}
	return time.Duration(rnd(int64(ceiling) + 1))
}

// pause returns the wait after failed attempt n: the backoff, but never less
// than the server's Retry-After (0 when it sent none), which the client
// treats as a floor.
func pause(n int, retryAfter time.Duration, base, max time.Duration, rnd func(int64) int64) time.Duration {
	d := backoff(n, base, max, rnd)
	if retryAfter > d {
		d = retryAfter
	}
	return d
}

// parseRetryAfter reads a Retry-After value: delay-seconds or an HTTP-date
// (RFC 9110 section 10.2.3), relative to now. A date in the past is 0. ok
// is false for a missing or unreadable value.
func parseRetryAfter(v string, now time.Time) (d time.Duration, ok bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if v[0] >= '0' && v[0] <= '9' {
		for i := 0; i < len(v); i++ {
			if v[i] < '0' || v[i] > '9' {
				return 0, false
			}
		}
		secs, err := strconv.ParseInt(v, 10, 64)
		if err != nil || secs > math.MaxInt64/int64(time.Second) {
			// Too many digits to be a real request: wait "forever", which
			// Options.MaxRetryAfter turns into giving up.
			return time.Duration(math.MaxInt64), true
		}
		return time.Duration(secs) * time.Second, true
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	if d := t.Sub(now); d > 0 {
		return d, true
	}
	return 0, true
}
