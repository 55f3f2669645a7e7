package main_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/parcelhq/orderservice/internal/idem"
	"github.com/parcelhq/orderservice/internal/orders/orderstest"
)

type answer struct {
	status int
	header http.Header
	body   []byte
}

func (a answer) orderID(t *testing.T) string {
	t.Helper()
	var o struct {
		ID string `json:"order_id"`
	}
	if err := json.Unmarshal(a.body, &o); err != nil || o.ID == "" {
		t.Fatalf("no order_id in %d %s", a.status, a.body)
	}
	return o.ID
}

// authSession is the auth part of TestServe: what `make local`'s gateway
// and the function behind it do with tokens, through serve as a process.
func authSession(t *testing.T, client *dynamodb.Client, url, ordersTable, idemTable string,
	token func(sub string, scopes ...string) string, scopeOf func(string) string) {
	httpc := &http.Client{Timeout: 15 * time.Second}
	send := func(t *testing.T, method, path, authorization, key string) answer {
		t.Helper()
		var body io.Reader
		if method == http.MethodPost {
			body = strings.NewReader(orderstest.JSON)
		}
		req, _ := http.NewRequest(method, url+path, body)
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		if key != "" {
			req.Header.Set("Idempotency-Key", key)
		}
		if authorization != "" {
			req.Header.Set("Authorization", authorization)
		}
		resp, err := httpc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return answer{resp.StatusCode, resp.Header, b}
	}
	stored := func(t *testing.T, key string, scopes ...string) {
		t.Helper()
		for _, s := range scopes {
			out, err := client.GetItem(context.Background(), &dynamodb.GetItemInput{TableName: aws.String(idemTable), ConsistentRead: aws.Bool(true),
				Key: map[string]types.AttributeValue{idem.AttrID: &types.AttributeValueMemberS{Value: idem.RecordID(s, key)}}})
			if err != nil {
				t.Fatal(err)
			}
			if out.Item != nil {
				t.Fatalf("key %q has a record in scope %q: the request ran", key, s)
			}
		}
	}
	orderCount := func(t *testing.T) int32 {
		t.Helper()
		out, err := client.Scan(context.Background(), &dynamodb.ScanInput{TableName: aws.String(ordersTable), ConsistentRead: aws.Bool(true), Select: types.SelectCount})
		if err != nil {
			t.Fatal(err)
		}
		return out.Count
	}
	alice := "Bearer " + token("alice", "orders/create", "orders/read")
	bob := "Bearer " + token("bob", "orders/create", "orders/read")

	t.Run("without a token the gateway answers 401 as API Gateway does and nothing is stored", func(t *testing.T) {
		before := orderCount(t)
		for _, tc := range []struct{ method, path string }{{"POST", "/orders"}, {"GET", "/orders/ord_x"}, {"GET", "/nope"}} {
			r := send(t, tc.method, tc.path, "", "no-token-key")
			if r.status != http.StatusUnauthorized || string(r.body) != `{"message":"Unauthorized"}` ||
				r.header.Get("Content-Type") != "application/json" || r.header.Get("Apigw-Requestid") == "" {
				t.Fatalf("%s %s: %d %v %s", tc.method, tc.path, r.status, r.header, r.body)
			}
		}
		stored(t, "no-token-key", "", scopeOf("alice"))
		if after := orderCount(t); after != before {
			t.Fatalf("%d orders before, %d after", before, after)
		}
	})
	t.Run("a token that is not the local provider's is 401 invalid_token", func(t *testing.T) {
		r := send(t, "POST", "/orders", "Bearer eyJhbGciOiJSUzI1NiJ9.e30.c2ln", "forged-key")
		if r.status != http.StatusUnauthorized || !strings.Contains(r.header.Get("Www-Authenticate"), `error="invalid_token"`) {
			t.Fatalf("%d %v %s", r.status, r.header, r.body)
		}
		stored(t, "forged-key", "", scopeOf("alice"))
	})
	t.Run("a token without the route's scope is 403 and nothing is stored", func(t *testing.T) {
		before := orderCount(t)
		r := send(t, "POST", "/orders", "Bearer "+token("reader", "orders/read"), "read-only-key")
		if r.status != http.StatusForbidden || string(r.body) != `{"message":"Forbidden"}` ||
			!strings.Contains(r.header.Get("Www-Authenticate"), `scope="orders/create" error="insufficient_scope"`) {
			t.Fatalf("%d %v %s", r.status, r.header, r.body)
		}
		stored(t, "read-only-key", scopeOf("reader"))
		if after := orderCount(t); after != before {
			t.Fatalf("%d orders before, %d after", before, after)
		}
		if g := send(t, "GET", "/orders/ord_x", "Bearer "+token("writer", "orders/create"), ""); g.status != http.StatusForbidden {
			t.Fatalf("GET with a create-only token: %d %s", g.status, g.body)
		}
	})

	const key = "serve-shared-key"
	a := send(t, "POST", "/orders", alice, key)
	b := send(t, "POST", "/orders", bob, key)
	t.Run("two callers with the same key and body get two different orders", func(t *testing.T) {
		if a.status != http.StatusCreated || b.status != http.StatusCreated {
			t.Fatalf("alice %d %s; bob %d %s", a.status, a.body, b.status, b.body)
		}
		if a.orderID(t) == b.orderID(t) {
			t.Fatal("one order for two callers")
		}
	})
	t.Run("each caller's retry replays its own order and not the other's", func(t *testing.T) {
		for _, c := range []struct {
			auth  string
			first answer
			other answer
		}{{alice, a, b}, {bob, b, a}} {
			r := send(t, "POST", "/orders", c.auth, key)
			if r.status != http.StatusCreated || r.header.Get("Idempotent-Replayed") != "true" || !bytes.Equal(r.body, c.first.body) ||
				bytes.Contains(r.body, []byte(c.other.orderID(t))) {
				t.Fatalf("replay %d %v %s\nwant %s", r.status, r.header, r.body, c.first.body)
			}
		}
	})
	t.Run("bob's GET of alice's order is 404, the same answer as for a missing order", func(t *testing.T) {
		theirs := send(t, "GET", "/orders/"+a.orderID(t), bob, "")
		missing := send(t, "GET", "/orders/ord_aaaaaaaaaaaaaaaaaaaaaaaaaa", bob, "")
		if theirs.status != http.StatusNotFound || !bytes.Equal(theirs.body, missing.body) ||
			theirs.header.Get("Content-Type") != missing.header.Get("Content-Type") {
			t.Fatalf("theirs %d %s; missing %d %s", theirs.status, theirs.body, missing.status, missing.body)
		}
		if mine := send(t, "GET", "/orders/"+a.orderID(t), alice, ""); mine.status != http.StatusOK || !bytes.Equal(mine.body, a.body) {
			t.Fatalf("alice's GET of her order: %d %s", mine.status, mine.body)
		}
	})
}
