package client

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/parcelhq/orderservice/internal/apitest"
	"github.com/parcelhq/orderservice/internal/idem/idemhttp"
	"github.com/parcelhq/orderservice/internal/orders/orderstest"
)

var uuidV4 = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func TestNewKeyIsAUUIDv4(t *testing.T) {
	seen := map[string]bool{}
	for i := 0; i < 1000; i++ {
		k := NewKey()
		if !uuidV4.MatchString(k) {
			t.Fatalf("NewKey() = %q, not a version 4 UUID", k)
		}
		if seen[k] {
			t.Fatalf("NewKey() repeated %q", k)
		}
		seen[k] = true
		if got, err := idemhttp.ParseKey(keyHeader(k)); err != nil || got != k {
			t.Fatalf("the API reads %q as %q, %v", k, got, err)
		}
	}
}

// TestCheckKeyAgreesWithTheAPI checks CheckKey against the real API: every
// key it accepts is one the API accepts as sent (keyHeader), reads as that
// very key (a second create with it is its replay, and no two of these keys
// are read as one), and every key it refuses is one the API refuses too.
func TestCheckKeyAgreesWithTheAPI(t *testing.T) {
	t.Parallel()
	valid := []struct{ name, key string }{
		{"a UUID", "3f0c4b1e-8d2a-4c57-9e1b-2f6a7d9c0b13"},
		{"one character", "k"},
		{"255 characters", strings.Repeat("k", 255)},
		{"a key with spaces inside", "order 42 of batch 7"},
		{"a key with leading and trailing spaces", "  padded  "},
		{"the same key without its spaces", "padded"},
		{`a key with " and \`, `a"b\c`},
		{"a key with = and / (not a bare sf-token)", "tenant=7/order=42"},
		{"a key with a semicolon (parameters, bare)", "order-42;retry"},
		{"a key that is a number, bare", "-1"},
		{"a key that starts with @", "@alice/1"},
		{"a key in parentheses", "(x)"},
		{"a key that is a boolean, bare", "?1"},
		{"a key that is a byte sequence, bare", ":YWJj:"},
		{"every printable ASCII character but the comma", printableASCIIWithoutComma()},
	}
	invalid := []struct {
		name, key string
		sendable  bool // a Go client can put it in a header at all
	}{
		{"an empty key", "", true},
		{"256 characters", strings.Repeat("k", 256), true},
		{"a comma", "a,b", true},
		{"non-ASCII", "café", true},
		{"a tab", "a\tb", false},
		{"a newline", "a\nb", false},
		{"DEL", "a\x7fb", false},
	}

	api := apitest.Start(t)
	token := api.Token(t, "keys")
	c, err := New(api.URL, Options{Token: StaticToken(token), AttemptTimeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	var base OrderRequest
	if err := json.Unmarshal([]byte(orderstest.JSON), &base); err != nil {
		t.Fatal(err)
	}

	t.Run("every key CheckKey accepts", func(t *testing.T) {
		ids := map[string]string{} // order id -> key
		for _, tc := range valid {
			t.Run(tc.name+" is accepted by the API as that key", func(t *testing.T) {
				if err := CheckKey(tc.key); err != nil {
					t.Fatalf("CheckKey(%q) = %v, want nil", tc.key, err)
				}
				if got, err := idemhttp.ParseKey(keyHeader(tc.key)); err != nil || got != tc.key {
					t.Errorf("header %q: ParseKey reads %q, %v; want %q", keyHeader(tc.key), got, err, tc.key)
				}
				req := base
				req.Parcel.Description = "key: " + tc.name
				first, err := c.CreateWithKey(ctx, tc.key, req)
				if err != nil {
					t.Fatalf("CreateWithKey(%q): %v", tc.key, err)
				}
				again, err := c.CreateWithKey(ctx, tc.key, req)
				if err != nil || !again.Replayed || again.Order.ID != first.Order.ID {
					t.Fatalf("the second create with %q: %+v, %v; want the replay of %s", tc.key, again, err, first.Order.ID)
				}
				if other, dup := ids[first.Order.ID]; dup {
					t.Errorf("keys %q and %q were read as one key (order %s)", other, tc.key, first.Order.ID)
				}
				ids[first.Order.ID] = tc.key
			})
		}
	})

	t.Run("every key CheckKey refuses", func(t *testing.T) {
		for _, tc := range invalid {
			t.Run(tc.name+" is refused by the API too", func(t *testing.T) {
				if err := CheckKey(tc.key); err == nil {
					t.Fatalf("CheckKey(%q) = nil, want an error", tc.key)
				}
				if _, err := idemhttp.ParseKey(keyHeader(tc.key)); err == nil {
					t.Errorf("ParseKey(%q) accepts a key CheckKey refuses", keyHeader(tc.key))
				}
				if !tc.sendable {
					return
				}
				status, typ := post(t, api.URL, token, keyHeader(tc.key), orderstest.WithDescription("bad key: "+tc.name))
				if status != http.StatusBadRequest || typ != TypeKeyInvalid {
					t.Errorf("the API answered %d %s to key %q, want 400 %s", status, typ, tc.key, TypeKeyInvalid)
				}
			})
		}
	})

	t.Run("a key an older client sent bare is resumed by this one", func(t *testing.T) {
		key := NewKey()
		body, _ := json.Marshal(base)
		if status, typ := post(t, api.URL, token, key, string(body)); status != http.StatusCreated {
			t.Fatalf("bare key: %d %s", status, typ)
		}
		got, err := c.CreateWithKey(ctx, key, base)
		if err != nil || !got.Replayed {
			t.Fatalf("CreateWithKey: %+v, %v; want the replay of the order made under the bare key", got, err)
		}
	})

	t.Run("a refused key is not sent", func(t *testing.T) {
		_, err := c.CreateWithKey(ctx, "a,b", base)
		var ce *CallError
		if !errors.As(err, &ce) || !errors.Is(err, ErrNotRetryable) || ce.Attempts != 0 {
			t.Errorf("%v, want ErrNotRetryable after 0 attempts", err)
		}
	})
}

// post sends body to POST /orders with the raw Idempotency-Key header value
// hdr and returns the status and problem type of the answer.
func post(t *testing.T, url, token, hdr, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url+"/orders", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Idempotency-Key", hdr)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	var p struct {
		Type string `json:"type"`
	}
	_ = json.Unmarshal(b, &p)
	return res.StatusCode, p.Type
}

func printableASCIIWithoutComma() string {
	var b strings.Builder
	for c := byte(0x20); c <= 0x7e; c++ {
		if c != ',' {
			b.WriteByte(c)
		}
	}
	return b.String()
}
