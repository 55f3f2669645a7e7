package idemhttp

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/awslabs/aws-lambda-go-api-proxy/httpadapter"

	"github.com/parcelhq/orderservice/internal/idem"
	"github.com/parcelhq/orderservice/internal/problem"
)

const order = `{"sender":{"name":"Ann"},"items":[{"sku":"A1","qty":2}]}`

func TestFirstResponseIsTheHandlersAndRetriesReplayItByteForByte(t *testing.T) {
	t.Parallel()
	h := newHarness(t, idem.Config{}, Options{}, createOrder)
	first := h.send(t, "/orders", "application/json", order, "order-1")
	if first.Status != http.StatusCreated || !strings.HasPrefix(first.Header.Get("Location"), "/orders/") ||
		strings.Join(first.Header.Values("X-Trace"), ",") != "a,b" {
		t.Fatalf("first response %d %v %s is not the handler's", first.Status, first.Header, first.Body)
	}
	if h.lastOutcome() != OutcomeStored {
		t.Fatalf("outcome %q, want %q", h.lastOutcome(), OutcomeStored)
	}
	for i := range 2 {
		replay := h.send(t, "/orders", "application/json", order, "order-1")
		wantReplayOf(t, first, replay)
		if h.lastOutcome() != OutcomeReplayed {
			t.Fatalf("retry %d: outcome %q, want %q", i, h.lastOutcome(), OutcomeReplayed)
		}
	}
	if runs, effects := h.runs.Load(), h.effectCount(t); runs != 1 || effects != 1 {
		t.Fatalf("handler ran %d times with %d effects, want 1 and 1", runs, effects)
	}
}

func TestTheQuotedAndTheBareFormOfAKeyAreOneRecord(t *testing.T) {
	t.Parallel()
	h := newHarness(t, idem.Config{}, Options{}, createOrder)
	first := h.send(t, "/orders", "application/json", order, `"k-42"`)
	replay := h.send(t, "/orders", "application/json", order, `k-42`)
	wantReplayOf(t, first, replay)
	if runs, recs := h.runs.Load(), h.records(t); runs != 1 || recs != 1 {
		t.Fatalf("%d runs and %d records, want 1 and 1", runs, recs)
	}
}

func TestKeyValidation(t *testing.T) {
	t.Parallel()
	h := newHarness(t, idem.Config{}, Options{}, createOrder)
	cases := []struct {
		name string
		keys []string
		slug string
	}{
		{"a request without a key is rejected as missing", nil, TypeKeyMissing},
		{"an empty key is rejected", []string{""}, TypeKeyInvalid},
		{"a key longer than 255 characters is rejected", []string{strings.Repeat("x", 256)}, TypeKeyInvalid},
		{"a key with a non-ASCII character is rejected", []string{"ключ"}, TypeKeyInvalid},
		{"an unterminated quoted key is rejected", []string{`"abc`}, TypeKeyInvalid},
		{"a quoted key with a bad escape is rejected", []string{`"a\qb"`}, TypeKeyInvalid},
		{"a list of keys is rejected", []string{`"a", "b"`}, TypeKeyInvalid},
		{"a key with parameters is rejected", []string{`"a";x=1`}, TypeKeyInvalid},
		{"two Idempotency-Key header lines are rejected", []string{"a", "b"}, TypeKeyInvalid},
		{"two identical Idempotency-Key header lines are rejected", []string{"a", "a"}, TypeKeyInvalid},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rep := h.send(t, "/orders", "application/json", order, tc.keys...)
			p := wantProblem(t, rep, http.StatusBadRequest, tc.slug)
			if len(p.Errors) != 1 || p.Errors[0].Header != HeaderKey {
				t.Errorf("problem errors %+v do not name the %s header", p.Errors, HeaderKey)
			}
		})
	}
	if runs, recs := h.runs.Load(), h.records(t); runs != 0 || recs != 0 {
		t.Fatalf("invalid keys ran the handler %d times and left %d records", runs, recs)
	}
}

func TestAnOptionalKeyLetsUnkeyedRequestsThroughUnguarded(t *testing.T) {
	t.Parallel()
	h := newHarness(t, idem.Config{}, Options{Optional: true}, createOrder)
	for range 2 {
		if rep := h.send(t, "/orders", "application/json", order); rep.Status != http.StatusCreated {
			t.Fatalf("status %d: %s", rep.Status, rep.Body)
		}
	}
	if runs, recs := h.runs.Load(), h.records(t); runs != 2 || recs != 0 {
		t.Fatalf("%d runs and %d records, want 2 and 0", runs, recs)
	}
	if h.lastOutcome() != OutcomeUnkeyed {
		t.Fatalf("outcome %q", h.lastOutcome())
	}
	t.Run("an invalid key is still rejected", func(t *testing.T) {
		wantProblem(t, h.send(t, "/orders", "application/json", order, `"bad`), http.StatusBadRequest, TypeKeyInvalid)
	})
}

func TestAKeyReusedForAnotherRequestIsRejected(t *testing.T) {
	t.Parallel()
	h := newHarness(t, idem.Config{}, Options{}, createOrder)
	first := h.send(t, "/orders", "application/json", order, "reuse")
	if first.Status != http.StatusCreated {
		t.Fatalf("first: %d %s", first.Status, first.Body)
	}
	t.Run("a different body with the same key is 422", func(t *testing.T) {
		wantProblem(t, h.send(t, "/orders", "application/json", strings.Replace(order, "Ann", "Bob", 1), "reuse"),
			http.StatusUnprocessableEntity, TypeKeyReused)
		if h.lastOutcome() != OutcomeMismatch {
			t.Fatalf("outcome %q", h.lastOutcome())
		}
	})
	t.Run("the same body on another route with the same key is 422", func(t *testing.T) {
		wantProblem(t, h.send(t, "/returns", "application/json", order, "reuse"), http.StatusUnprocessableEntity, TypeKeyReused)
	})
	t.Run("the same body with members reordered and reformatted is a replay", func(t *testing.T) {
		reordered := "{ \"items\" : [ { \"qty\": 2, \"sku\": \"A1\" } ],\n  \"sender\": {\"name\": \"\\u0041nn\"} }"
		wantReplayOf(t, first, h.send(t, "/orders", "application/json; charset=utf-8", reordered, "reuse"))
	})
	if runs := h.runs.Load(); runs != 1 {
		t.Fatalf("handler ran %d times, want 1", runs)
	}
}

func TestMalformedJSONIsRejectedBeforeAnythingRunsAndTheKeyStaysUsable(t *testing.T) {
	t.Parallel()
	h := newHarness(t, idem.Config{}, Options{}, createOrder)
	for _, body := range []string{`{"sender":`, `{"a":1,"a":2}`, strings.Repeat("[", MaxJSONDepth+1) + strings.Repeat("]", MaxJSONDepth+1), ""} {
		wantProblem(t, h.send(t, "/orders", "application/json", body, "fixme"), http.StatusBadRequest, TypeBodyMalformed)
	}
	if runs, recs := h.runs.Load(), h.records(t); runs != 0 || recs != 0 {
		t.Fatalf("malformed bodies ran the handler %d times and left %d records", runs, recs)
	}
	if rep := h.send(t, "/orders", "application/json", order, "fixme"); rep.Status != http.StatusCreated {
		t.Fatalf("corrected body with the same key: %d %s", rep.Status, rep.Body)
	}
}

// modes are the guard's two modes; a test of what a client sees runs in both,
// since a client cannot tell which one a deployment uses.
var modes = []idem.Mode{idem.Lease, idem.Optimistic}

func TestAnotherMediaTypeWithTheSameKeyIsAnotherRequestInEitherMode(t *testing.T) {
	t.Parallel()
	for _, mode := range modes {
		t.Run("in "+mode.String()+" mode the same JSON as application/vnd.api+json after application/json is 422", func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, idem.Config{Mode: mode}, Options{}, createOrder)
			first := h.send(t, "/orders", "application/json", order, "media")
			if first.Status != http.StatusCreated {
				t.Fatalf("first: %d %s", first.Status, first.Body)
			}
			p := wantProblem(t, h.send(t, "/orders", "application/vnd.api+json", order, "media"), http.StatusUnprocessableEntity, TypeKeyReused)
			if !strings.Contains(p.Detail, "media type") {
				t.Errorf("the 422 detail %q does not name the media type among what makes another request", p.Detail)
			}
			wantReplayOf(t, first, h.send(t, "/orders", "application/json; charset=UTF-8", order, "media"))
			if effects, recs := h.effectCount(t), h.records(t); effects != 1 || recs != 1 {
				t.Fatalf("%d effects and %d records, want 1 and 1", effects, recs)
			}
		})
	}
}

func TestAMediaTypeTheRouteDoesNotAcceptIsRefusedBeforeTheGuardInEitherMode(t *testing.T) {
	t.Parallel()
	for _, mode := range modes {
		t.Run("in "+mode.String()+" mode", func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, idem.Config{Mode: mode}, Options{MediaTypes: []string{"application/json"}}, createOrder)
			first := h.send(t, "/orders", "application/json", order, "accept")
			if first.Status != http.StatusCreated {
				t.Fatalf("first: %d %s", first.Status, first.Body)
			}
			for _, ct := range []string{"application/vnd.api+json", "text/plain", "", "application/json; charset=iso-8859-1", "application/json; charset"} {
				for _, key := range []string{"accept", "fresh-" + mode.String()} {
					rep := h.send(t, "/orders", ct, order, key)
					wantProblem(t, rep, http.StatusUnsupportedMediaType, TypeUnsupportedMediaType)
					if got := rep.Header.Get("Accept-Post"); got != "application/json" {
						t.Errorf("Content-Type %q: Accept-Post %q, want application/json", ct, got)
					}
					if h.lastOutcome() != OutcomeUnsupportedMediaType {
						t.Errorf("Content-Type %q: outcome %q", ct, h.lastOutcome())
					}
				}
			}
			if runs, recs := h.runs.Load(), h.records(t); runs != 1 || recs != 1 {
				t.Fatalf("%d runs and %d records, want 1 and 1: a refused media type reached the guard", runs, recs)
			}
			wantReplayOf(t, first, h.send(t, "/orders", "Application/JSON; charset=utf-8", order, "accept"))
			if rep := h.send(t, "/orders", "application/json", order, "fresh-"+mode.String()); rep.Status != http.StatusCreated {
				t.Fatalf("the key of a refused media type, with the right one: %d %s", rep.Status, rep.Body)
			}
		})
	}
}

func TestAJSONBodyThatIsNotAnObjectIsRefusedBeforeTheGuardWhenObjectsAreRequired(t *testing.T) {
	t.Parallel()
	for _, mode := range modes {
		t.Run("in "+mode.String()+" mode", func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, idem.Config{Mode: mode}, Options{RequireObject: true}, createOrder)
			for _, body := range []string{`[]`, `null`, ` "order" `, `12`, `true`, "\n[{}]"} {
				wantProblem(t, h.send(t, "/orders", "application/json", body, "object"), http.StatusBadRequest, TypeBodyMalformed)
				if h.lastOutcome() != OutcomeBodyMalformed {
					t.Errorf("body %q: outcome %q", body, h.lastOutcome())
				}
			}
			if runs, recs := h.runs.Load(), h.records(t); runs != 0 || recs != 0 {
				t.Fatalf("bodies that are not objects ran the handler %d times and left %d records", runs, recs)
			}
			if rep := h.send(t, "/orders", "application/json", " \t"+order, "object"); rep.Status != http.StatusCreated {
				t.Fatalf("an object with the same key: %d %s", rep.Status, rep.Body)
			}
		})
	}
	t.Run("without RequireObject any JSON value is a request", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, idem.Config{}, Options{}, createOrder)
		if rep := h.send(t, "/orders", "application/json", `[1,2]`, "array"); rep.Status != http.StatusCreated {
			t.Fatalf("an array: %d %s", rep.Status, rep.Body)
		}
	})
}

func TestAHandlersRefusalOfARequestItDidNotUnderstandIsNotStored(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		status int
		slug   string
	}{
		{http.StatusBadRequest, TypeBodyMalformed},
		{http.StatusRequestEntityTooLarge, TypeBodyTooLarge},
		{http.StatusUnsupportedMediaType, TypeUnsupportedMediaType},
	} {
		t.Run("a "+strconv.Itoa(tc.status)+" "+tc.slug+" from the handler is released, so the key runs afresh", func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, idem.Config{}, Options{}, func(h *harness, w http.ResponseWriter, r *http.Request, run int64) {
				if run == 1 {
					problem.Write(w, problem.Problem{Type: problem.Type(tc.slug), Title: "refused", Status: tc.status, Detail: "refused by the handler"})
					return
				}
				createOrder(h, w, r, run)
			})
			wantProblem(t, h.send(t, "/orders", "application/json", order, "refused"), tc.status, tc.slug)
			if h.lastOutcome() != OutcomeReleased {
				t.Fatalf("outcome %q, want %q", h.lastOutcome(), OutcomeReleased)
			}
			if rep := h.send(t, "/orders", "application/json", order, "refused"); rep.Status != http.StatusCreated || rep.Header.Get(HeaderReplayed) != "" {
				t.Fatalf("retry: %d %v %s, want a fresh 201", rep.Status, rep.Header, rep.Body)
			}
		})
	}
}

func TestABodyOverTheLimitIsRejectedAndNothingIsStored(t *testing.T) {
	t.Parallel()
	const limit = 1024
	h := newHarness(t, idem.Config{}, Options{MaxBodyBytes: limit}, createOrder)
	big := `{"pad":"` + strings.Repeat("x", limit) + `"}`
	t.Run("with a Content-Length", func(t *testing.T) {
		wantProblem(t, h.send(t, "/orders", "application/json", big, "big"), http.StatusRequestEntityTooLarge, TypeBodyTooLarge)
	})
	t.Run("sent chunked, without a length", func(t *testing.T) {
		rep := h.sendReader(t, "/orders", "application/json", io.MultiReader(strings.NewReader(big)), "big")
		wantProblem(t, rep, http.StatusRequestEntityTooLarge, TypeBodyTooLarge)
	})
	t.Run("a body of exactly the limit is accepted", func(t *testing.T) {
		exact := `{"pad":"` + strings.Repeat("x", limit-10) + `"}`
		if rep := h.send(t, "/orders", "application/json", exact, "exact"); rep.Status != http.StatusCreated {
			t.Fatalf("status %d: %s", rep.Status, rep.Body)
		}
	})
	if runs, recs := h.runs.Load(), h.records(t); runs != 1 || recs != 1 {
		t.Fatalf("%d runs and %d records, want only the accepted request's", runs, recs)
	}
}

func TestClientErrorsAreKeptAndReplayed(t *testing.T) {
	t.Parallel()
	h := newHarness(t, idem.Config{}, Options{}, func(h *harness, w http.ResponseWriter, r *http.Request, run int64) {
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(http.StatusUnprocessableEntity)
		_, _ = io.WriteString(w, `{"type":"https://api.parcelhq.example/problems/validation","status":422,"run":`+strconv.FormatInt(run, 10)+`}`)
	})
	first := h.send(t, "/orders", "application/json", order, "bad-postcode")
	if first.Status != http.StatusUnprocessableEntity {
		t.Fatalf("first: %d", first.Status)
	}
	wantReplayOf(t, first, h.send(t, "/orders", "application/json", order, "bad-postcode"))
	t.Run("a corrected payload with the old key is a reused key", func(t *testing.T) {
		wantProblem(t, h.send(t, "/orders", "application/json", strings.Replace(order, "A1", "A2", 1), "bad-postcode"),
			http.StatusUnprocessableEntity, TypeKeyReused)
	})
	if runs := h.runs.Load(); runs != 1 {
		t.Fatalf("handler ran %d times, want 1", runs)
	}
}

func TestServerErrorsAreReleasedAndTheRetryRunsAgain(t *testing.T) {
	t.Parallel()
	h := newHarness(t, idem.Config{}, Options{}, func(h *harness, w http.ResponseWriter, r *http.Request, run int64) {
		if run == 1 {
			// The effect is discarded with the released outcome.
			if err := h.writeEffect(r.Context(), "failed-run", "x"); err != nil {
				t.Error(err)
			}
			http.Error(w, "upstream down", http.StatusServiceUnavailable)
			return
		}
		createOrder(h, w, r, run)
	})
	first := h.send(t, "/orders", "application/json", order, "flaky")
	if first.Status != http.StatusServiceUnavailable || first.Header.Get(HeaderReplayed) != "" {
		t.Fatalf("first: %d %v", first.Status, first.Header)
	}
	if h.lastOutcome() != OutcomeReleased {
		t.Fatalf("outcome %q, want %q", h.lastOutcome(), OutcomeReleased)
	}
	if effects, recs := h.effectCount(t), h.records(t); effects != 0 || recs != 0 {
		t.Fatalf("a released 503 left %d effects and %d records", effects, recs)
	}
	second := h.send(t, "/orders", "application/json", order, "flaky")
	if second.Status != http.StatusCreated || second.Header.Get(HeaderReplayed) != "" {
		t.Fatalf("retry: %d %v %s", second.Status, second.Header, second.Body)
	}
	if runs, effects := h.runs.Load(), h.effectCount(t); runs != 2 || effects != 1 {
		t.Fatalf("%d runs and %d effects, want 2 and 1", runs, effects)
	}
}

func TestDefaultKeep(t *testing.T) {
	t.Parallel()
	for status, want := range map[int]bool{200: true, 201: true, 204: true, 303: true, 400: true, 404: true, 409: true, 422: true,
		408: false, 413: false, 415: false, 425: false, 429: false, 500: false, 502: false, 503: false} {
		t.Run("status "+strconv.Itoa(status)+" is kept: "+strconv.FormatBool(want), func(t *testing.T) {
			if got := DefaultKeep(status, ""); got != want {
				t.Fatalf("DefaultKeep(%d, \"\") = %v", status, got)
			}
		})
	}
	for _, tc := range []struct {
		status int
		slug   string
		want   bool
	}{
		{400, TypeBodyMalformed, false},
		{422, TypeBodyMalformed, false},
		{400, TypeBodyTooLarge, false},
		{400, TypeUnsupportedMediaType, false},
		{400, "invalid-order", true},
		{422, "validation", true},
	} {
		t.Run("a "+strconv.Itoa(tc.status)+" problem of type "+tc.slug+" is kept: "+strconv.FormatBool(tc.want), func(t *testing.T) {
			if got := DefaultKeep(tc.status, problem.Type(tc.slug)); got != tc.want {
				t.Fatalf("DefaultKeep(%d, %s) = %v", tc.status, problem.Type(tc.slug), got)
			}
		})
	}
}

func TestAPanickingHandlerGets500AndTheRetryRunsFresh(t *testing.T) {
	t.Parallel()
	h := newHarness(t, idem.Config{}, Options{}, func(h *harness, w http.ResponseWriter, r *http.Request, run int64) {
		if run == 1 {
			w.Header().Set("X-Partial", "yes")
			w.WriteHeader(http.StatusCreated)
			_, _ = io.WriteString(w, "half a respo")
			panic("boom")
		}
		createOrder(h, w, r, run)
	})
	rep := h.send(t, "/orders", "application/json", order, "panic")
	wantProblem(t, rep, http.StatusInternalServerError, TypeInternal)
	if rep.Header.Get("X-Partial") != "" {
		t.Fatal("a header the panicking handler set leaked into the response")
	}
	if h.lastOutcome() != OutcomePanic {
		t.Fatalf("outcome %q", h.lastOutcome())
	}
	if recs := h.records(t); recs != 0 {
		t.Fatalf("the panic left %d records", recs)
	}
	if rep := h.send(t, "/orders", "application/json", order, "panic"); rep.Status != http.StatusCreated {
		t.Fatalf("retry: %d %s", rep.Status, rep.Body)
	}
	if runs, effects := h.runs.Load(), h.effectCount(t); runs != 2 || effects != 1 {
		t.Fatalf("%d runs and %d effects, want 2 and 1", runs, effects)
	}
}

func TestARequestWhoseFirstAttemptStillRunsIsAConflict(t *testing.T) {
	t.Parallel()
	for _, status := range []int{http.StatusConflict, http.StatusTooEarly} {
		t.Run("answered with "+strconv.Itoa(status)+" and Retry-After when configured so", func(t *testing.T) {
			t.Parallel()
			started, release := make(chan struct{}), make(chan struct{})
			var once sync.Once
			h := newHarness(t, idem.Config{Lease: 20 * time.Second}, Options{ConflictStatus: status}, func(h *harness, w http.ResponseWriter, r *http.Request, run int64) {
				once.Do(func() { close(started) })
				select {
				case <-release:
				case <-time.After(15 * time.Second):
				}
				createOrder(h, w, r, run)
			})
			firstDone := make(chan reply, 1)
			go func() { firstDone <- h.send(t, "/orders", "application/json", order, "slow") }()
			<-started
			rep := h.send(t, "/orders", "application/json", order, "slow")
			wantProblem(t, rep, status, TypeKeyInUse)
			ra, err := strconv.Atoi(rep.Header.Get("Retry-After"))
			if err != nil || ra != 1 {
				t.Fatalf("Retry-After %q, want 1 second", rep.Header.Get("Retry-After"))
			}
			close(release)
			first := <-firstDone
			wantReplayOf(t, first, h.send(t, "/orders", "application/json", order, "slow"))
			if runs := h.runs.Load(); runs != 1 {
				t.Fatalf("handler ran %d times", runs)
			}
		})
	}
}

func TestConcurrentIdenticalRequestsRunTheHandlerOnce(t *testing.T) {
	t.Parallel()
	const n = 60
	h := newHarness(t, idem.Config{}, Options{}, func(h *harness, w http.ResponseWriter, r *http.Request, run int64) {
		time.Sleep(300 * time.Millisecond) // keep the lease held while the duplicates arrive
		createOrder(h, w, r, run)
	})
	replies := h.stampede(t, n, "stampede")
	var created []reply
	for _, rep := range replies {
		switch rep.Status {
		case http.StatusCreated:
			created = append(created, rep)
		case http.StatusConflict:
			wantProblem(t, rep, http.StatusConflict, TypeKeyInUse)
		default:
			t.Fatalf("unexpected status %d: %s", rep.Status, rep.Body)
		}
	}
	if len(created) == 0 {
		t.Fatal("no request succeeded")
	}
	t.Logf("%d created or replayed, %d in progress", len(created), n-len(created))
	var original []reply // the responses of the one execution, not replayed
	for _, rep := range created {
		if rep.Header.Get(HeaderReplayed) == "" {
			original = append(original, rep)
		}
	}
	if len(original) != 1 {
		t.Fatalf("%d responses were not replays, want 1", len(original))
	}
	for _, rep := range created {
		if rep.Header.Get(HeaderReplayed) != "" {
			wantReplayOf(t, original[0], rep)
		}
	}
	if runs, effects := h.runs.Load(), h.effectCount(t); runs != 1 || effects != 1 {
		t.Fatalf("%d concurrent requests ran the handler %d times with %d effects, want 1 and 1", n, runs, effects)
	}
	t.Run("the retries that follow all replay the success byte for byte", func(t *testing.T) {
		var wg sync.WaitGroup
		retries := make([]reply, 20)
		for i := range retries {
			wg.Go(func() { retries[i] = h.send(t, "/orders", "application/json", order, "stampede") })
		}
		wg.Wait()
		for _, rep := range retries {
			wantReplayOf(t, original[0], rep)
		}
		if runs := h.runs.Load(); runs != 1 {
			t.Fatalf("handler ran %d times", runs)
		}
	})
}

func TestAnAttemptThatOutlivesItsLeaseLosesTheCommit(t *testing.T) {
	t.Parallel()
	const lease = 300 * time.Millisecond
	started, release := make(chan struct{}), make(chan struct{})
	h := newHarness(t, idem.Config{Lease: lease, ClockSkew: time.Millisecond}, Options{}, func(h *harness, w http.ResponseWriter, r *http.Request, run int64) {
		if run == 1 {
			close(started)
			<-release // a stalled handler that ignores its context
		}
		createOrder(h, w, r, run)
	})
	unblock := sync.OnceFunc(func() { close(release) })
	t.Cleanup(unblock) // runs before the server closes, even when the test fails
	firstDone := make(chan reply, 1)
	go func() { firstDone <- h.send(t, "/orders", "application/json", order, "stalled") }()
	<-started
	var second reply
	for i := 0; ; i++ { // until the lease lapses and the retry takes over
		second = h.send(t, "/orders", "application/json", order, "stalled")
		if second.Status != http.StatusConflict || i == 50 {
			break
		}
		time.Sleep(lease / 5)
	}
	if second.Status != http.StatusCreated {
		t.Fatalf("the retry after the lease lapsed: %d %s", second.Status, second.Body)
	}
	unblock()
	first := <-firstDone
	wantProblem(t, first, http.StatusConflict, TypeCommitLost)
	if first.Header.Get("Retry-After") == "" {
		t.Fatal("no Retry-After")
	}
	wantReplayOf(t, second, h.send(t, "/orders", "application/json", order, "stalled"))
	if effects := h.effectCount(t); effects != 1 {
		t.Fatalf("%d effects, want 1", effects)
	}
}

func TestConcurrentIdenticalRequestsInOptimisticModeTakeEffectOnce(t *testing.T) {
	t.Parallel()
	const n = 50
	h := newHarness(t, idem.Config{Mode: idem.Optimistic}, Options{}, createOrder)
	replies := h.stampede(t, n, "optimistic")
	for _, rep := range replies {
		if rep.Status != http.StatusCreated || !bytes.Equal(rep.Body, replies[0].Body) {
			t.Fatalf("response %d %s, want every response to be the winner's 201 %s", rep.Status, rep.Body, replies[0].Body)
		}
	}
	if effects := h.effectCount(t); effects != 1 {
		t.Fatalf("%d effects, want 1", effects)
	}
}

func TestTheSameKeyFromTwoCallersIsTwoRequests(t *testing.T) {
	t.Parallel()
	h := newHarness(t, idem.Config{}, Options{}, createOrder)
	lambda := httpadapter.NewV2(Middleware(h.guard, Options{Route: "POST /orders", Scope: APIGatewayV2Scope})(
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { createOrder(h, w, r, h.runs.Add(1)) })))
	call := func(t *testing.T, sub string, headers map[string]string) events.APIGatewayV2HTTPResponse {
		t.Helper()
		hdr := map[string]string{"content-type": "application/json"}
		for k, v := range headers {
			hdr[k] = v
		}
		resp, err := lambda.ProxyWithContext(context.Background(), events.APIGatewayV2HTTPRequest{
			Version: "2.0", RouteKey: "POST /orders", RawPath: "/orders", Headers: hdr, Body: order,
			RequestContext: events.APIGatewayV2HTTPRequestContext{
				RouteKey: "POST /orders",
				HTTP:     events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: "POST", Path: "/orders"},
				Authorizer: &events.APIGatewayV2HTTPRequestContextAuthorizerDescription{
					JWT: &events.APIGatewayV2HTTPRequestContextAuthorizerJWTDescription{Claims: map[string]string{"iss": "https://id.example/", "sub": sub}}},
			},
		})
		if err != nil {
			t.Fatalf("proxy: %v", err)
		}
		return resp
	}
	alice := call(t, "alice", map[string]string{"idempotency-key": `"shared-key"`})
	bob := call(t, "bob", map[string]string{"idempotency-key": "shared-key"})
	if alice.StatusCode != http.StatusCreated || bob.StatusCode != http.StatusCreated || alice.Body == bob.Body {
		t.Fatalf("alice %d %s, bob %d %s: want two distinct creations", alice.StatusCode, alice.Body, bob.StatusCode, bob.Body)
	}
	if bob.Headers[HeaderReplayed] != "" {
		t.Fatal("bob was served alice's response")
	}
	again := call(t, "alice", map[string]string{"idempotency-key": "shared-key"})
	if again.Body != alice.Body || again.Headers[HeaderReplayed] != "true" {
		t.Fatalf("alice's retry %d %s %v is not a replay of her request", again.StatusCode, again.Body, again.Headers)
	}
	if runs, recs := h.runs.Load(), h.records(t); runs != 2 || recs != 2 {
		t.Fatalf("%d runs and %d records, want 2 and 2", runs, recs)
	}
	t.Run("repeated key fields joined by API Gateway with a comma are rejected", func(t *testing.T) {
		rep := call(t, "alice", map[string]string{"idempotency-key": "k1,k2"})
		if rep.StatusCode != http.StatusBadRequest || !strings.Contains(rep.Body, TypeKeyInvalid) {
			t.Fatalf("%d %s", rep.StatusCode, rep.Body)
		}
	})
	t.Run("a JWT without a subject is refused", func(t *testing.T) {
		rep := call(t, "", map[string]string{"idempotency-key": "k3"})
		if rep.StatusCode != http.StatusForbidden || !strings.Contains(rep.Body, TypeCallerUnknown) {
			t.Fatalf("%d %s", rep.StatusCode, rep.Body)
		}
	})
}

func TestAResponseTooLargeToStoreIsNotCarriedOut(t *testing.T) {
	t.Parallel()
	noise := make([]byte, 600<<10) // incompressible, beyond DynamoDB's 400 KB item limit
	_, _ = rand.Read(noise)
	h := newHarness(t, idem.Config{}, Options{}, func(h *harness, w http.ResponseWriter, r *http.Request, run int64) {
		if err := h.writeEffect(r.Context(), randomID(), "big"); err != nil {
			t.Error(err)
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		_, _ = w.Write(noise)
	})
	wantProblem(t, h.send(t, "/orders", "application/json", order, "huge"), http.StatusInternalServerError, TypeResponseTooLarge)
	if effects, recs := h.effectCount(t), h.records(t); effects != 0 || recs != 0 {
		t.Fatalf("%d effects and %d records, want none", effects, recs)
	}
}

func TestAWriteWhoseConditionFailsAtCommitIsAConflictAndReleasesTheKey(t *testing.T) {
	t.Parallel()
	h := newHarness(t, idem.Config{}, Options{}, func(h *harness, w http.ResponseWriter, r *http.Request, run int64) {
		err := h.writeEffectOnce(r.Context(), "order-7")
		if err != nil {
			t.Error(err)
		}
		w.WriteHeader(http.StatusCreated)
	})
	if err := h.writeEffectOnce(context.Background(), "order-7"); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		rep := h.send(t, "/orders", "application/json", order, "dup-order")
		wantProblem(t, rep, http.StatusConflict, TypeWriteConflict)
		// The key was released, so the client may retry at once: the 409
		// that api/openapi.yaml documents promises Retry-After.
		if got := rep.Header.Get("Retry-After"); got != "1" {
			t.Fatalf("Retry-After = %q, want 1", got)
		}
	}
	if runs, recs := h.runs.Load(), h.records(t); runs != 2 || recs != 0 {
		t.Fatalf("%d runs and %d records, want 2 and 0", runs, recs)
	}
}

func TestAnUnavailableStoreIs503WithRetryAfter(t *testing.T) {
	t.Parallel()
	h := newHarness(t, idem.Config{Table: "idem-table-that-does-not-exist"}, Options{}, createOrder)
	rep := h.send(t, "/orders", "application/json", order, "k")
	wantProblem(t, rep, http.StatusServiceUnavailable, TypeStoreUnavailable)
	if rep.Header.Get("Retry-After") == "" {
		t.Fatal("no Retry-After")
	}
	if runs := h.runs.Load(); runs != 0 {
		t.Fatalf("handler ran %d times", runs)
	}
	if h.lastOutcome() != OutcomeStoreError {
		t.Fatalf("outcome %q", h.lastOutcome())
	}
}

func TestMiddlewareRejectsAnUnsupportedConflictStatus(t *testing.T) {
	t.Parallel()
	defer func() {
		if recover() == nil {
			t.Fatal("ConflictStatus 400 was accepted")
		}
	}()
	Middleware(nil, Options{ConflictStatus: http.StatusBadRequest})
}

// stampede sends n identical POST /orders with key at once, each on its own
// connection, and returns the replies in no particular order.
func (h *harness) stampede(t *testing.T, n int, key string) []reply {
	t.Helper()
	h.srv.Client().Transport.(*http.Transport).MaxIdleConnsPerHost = n
	var wg sync.WaitGroup
	start := make(chan struct{})
	replies := make([]reply, n)
	for i := range n {
		wg.Go(func() {
			<-start
			replies[i] = h.send(t, "/orders", "application/json", order, key)
		})
	}
	close(start)
	wg.Wait()
	return replies
}
