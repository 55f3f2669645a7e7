package client_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/parcelhq/orderservice/client"
	"github.com/parcelhq/orderservice/internal/orders/orderstest"
)

// TestWireTypesRoundTripTheHandlersJSON checks the client's types against the
// JSON the real handler reads and writes, byte for byte: a field the client
// lacks, misnames or renders differently fails it.
func TestWireTypesRoundTripTheHandlersJSON(t *testing.T) {
	t.Parallel()
	api := startAPI(t)
	token := api.Token(t, "wire")
	withLine2 := strings.Replace(orderstest.JSON, `"line1":"9 Queen St",`, `"line1":"9 Queen St","line2":"Level 3",`, 1)
	for _, tc := range []struct{ name, body string }{
		{"the example order", orderstest.JSON},
		{"an order with every optional member", withLine2},
	} {
		t.Run(tc.name+" encodes as the API's request and decodes from its answers", func(t *testing.T) {
			t.Parallel()
			var req client.OrderRequest
			strict(t, []byte(tc.body), &req)
			if enc, _ := json.Marshal(req); string(enc) != tc.body {
				t.Errorf("OrderRequest re-encodes as\n%s\nwant\n%s", enc, tc.body)
			}

			res := send(t, http.MethodPost, api.URL+"/orders", token, tc.body, client.NewKey())
			if res.status != http.StatusCreated {
				t.Fatalf("POST: %d %s", res.status, res.body)
			}
			var o client.Order
			strict(t, res.body, &o)
			if enc, _ := json.Marshal(o); string(enc)+"\n" != string(res.body) {
				t.Errorf("Order re-encodes as\n%s\nwant the handler's\n%s", enc, res.body)
			}
			if o.Sender != req.Sender || o.Receiver != req.Receiver || o.Parcel != req.Parcel {
				t.Errorf("the order %+v does not hold the request %+v", o, req)
			}

			get := send(t, http.MethodGet, api.URL+"/orders/"+o.ID, token, "", "")
			if get.status != http.StatusOK || !bytes.Equal(get.body, res.body) {
				t.Errorf("GET: %d %s, want the created order's bytes", get.status, get.body)
			}
		})
	}
}

// TestProblemTypesMatchTheAPI checks the client's Type constants against
// the problem types api/openapi.yaml lists.
func TestProblemTypesMatchTheAPI(t *testing.T) {
	spec, err := os.ReadFile("../api/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	listed := regexp.MustCompile(`\| (https://api\.parcelhq\.example/problems/[a-z-]+) \|`).FindAllSubmatch(spec, -1)
	var api []string
	for _, m := range listed {
		api = append(api, string(m[1]))
	}
	ours := []string{
		client.TypeKeyMissing, client.TypeKeyInvalid, client.TypeMalformedBody, client.TypeInvalidOrder,
		client.TypeCallerUnknown, client.TypeOrderNotFound, client.TypeNotFound, client.TypeMethodNotAllowed,
		client.TypeKeyInUse, client.TypeCommitLost, client.TypeWriteConflict, client.TypeBodyTooLarge,
		client.TypeUnsupportedMediaType, client.TypeKeyReused, client.TypeInternal, client.TypeResponseTooLarge,
		client.TypeTooManyWrites, client.TypeIdempotencyStoreUnavailable, client.TypeStoreUnavailable,
	}
	if len(api) < 10 {
		t.Fatalf("found only %d problem types in api/openapi.yaml; has its table changed shape?", len(api))
	}
	for _, typ := range api {
		if !slices.Contains(ours, typ) {
			t.Errorf("api/openapi.yaml lists %s: add a Type constant for it to client/errors.go (and decide its retry policy)", typ)
		}
	}
	for _, typ := range ours {
		if !slices.Contains(api, typ) {
			t.Errorf("the client has a Type constant for %s, which api/openapi.yaml does not list", typ)
		}
	}
}

func strict(t *testing.T, b []byte, v any) {
	t.Helper()
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		t.Fatalf("%s does not decode strictly into %T: %v", b, v, err)
	}
}

type raw struct {
	status int
	body   []byte
}

func send(t *testing.T, method, url, token, body, key string) raw {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return raw{res.StatusCode, b}
}
