package client_test

import (
	"context"
	"errors"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/parcelhq/orderservice/client"
	"github.com/parcelhq/orderservice/internal/apitest"
	"github.com/parcelhq/orderservice/local/jwtauth"
)

// TestAuthRefusalsAreNotRetried sends requests the API's JWT authorizer
// refuses, through a proxy that counts them: each is sent once, ends in
// ErrNotRetryable with the gateway's status, and creates nothing.
func TestAuthRefusalsAreNotRetried(t *testing.T) {
	t.Parallel()
	api := startAPI(t)
	p := newFaultProxy(t, api.URL, func(string, int) fault { return pass })
	reader := newClient(t, p.URL, exactOptions(api.Token(t, "alice", "orders/read")))
	created, err := newClient(t, p.URL, exactOptions(api.Token(t, "alice"))).Create(callCtx(t), order(t, "readable"))
	if err != nil {
		t.Fatal(err)
	}

	const (
		unauthorized = "the API did not accept the bearer token"
		noScope      = "the bearer token lacks the scope this request needs (orders/create)"
	)
	for _, tc := range []struct {
		name   string
		token  string
		status int
		detail string
		says   string
	}{
		{"a create without a token is refused with 401, once", "", 401, "Unauthorized", unauthorized},
		{"a create with a token that is not a JWT is refused with 401, once", "not-a-jwt", 401, "Unauthorized", unauthorized},
		{"a create with a token of another issuer's key is refused with 401, once", foreignToken(t), 401, "Unauthorized", unauthorized},
		{"a create with a token without orders/create is refused with 403, once", api.Token(t, "alice", "orders/read"), 403, "Forbidden", noScope},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tag := "refused: " + tc.name
			_, err := newClient(t, p.URL, exactOptions(tc.token)).Create(callCtx(t), order(t, tag))
			apiErr := wantNotRetryable(t, err, tc.status, "")
			if apiErr.Detail != tc.detail {
				t.Errorf("Detail = %q, want the gateway's %q", apiErr.Detail, tc.detail)
			}
			var ce *client.CallError
			if !errors.As(err, &ce) || ce.Key == "" || !strings.Contains(err.Error(), ce.Key) {
				t.Errorf("%v does not name the key it was sent with", err)
			}
			if msg := err.Error(); !strings.Contains(msg, "not retryable: "+tc.says) || !strings.Contains(msg, strconv.Itoa(tc.status)) {
				t.Errorf("message %q does not say the %d is not retryable and %q", msg, tc.status, tc.says)
			}
			wantAttempts(t, p, tag, 1)
			for id, d := range api.Orders(t) {
				if d == tag {
					t.Errorf("order %s was created by a refused request", id)
				}
			}
		})
	}

	// Not parallel: both read the one order, and the first counts its GETs.
	t.Run("a read with a token without orders/read is refused with 403, once", func(t *testing.T) {
		creator := newClient(t, p.URL, exactOptions(api.Token(t, "alice", "orders/create")))
		_, err := creator.Get(callCtx(t), created.Order.ID)
		wantNotRetryable(t, err, 403, "")
		wantAttempts(t, p, "GET /orders/"+created.Order.ID, 1)
	})

	t.Run("a read with orders/read alone is answered", func(t *testing.T) {
		if _, err := reader.Get(callCtx(t), created.Order.ID); err != nil {
			t.Fatal(err)
		}
	})
}

// foreignToken is a well-formed token for orders/create signed by a key the
// API does not trust.
func foreignToken(t *testing.T) string {
	t.Helper()
	k, err := jwtauth.LoadOrCreateKey(filepath.Join(t.TempDir(), "other.pem"))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := k.Mint("alice", apitest.DefaultScopes, 0)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// TestTwoCallersWithOneKeyGetTwoOrders: keys are scoped to their caller, so
// bob's create with alice's key and body is bob's own order, and neither
// caller is answered with, or can read, the other's.
func TestTwoCallersWithOneKeyGetTwoOrders(t *testing.T) {
	t.Parallel()
	api := startAPI(t)
	p := newFaultProxy(t, api.URL, faults(dropAnswer)) // alice's first answer is lost
	alice := newClient(t, p.URL, testOptions(api.Token(t, "alice")))
	bob := newClient(t, p.URL, testOptions(api.Token(t, "bob")))
	key := client.NewKey()

	a, err := alice.CreateWithKey(callCtx(t), key, order(t, "shared"))
	if err != nil {
		t.Fatal(err)
	}
	checkCreated(t, p, a, "shared") // her retry's answer: the replay
	b, err := bob.CreateWithKey(callCtx(t), key, order(t, "shared"))
	if err != nil {
		t.Fatal(err)
	}
	if a.Order.ID == b.Order.ID {
		t.Fatalf("alice and bob both got order %s", a.Order.ID)
	}
	if b.Replayed {
		t.Error("bob's create was replayed; want a new order of his own")
	}
	var ids []string
	for id, d := range api.Orders(t) {
		if d == "shared" {
			ids = append(ids, id)
		}
	}
	if len(ids) != 2 {
		t.Errorf("table holds %v, want two orders: alice's %s and bob's %s", ids, a.Order.ID, b.Order.ID)
	}

	t.Run("each caller's retry with the key replays its own order", func(t *testing.T) {
		for name, c := range map[string]struct {
			c    *client.Client
			want string
		}{"alice": {alice, a.Order.ID}, "bob": {bob, b.Order.ID}} {
			got, err := c.c.CreateWithKey(callCtx(t), key, order(t, "shared"))
			if err != nil {
				t.Fatal(err)
			}
			if got.Order.ID != c.want || !got.Replayed {
				t.Errorf("%s's retry got %s (replayed %v), want %s replayed", name, got.Order.ID, got.Replayed, c.want)
			}
		}
	})

	t.Run("bob cannot read alice's order", func(t *testing.T) {
		_, err := bob.Get(callCtx(t), a.Order.ID)
		wantNotRetryable(t, err, 404, client.TypeOrderNotFound)
		if got, err := alice.Get(callCtx(t), a.Order.ID); err != nil || got != a.Order {
			t.Errorf("alice's Get = %+v, %v; want her order", got, err)
		}
	})
}

// TestTokenIsAskedForEveryAttempt: the token source is called before each
// attempt and its answer sent, so a token refreshed between attempts is the
// one the retry carries, and, being the same caller's, gets the order the
// first attempt made.
func TestTokenIsAskedForEveryAttempt(t *testing.T) {
	t.Parallel()
	api := startAPI(t)
	p := newFaultProxy(t, api.URL, faults(dropAnswer, unavailableBare, cutRequest))
	var mu sync.Mutex
	var issued []string
	o := testOptions("")
	o.Token = func(context.Context) (string, error) {
		tok := api.Token(t, "refresher") // a fresh token (its own jti) every time
		mu.Lock()
		defer mu.Unlock()
		issued = append(issued, tok)
		return tok, nil
	}
	got, err := newClient(t, p.URL, o).Create(callCtx(t), order(t, "tokens"))
	if err != nil {
		t.Fatal(err)
	}
	seen := p.attempts("tokens")
	if len(seen) < 4 || len(seen) != len(issued) {
		t.Fatalf("%d attempts and %d tokens, want one token per attempt and at least 4 attempts (three faults, then the answer)", len(seen), len(issued))
	}
	for i, a := range seen {
		if a.auth != "Bearer "+issued[i] {
			t.Errorf("attempt %d sent Authorization %q, want the token the source returned for it", i+1, a.auth)
		}
		if i > 0 && issued[i] == issued[i-1] {
			t.Errorf("attempts %d and %d carried the same token", i, i+1)
		}
	}
	checkCreated(t, p, got, "tokens") // the retry with a refreshed token is replayed the order the first attempt made
	checkTable(t, api, map[string]string{"tokens": got.Order.ID})
}
