package orders_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/parcelhq/orderservice/internal/ddb"
	"github.com/parcelhq/orderservice/internal/ddbtest"
	"github.com/parcelhq/orderservice/internal/orders"
	"github.com/parcelhq/orderservice/internal/problem"
)

const orderBody = `{
  "sender":   {"name": "Ann Lee", "address": {"line1": "1 George St", "suburb": "Sydney",   "state": "NSW", "postcode": "2000", "country": "AU"}},
  "receiver": {"name": "Bo Chen", "address": {"line1": "9 Queen St",  "suburb": "Brisbane", "state": "QLD", "postcode": "4000", "country": "AU"}},
  "parcel":   {"weight_kg": 2.5, "length_cm": 30, "width_cm": 20, "height_cm": 10, "description": "books"}
}`

var fixedNow = time.Date(2025, 3, 4, 5, 6, 7, 891234567, time.FixedZone("AEDT", 11*3600))

// newAPI serves the order API on 127.0.0.1 over store, with a fixed clock;
// wrap, if not nil, wraps the create handler (as the lead's middleware does).
func newAPI(t *testing.T, store *orders.Store, wrap func(http.Handler) http.Handler) *httptest.Server {
	t.Helper()
	h := orders.NewHandler(store, orders.WithClock(func() time.Time { return fixedNow }))
	create := h.Create()
	if wrap != nil {
		create = wrap(create)
	}
	srv := httptest.NewServer(orders.NewRouter(create, h.Get()))
	t.Cleanup(srv.Close)
	return srv
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func do(t *testing.T, srv *httptest.Server, method, path, contentType string, body io.Reader) response {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	res, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{res.StatusCode, res.Header, b}
}

func post(t *testing.T, srv *httptest.Server, body string) response {
	t.Helper()
	return do(t, srv, http.MethodPost, "/orders", "application/json", strings.NewReader(body))
}

// wantProblem fails t unless r is a problem+json document of the given
// status and slug; it returns the document.
func wantProblem(t *testing.T, r response, status int, slug string) problem.Problem {
	t.Helper()
	if r.status != status {
		t.Fatalf("status = %d, want %d; body %s", r.status, status, r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != problem.ContentType {
		t.Fatalf("Content-Type = %q, want %s", ct, problem.ContentType)
	}
	var p problem.Problem
	if err := json.Unmarshal(r.body, &p); err != nil {
		t.Fatalf("problem body %s: %v", r.body, err)
	}
	if p.Type != problem.Type(slug) || p.Status != status {
		t.Fatalf("problem = %+v, want type %s and status %d", p, problem.Type(slug), status)
	}
	return p
}

func TestCreateAndGet(t *testing.T) {
	t.Parallel()
	store, _, _ := newStore(t)
	srv := newAPI(t, store, nil)

	created := post(t, srv, orderBody)
	if created.status != http.StatusCreated {
		t.Fatalf("POST status = %d, want 201; body %s", created.status, created.body)
	}
	var o map[string]any
	if err := json.Unmarshal(created.body, &o); err != nil {
		t.Fatalf("create body %s: %v", created.body, err)
	}
	id, _ := o["order_id"].(string)

	t.Run("the create response is 201 with Location and the order as JSON", func(t *testing.T) {
		if !orders.ValidID(id) {
			t.Fatalf("order_id %q is not a valid id", id)
		}
		if loc := created.header.Get("Location"); loc != "/orders/"+id {
			t.Fatalf("Location = %q, want /orders/%s", loc, id)
		}
		if ct := created.header.Get("Content-Type"); ct != "application/json" {
			t.Fatalf("Content-Type = %q, want application/json", ct)
		}
		want := `{"order_id":"` + id + `","status":"booked",` +
			`"sender":{"name":"Ann Lee","address":{"line1":"1 George St","suburb":"Sydney","state":"NSW","postcode":"2000","country":"AU"}},` +
			`"receiver":{"name":"Bo Chen","address":{"line1":"9 Queen St","suburb":"Brisbane","state":"QLD","postcode":"4000","country":"AU"}},` +
			`"parcel":{"weight_kg":2.5,"length_cm":30,"width_cm":20,"height_cm":10,"description":"books"},` +
			`"price":{"amount":"18.45","currency":"AUD"},"created_at":"2025-03-03T18:06:07.891Z"}` + "\n"
		if string(created.body) != want {
			t.Fatalf("body\n%s\nwant\n%s", created.body, want)
		}
	})

	t.Run("reading the order answers the same bytes as creating it", func(t *testing.T) {
		got := do(t, srv, http.MethodGet, "/orders/"+id, "", nil)
		if got.status != http.StatusOK || got.header.Get("Content-Type") != "application/json" {
			t.Fatalf("GET = %d %q, want 200 application/json", got.status, got.header.Get("Content-Type"))
		}
		if !bytes.Equal(got.body, created.body) {
			t.Fatalf("GET body\n%s\ndiffers from create body\n%s", got.body, created.body)
		}
	})

	t.Run("the same request booked again differs only in its order id", func(t *testing.T) {
		again := post(t, srv, orderBody)
		if again.status != http.StatusCreated {
			t.Fatalf("POST status = %d", again.status)
		}
		var o2 map[string]any
		_ = json.Unmarshal(again.body, &o2)
		id2, _ := o2["order_id"].(string)
		if id2 == id {
			t.Fatal("two orders got the same id")
		}
		if !bytes.Equal(bytes.Replace(again.body, []byte(id2), []byte(id), 1), created.body) {
			t.Fatalf("bodies differ beyond the id:\n%s\n%s", again.body, created.body)
		}
	})
}

func TestCreateRefusals(t *testing.T) {
	t.Parallel()
	store, _, _ := newStore(t)
	srv := newAPI(t, store, nil)
	big := `{"parcel":{"description":"` + strings.Repeat("x", orders.MaxBodyBytes) + `"}}`

	t.Run("an invalid order is 400 invalid-order listing every bad field", func(t *testing.T) {
		t.Parallel()
		b := strings.NewReplacer(`"postcode": "4000"`, `"postcode": "400"`, `"weight_kg": 2.5`, `"weight_kg": 26`, `"name": "Ann Lee", `, ``).Replace(orderBody)
		p := wantProblem(t, post(t, srv, b), http.StatusBadRequest, orders.SlugInvalidOrder)
		want := []string{"/sender/name", "/receiver/address/postcode", "/parcel/weight_kg"}
		if len(p.Errors) != len(want) {
			t.Fatalf("errors = %+v, want pointers %v", p.Errors, want)
		}
		for i, w := range want {
			if p.Errors[i].Pointer != w || p.Errors[i].Detail == "" {
				t.Errorf("errors[%d] = %+v, want pointer %s with a detail", i, p.Errors[i], w)
			}
		}
	})

	t.Run("trailing data after the object is 400 malformed-body", func(t *testing.T) {
		t.Parallel()
		wantProblem(t, post(t, srv, orderBody+"{}"), http.StatusBadRequest, orders.SlugMalformedBody)
	})

	t.Run("a body that is not JSON is 400 malformed-body", func(t *testing.T) {
		t.Parallel()
		wantProblem(t, post(t, srv, "sender=Ann"), http.StatusBadRequest, orders.SlugMalformedBody)
	})

	t.Run("a body over 64 KiB with a Content-Length is 413", func(t *testing.T) {
		t.Parallel()
		wantProblem(t, post(t, srv, big), http.StatusRequestEntityTooLarge, orders.SlugBodyTooLarge)
	})

	t.Run("a body over 64 KiB sent chunked is 413", func(t *testing.T) {
		t.Parallel()
		r := do(t, srv, http.MethodPost, "/orders", "application/json", io.MultiReader(strings.NewReader(big)))
		wantProblem(t, r, http.StatusRequestEntityTooLarge, orders.SlugBodyTooLarge)
	})

	for _, ct := range []string{"", "text/plain", "application/x-www-form-urlencoded", "application/json; charset=iso-8859-1", "application/jsonx", "json"} {
		t.Run("Content-Type "+strings.TrimSpace(ct+" (empty means none)")+" is 415", func(t *testing.T) {
			t.Parallel()
			r := do(t, srv, http.MethodPost, "/orders", ct, strings.NewReader(orderBody))
			wantProblem(t, r, http.StatusUnsupportedMediaType, orders.SlugUnsupportedMediaType)
		})
	}

	for _, ct := range []string{"application/json; charset=utf-8", "Application/JSON;charset=UTF-8"} {
		t.Run("Content-Type "+ct+" is accepted", func(t *testing.T) {
			t.Parallel()
			if r := do(t, srv, http.MethodPost, "/orders", ct, strings.NewReader(orderBody)); r.status != http.StatusCreated {
				t.Fatalf("status = %d, want 201; body %s", r.status, r.body)
			}
		})
	}
}

func TestRoutesAndReads(t *testing.T) {
	t.Parallel()
	store, _, _ := newStore(t)
	srv := newAPI(t, store, nil)
	unknown, _ := orders.NewID()

	tests := []struct {
		name, method, path string
		status             int
		slug, allow        string
	}{
		{"an unknown order is 404 order-not-found", http.MethodGet, "/orders/" + unknown, 404, orders.SlugOrderNotFound, ""},
		{"a malformed order id is 404 order-not-found", http.MethodGet, "/orders/not-an-id", 404, orders.SlugOrderNotFound, ""},
		{"an escaped order id that is malformed is 404", http.MethodGet, "/orders/ord_%2e%2e", 404, orders.SlugOrderNotFound, ""},
		{"GET on the collection is 405 allowing POST", http.MethodGet, "/orders", 405, orders.SlugMethodNotAllowed, "POST"},
		{"DELETE on an order is 405 allowing GET", http.MethodDelete, "/orders/" + unknown, 405, orders.SlugMethodNotAllowed, "GET"},
		{"PUT on an order is 405 allowing GET", http.MethodPut, "/orders/" + unknown, 405, orders.SlugMethodNotAllowed, "GET"},
		{"an unknown route is 404 not-found", http.MethodGet, "/parcels", 404, orders.SlugNotFound, ""},
		{"the root is 404 not-found", http.MethodPost, "/", 404, orders.SlugNotFound, ""},
		{"a trailing slash on the collection is 404 not-found", http.MethodPost, "/orders/", 404, orders.SlugNotFound, ""},
		{"a path below an order is 404 not-found", http.MethodGet, "/orders/" + unknown + "/items", 404, orders.SlugNotFound, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := do(t, srv, tt.method, tt.path, "", nil)
			wantProblem(t, r, tt.status, tt.slug)
			if got := r.header.Get("Allow"); got != tt.allow {
				t.Fatalf("Allow = %q, want %q", got, tt.allow)
			}
		})
	}
}

func TestStoreFailures(t *testing.T) {
	t.Parallel()
	store := orders.NewStore(ddbtest.Client(t), "orders-that-do-not-exist")
	srv := newAPI(t, store, nil)
	id, _ := orders.NewID()

	for _, tt := range []struct{ name, method, path, body string }{
		{"a create the store refuses is 503 store-unavailable with Retry-After", http.MethodPost, "/orders", orderBody},
		{"a read the store refuses is 503 store-unavailable with Retry-After", http.MethodGet, "/orders/" + id, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := do(t, srv, tt.method, tt.path, "application/json", strings.NewReader(tt.body))
			wantProblem(t, r, http.StatusServiceUnavailable, orders.SlugStoreUnavailable)
			if r.header.Get("Retry-After") == "" || r.header.Get("Location") != "" {
				t.Fatalf("headers %v: want Retry-After and no Location", r.header)
			}
		})
	}
}

// TestCreateInAUnitOfWork plays the idempotency guard: it puts a unit of
// work in the request context, lets the handler answer, and commits.
func TestCreateInAUnitOfWork(t *testing.T) {
	t.Parallel()
	store, client, _ := newStore(t)
	units := make(chan *ddb.UnitOfWork, 1)
	guard := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			u := ddb.NewUnitOfWork(1)
			units <- u
			next.ServeHTTP(w, r.WithContext(ddb.WithUnitOfWork(r.Context(), u)))
		})
	}
	srv := newAPI(t, store, guard)

	created := post(t, srv, orderBody)
	if created.status != http.StatusCreated {
		t.Fatalf("POST status = %d; body %s", created.status, created.body)
	}
	loc := created.header.Get("Location")
	wantProblem(t, do(t, srv, http.MethodGet, loc, "", nil), http.StatusNotFound, orders.SlugOrderNotFound)

	u := <-units
	if _, err := client.TransactWriteItems(context.Background(), &dynamodb.TransactWriteItemsInput{TransactItems: u.Close()}); err != nil {
		t.Fatalf("commit: %v", err)
	}
	got := do(t, srv, http.MethodGet, loc, "", nil)
	if got.status != http.StatusOK || !bytes.Equal(got.body, created.body) {
		t.Fatalf("after commit GET = %d %s, want 200 with the create body", got.status, got.body)
	}
}

func TestOrdersAreReadOnlyByTheirOwner(t *testing.T) {
	t.Parallel()
	store, client, table := newStore(t)
	h := orders.NewHandler(store, orders.WithClock(func() time.Time { return fixedNow }))
	// The test's edge: the owner comes from a header, as the service's comes
	// from its authorizer; no header means no owner.
	asOwner := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if o, ok := r.Header["X-Owner"]; ok {
				r = r.WithContext(orders.WithOwner(r.Context(), o[0]))
			}
			next.ServeHTTP(w, r)
		})
	}
	srv := httptest.NewServer(asOwner(orders.NewRouter(h.Create(), h.Get())))
	t.Cleanup(srv.Close)
	send := func(method, path, owner string, withOwner bool, body string) response {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		if withOwner {
			req.Header.Set("X-Owner", owner)
		}
		res, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return response{res.StatusCode, res.Header, b}
	}

	created := send(http.MethodPost, "/orders", "jwt:https://id.example/|alice", true, orderBody)
	if created.status != http.StatusCreated {
		t.Fatalf("create: %d %s", created.status, created.body)
	}
	var o struct {
		ID string `json:"order_id"`
	}
	_ = json.Unmarshal(created.body, &o)
	missing := send(http.MethodGet, "/orders/ord_aaaaaaaaaaaaaaaaaaaaaaaaaa", "jwt:https://id.example/|bob", true, "")

	t.Run("the owner is stored with the order but is not in its JSON", func(t *testing.T) {
		item, err := client.GetItem(context.Background(), &dynamodb.GetItemInput{TableName: &table,
			Key: map[string]types.AttributeValue{"order_id": &types.AttributeValueMemberS{Value: o.ID}}})
		if err != nil {
			t.Fatal(err)
		}
		if v, _ := item.Item["owner"].(*types.AttributeValueMemberS); v == nil || v.Value != "jwt:https://id.example/|alice" {
			t.Fatalf("stored owner = %#v", item.Item["owner"])
		}
		if bytes.Contains(created.body, []byte("alice")) || bytes.Contains(created.body, []byte("owner")) {
			t.Fatalf("the response reveals the owner: %s", created.body)
		}
	})
	t.Run("its owner reads it", func(t *testing.T) {
		got := send(http.MethodGet, "/orders/"+o.ID, "jwt:https://id.example/|alice", true, "")
		if got.status != http.StatusOK || !bytes.Equal(got.body, created.body) {
			t.Fatalf("owner's GET: %d %s", got.status, got.body)
		}
	})
	for _, tc := range []struct {
		name      string
		owner     string
		withOwner bool
	}{
		{"another owner gets exactly the answer for a missing order", "jwt:https://id.example/|bob", true},
		{"a request without an owner gets exactly the answer for a missing order", "", false},
		{"an owner differing only in issuer gets exactly the answer for a missing order", "jwt:https://other.example/|alice", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := send(http.MethodGet, "/orders/"+o.ID, tc.owner, tc.withOwner, "")
			if got.status != http.StatusNotFound || !bytes.Equal(got.body, missing.body) ||
				got.header.Get("Content-Type") != missing.header.Get("Content-Type") ||
				got.header.Get("Content-Length") != missing.header.Get("Content-Length") {
				t.Fatalf("GET: %d %v %s\nmissing: %d %v %s", got.status, got.header, got.body, missing.status, missing.header, missing.body)
			}
		})
	}
	t.Run("an order booked without an owner is read only without one", func(t *testing.T) {
		anon := send(http.MethodPost, "/orders", "", false, orderBody)
		var a struct {
			ID string `json:"order_id"`
		}
		_ = json.Unmarshal(anon.body, &a)
		if got := send(http.MethodGet, "/orders/"+a.ID, "", false, ""); got.status != http.StatusOK {
			t.Fatalf("anonymous GET of an anonymous order: %d", got.status)
		}
		if got := send(http.MethodGet, "/orders/"+a.ID, "jwt:https://id.example/|alice", true, ""); got.status != http.StatusNotFound {
			t.Fatalf("owner's GET of an anonymous order: %d, want 404", got.status)
		}
	})
}
