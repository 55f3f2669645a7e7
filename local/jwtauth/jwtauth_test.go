package jwtauth

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// testKey is one in-memory key for the package's tests: RSA generation is
// slow.
var testKey = sync.OnceValue(func() *Key {
	priv, err := rsa.GenerateKey(rand.Reader, keyBits)
	if err != nil {
		panic(err)
	}
	k, err := newKey(priv)
	if err != nil {
		panic(err)
	}
	return k
})

func TestLoadOrCreateKey(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "nested", ".local")
	path := filepath.Join(dir, "key.pem")

	t.Run("concurrent first uses all end up with one key, kept private", func(t *testing.T) {
		const n = 4
		kids := make([]string, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				k, err := LoadOrCreateKey(path)
				if err != nil {
					t.Error(err)
					return
				}
				kids[i] = k.KeyID()
			}()
		}
		wg.Wait()
		for _, kid := range kids {
			if kid == "" || kid != kids[0] {
				t.Fatalf("key ids %q: want one key", kids)
			}
		}
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("key file mode %v, want 0600", fi.Mode().Perm())
		}
		if di, _ := os.Stat(dir); di.Mode().Perm() != 0o700 {
			t.Errorf("key directory mode %v, want 0700", di.Mode().Perm())
		}
		entries, _ := os.ReadDir(dir)
		if len(entries) != 1 {
			t.Errorf("directory holds %d entries, want only the key (no temporary files left)", len(entries))
		}
	})
	t.Run("a later load gives the same key, so tokens minted by one process verify in another", func(t *testing.T) {
		a, err := LoadOrCreateKey(path)
		if err != nil {
			t.Fatal(err)
		}
		b, err := LoadOrCreateKey(path)
		if err != nil {
			t.Fatal(err)
		}
		tok, err := a.Mint("alice", []string{"orders/read"}, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, d := LocalVerifier(b).Verify("Bearer "+tok, []string{"orders/read"}); d != nil {
			t.Fatalf("denied: %+v", d)
		}
	})
	t.Run("a file that is not a private key is an error, not replaced", func(t *testing.T) {
		bad := filepath.Join(t.TempDir(), "bad.pem")
		if err := os.WriteFile(bad, []byte("not a key"), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := LoadOrCreateKey(bad); err == nil {
			t.Fatal("no error")
		}
		if b, _ := os.ReadFile(bad); string(b) != "not a key" {
			t.Fatal("the file was overwritten")
		}
	})
}

func TestVerify(t *testing.T) {
	t.Parallel()
	k := testKey()
	now := time.Unix(1_800_000_000, 0)
	v := NewVerifier(k.Public(), k.KeyID(), Issuer, []string{Audience}, func() time.Time { return now })
	claims := func(edit func(map[string]any)) map[string]any {
		c := map[string]any{"iss": Issuer, "sub": "alice", "client_id": Audience, "token_use": "access",
			"scope": "orders/create orders/read", "iat": now.Unix() - 10, "exp": now.Unix() + 3600, "jti": "j1"}
		if edit != nil {
			edit(c)
		}
		return c
	}
	sign := func(c map[string]any) string {
		tok, err := k.Sign(c)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	otherKey, _ := newKey(other)
	good := sign(claims(nil))
	parts := strings.Split(good, ".")
	hs256, _ := k.sign(map[string]any{"alg": "HS256", "typ": "JWT", "kid": k.KeyID()}, claims(nil))
	foreign, _ := otherKey.Sign(claims(nil))
	sameKidForeignKey, _ := otherKey.sign(map[string]any{"alg": "RS256", "typ": "JWT", "kid": k.KeyID()}, claims(nil))
	tampered := parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(`{"iss":"`+Issuer+`","sub":"mallory","client_id":"`+Audience+`","scope":"orders/create","exp":1900000000}`)) + "." + parts[2]

	create := []string{"orders/create"}
	for _, tc := range []struct {
		name     string
		header   string
		required []string
		status   int    // 0: accepted
		reason   string // part of the error_description
	}{
		{"a valid token with the Bearer prefix is accepted", "Bearer " + good, create, 0, ""},
		{"a bare token is accepted, as API Gateway's identity source allows", good, create, 0, ""},
		{"the prefix is case-insensitive", "bearer " + good, create, 0, ""},
		{"no Authorization header is 401", "", create, http.StatusUnauthorized, "no token"},
		{"a token that is not a JWT is 401", "Bearer abc", create, http.StatusUnauthorized, "segments"},
		{"an HS256 token is 401: only RSA is accepted", "Bearer " + hs256, create, http.StatusUnauthorized, "HS256"},
		{"a token of another key is 401", "Bearer " + foreign, create, http.StatusUnauthorized, "kid"},
		{"another key's signature under this key's kid is 401", "Bearer " + sameKidForeignKey, create, http.StatusUnauthorized, "verification"},
		{"a token whose claims were changed is 401", "Bearer " + tampered, create, http.StatusUnauthorized, "verification"},
		{"another issuer is 401", "Bearer " + sign(claims(func(c map[string]any) { c["iss"] = "https://evil.example/" })), create, http.StatusUnauthorized, "issuer"},
		{"another client is 401", "Bearer " + sign(claims(func(c map[string]any) { c["client_id"] = "other" })), create, http.StatusUnauthorized, "audience"},
		{"an aud naming the audience is accepted", "Bearer " + sign(claims(func(c map[string]any) { delete(c, "client_id"); c["aud"] = []any{"x", Audience} })), create, 0, ""},
		{"when aud is present it decides, not client_id", "Bearer " + sign(claims(func(c map[string]any) { c["aud"] = "other" })), create, http.StatusUnauthorized, "audience"},
		{"an expired token is 401", "Bearer " + sign(claims(func(c map[string]any) { c["exp"] = now.Unix() })), create, http.StatusUnauthorized, "expired"},
		{"a token without exp is 401", "Bearer " + sign(claims(func(c map[string]any) { delete(c, "exp") })), create, http.StatusUnauthorized, "exp"},
		{"a token not valid before later is 401", "Bearer " + sign(claims(func(c map[string]any) { c["nbf"] = now.Unix() + 60 })), create, http.StatusUnauthorized, "not valid yet"},
		{"a token issued in the future is 401", "Bearer " + sign(claims(func(c map[string]any) { c["iat"] = now.Unix() + 60 })), create, http.StatusUnauthorized, "future"},
		{"a token without the route's scope is 403", "Bearer " + sign(claims(func(c map[string]any) { c["scope"] = "orders/read" })), create, http.StatusForbidden, "scope"},
		{"a token without any scope is 403 on a route that requires one", "Bearer " + sign(claims(func(c map[string]any) { delete(c, "scope") })), create, http.StatusForbidden, "scope"},
		{"one of the route's scopes is enough", "Bearer " + sign(claims(func(c map[string]any) { c["scope"] = "orders/read" })), []string{"orders/create", "orders/read"}, 0, ""},
		{"an scp array counts as scopes", "Bearer " + sign(claims(func(c map[string]any) { delete(c, "scope"); c["scp"] = []any{"orders/create"} })), create, 0, ""},
		{"a route without scopes takes any valid token", "Bearer " + sign(claims(func(c map[string]any) { delete(c, "scope") })), nil, 0, ""},
		{"a route without scopes still refuses an invalid token", "Bearer " + foreign, nil, http.StatusUnauthorized, "kid"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			jwt, d := v.Verify(tc.header, tc.required)
			if tc.status == 0 {
				if d != nil || jwt == nil {
					t.Fatalf("denied: %+v", d)
				}
				return
			}
			if d == nil || d.Status != tc.status || !strings.Contains(d.Reason, tc.reason) {
				t.Fatalf("got %+v, %+v; want %d (%s)", jwt, d, tc.status, tc.reason)
			}
			wantBody := map[int]string{401: `{"message":"Unauthorized"}`, 403: `{"message":"Forbidden"}`}[tc.status]
			if d.Body != wantBody {
				t.Errorf("body %s, want %s", d.Body, wantBody)
			}
			switch {
			case tc.header == "" && d.WWWAuthenticate != "":
				t.Errorf("www-authenticate %q for a request without a token", d.WWWAuthenticate)
			case tc.header != "" && tc.status == 401 && !strings.HasPrefix(d.WWWAuthenticate, `Bearer scope="`+strings.Join(tc.required, " ")+`" error="invalid_token"`):
				t.Errorf("www-authenticate %q", d.WWWAuthenticate)
			case tc.status == 403 && !strings.Contains(d.WWWAuthenticate, `error="insufficient_scope"`):
				t.Errorf("www-authenticate %q", d.WWWAuthenticate)
			}
		})
	}

	t.Run("the accepted token's claims reach the event as API Gateway renders them", func(t *testing.T) {
		tok := sign(claims(func(c map[string]any) { c["aud"] = []any{Audience, "b"}; c["admin"] = false }))
		jwt, d := v.Verify("Bearer "+tok, create)
		if d != nil {
			t.Fatal(d)
		}
		want := map[string]string{"iss": Issuer, "sub": "alice", "client_id": Audience, "token_use": "access", "scope": "orders/create orders/read",
			"iat": "1799999990", "exp": "1800003600", "jti": "j1", "aud": "[" + Audience + " b]", "admin": "false"}
		for k, w := range want {
			if jwt.Claims[k] != w {
				t.Errorf("claim %s = %q, want %q", k, jwt.Claims[k], w)
			}
		}
		if len(jwt.Claims) != len(want) {
			t.Errorf("claims %v, want exactly %v", jwt.Claims, want)
		}
		if strings.Join(jwt.Scopes, " ") != "orders/create orders/read" {
			t.Errorf("scopes %v", jwt.Scopes)
		}
	})
	t.Run("Mint makes a token for its subject and scopes that verifies now and expires after its ttl", func(t *testing.T) {
		tok, err := k.Mint("bob", []string{"orders/read"}, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		live := LocalVerifier(k)
		jwt, d := live.Verify("Bearer "+tok, []string{"orders/read"})
		if d != nil || jwt.Claims["sub"] != "bob" || jwt.Claims["iss"] != Issuer {
			t.Fatalf("%+v %+v", jwt, d)
		}
		if _, d := live.Verify("Bearer "+tok, create); d == nil || d.Status != http.StatusForbidden {
			t.Fatalf("a read-only token on a create route: %+v", d)
		}
		later := NewVerifier(k.Public(), k.KeyID(), Issuer, []string{Audience}, func() time.Time { return time.Now().Add(time.Minute + time.Second) })
		if _, d := later.Verify("Bearer "+tok, []string{"orders/read"}); d == nil || d.Status != http.StatusUnauthorized {
			t.Fatalf("after its ttl: %+v", d)
		}
		if _, err := k.Mint("", nil, 0); err == nil {
			t.Fatal("a token without subject was minted")
		}
	})
}
