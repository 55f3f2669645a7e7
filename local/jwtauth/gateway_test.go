package jwtauth

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
)

func TestGatewayAuthorizer(t *testing.T) {
	t.Parallel()
	keyPath := filepath.Join(t.TempDir(), "key.pem")
	authorize, err := GatewayAuthorizer(keyPath, "template.yaml", slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	k, err := LoadOrCreateKey(keyPath) // the pair GatewayAuthorizer made
	if err != nil {
		t.Fatal(err)
	}
	mint := func(scopes ...string) string {
		tok, err := k.Mint("alice", scopes, 0)
		if err != nil {
			t.Fatal(err)
		}
		return "Bearer " + tok
	}
	for _, tc := range []struct {
		name, route, authorization string
		status                     int // 0: let through
		body, challenge            string
	}{
		{"a create without a token gets API Gateway's 401", "POST /orders", "", 401, `{"message":"Unauthorized"}`, ""},
		{"a create with a token of the key pair it made goes through", "POST /orders", mint("orders/create"), 0, "", ""},
		{"a create with a token without orders/create gets the 403 that names the scope", "POST /orders", mint("orders/read"), 403, `{"message":"Forbidden"}`, `scope="orders/create"`},
		{"a read with a token without orders/read gets the 403 that names the scope", "GET /orders/{order_id}", mint("orders/create"), 403, `{"message":"Forbidden"}`, `scope="orders/read"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/orders", nil)
			if tc.authorization != "" {
				r.Header.Set("Authorization", tc.authorization)
			}
			auth, deny := authorize(r, tc.route)
			if tc.status == 0 {
				if deny != nil || auth == nil || auth.JWT.Claims["sub"] != "alice" {
					t.Fatalf("authorizer %+v, denial %+v; want alice's claims through", auth, deny)
				}
				return
			}
			if deny == nil || auth != nil {
				t.Fatalf("authorizer %+v, denial %+v; want a %d", auth, deny, tc.status)
			}
			if deny.Status != tc.status || deny.Body != tc.body || deny.Headers["Content-Type"] != "application/json" {
				t.Errorf("denial %d %q %v, want %d %s as application/json", deny.Status, deny.Body, deny.Headers, tc.status, tc.body)
			}
			if !strings.Contains(deny.Headers["Www-Authenticate"], tc.challenge) {
				t.Errorf("www-authenticate %q lacks %q", deny.Headers["Www-Authenticate"], tc.challenge)
			}
		})
	}

	t.Run("a template without route scopes is an error", func(t *testing.T) {
		if _, err := GatewayAuthorizer(keyPath, "samconfig.toml", slog.Default()); err == nil {
			t.Error("GatewayAuthorizer accepted a file that is not a SAM template")
		}
	})
}
