package jwtauth

import (
	"bytes"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"
)

// Denial is an answer API Gateway's JWT authorizer gives instead of
// invoking the function: 401 {"message":"Unauthorized"} or 403
// {"message":"Forbidden"}, with a www-authenticate challenge when a token
// was presented.
type Denial struct {
	Status int
	// WWWAuthenticate is the www-authenticate header value, "" for none.
	WWWAuthenticate string
	Body            string
	// Reason says why, for logs (API Gateway's error_description).
	Reason string
}

// Header returns the response headers of d other than Content-Length.
func (d *Denial) Header() map[string]string {
	h := map[string]string{"Content-Type": "application/json"}
	if d.WWWAuthenticate != "" {
		h["Www-Authenticate"] = d.WWWAuthenticate
	}
	return h
}

// Verifier checks bearer tokens as an API Gateway HTTP API JWT authorizer
// configured with one issuer, its audiences and one signing key does.
type Verifier struct {
	key      *rsa.PublicKey
	kid      string
	issuer   string
	audience []string
	now      func() time.Time
}

// NewVerifier returns a Verifier of RS256 tokens signed by the key whose
// public half is pub and whose id is kid, issued by issuer to one of
// audience. now is the clock (nil: time.Now).
func NewVerifier(pub *rsa.PublicKey, kid, issuer string, audience []string, now func() time.Time) *Verifier {
	if now == nil {
		now = time.Now
	}
	return &Verifier{key: pub, kid: kid, issuer: issuer, audience: audience, now: now}
}

// LocalVerifier returns the Verifier `make local` uses: k's tokens, Issuer,
// Audience.
func LocalVerifier(k *Key) *Verifier {
	return NewVerifier(k.Public(), k.KeyID(), Issuer, []string{Audience}, nil)
}

// Verify checks authorization (the request's Authorization header: the
// token, optionally prefixed "Bearer ") for a route whose required scopes
// are required (empty: any valid token), in API Gateway's order:
//
//   - no token: 401 Unauthorized;
//   - not three base64url parts of JSON, an alg other than RS256, an
//     unknown kid, a bad signature: 401;
//   - iss not the issuer; aud (or, only when there is no aud, client_id)
//     not one of the audiences; exp missing or not after now; nbf or iat
//     after now: 401;
//   - required scopes, none of them in the scope (space-separated) or scp
//     claim: 403 Forbidden.
//
// Every 401/403 for a presented token carries www-authenticate: Bearer
// scope="<required>" error="invalid_token"|"insufficient_scope"
// error_description="...". On success it returns what API Gateway puts in
// requestContext.authorizer.jwt: every claim as a string (numbers in their
// JSON spelling, arrays as "[a b]", objects as JSON) and the token's scopes.
func (v *Verifier) Verify(authorization string, required []string) (*events.APIGatewayV2HTTPRequestContextAuthorizerJWTDescription, *Denial) {
	token := strings.TrimSpace(authorization)
	if len(token) > 7 && strings.EqualFold(token[:7], "bearer ") {
		token = strings.TrimSpace(token[7:])
	}
	if token == "" {
		return nil, &Denial{Status: http.StatusUnauthorized, Body: `{"message":"Unauthorized"}`, Reason: "no token"}
	}
	invalid := func(why string) (*events.APIGatewayV2HTTPRequestContextAuthorizerJWTDescription, *Denial) {
		return nil, &Denial{Status: http.StatusUnauthorized, Body: `{"message":"Unauthorized"}`, Reason: why,
			WWWAuthenticate: challenge(required, "invalid_token", why)}
	}

	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return invalid("token contains an invalid number of segments")
	}
	var header struct {
		Alg string `json:"alg"`
		Kid string `json:"kid"`
	}
	if err := decodeSegment(parts[0], &header); err != nil {
		return invalid("the token header is not valid JSON")
	}
	if header.Alg != "RS256" {
		return invalid(fmt.Sprintf("signing method %s is invalid", header.Alg))
	}
	if header.Kid != v.kid {
		return invalid("the token's kid is not a key of the issuer")
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return invalid("the token signature is not base64url")
	}
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if rsa.VerifyPKCS1v15(v.key, crypto.SHA256, sum[:], sig) != nil {
		return invalid("crypto/rsa: verification error")
	}
	var claims map[string]any
	if err := decodeSegment(parts[1], &claims); err != nil || claims == nil {
		return invalid("the token claims are not a JSON object")
	}

	if iss, _ := claims["iss"].(string); iss != v.issuer {
		return invalid("the token does not have a valid issuer")
	}
	if !v.audienceOK(claims) {
		return invalid("the token does not have a valid audience")
	}
	now := v.now()
	exp, ok := numericDate(claims["exp"])
	if !ok {
		return invalid("the token has no valid exp claim")
	}
	if !now.Before(exp) {
		return invalid("the token has expired")
	}
	if nbf, ok := numericDate(claims["nbf"]); ok && now.Before(nbf) {
		return invalid("the token is not valid yet")
	}
	if iat, ok := numericDate(claims["iat"]); ok && now.Before(iat) {
		return invalid("the token was issued in the future")
	}

	scopes := tokenScopes(claims)
	if len(required) > 0 && !slices.ContainsFunc(required, func(s string) bool { return slices.Contains(scopes, s) }) {
		return nil, &Denial{Status: http.StatusForbidden, Body: `{"message":"Forbidden"}`,
			Reason:          "the token does not have the required scope",
			WWWAuthenticate: challenge(required, "insufficient_scope", "the token does not have the required scope")}
	}
	out := &events.APIGatewayV2HTTPRequestContextAuthorizerJWTDescription{Claims: make(map[string]string, len(claims)), Scopes: scopes}
	for k, c := range claims {
		out.Claims[k] = claimString(c)
	}
	return out, nil
}

func challenge(required []string, code, description string) string {
	return fmt.Sprintf(`Bearer scope=%q error=%q error_description=%q`, strings.Join(required, " "), code, description)
}

func decodeSegment(seg string, into any) error {
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	return dec.Decode(into)
}

// audienceOK applies API Gateway's rule: aud (a string or an array) when the
// token has one, else client_id, must be one of the audiences.
func (v *Verifier) audienceOK(claims map[string]any) bool {
	if aud, ok := claims["aud"]; ok {
		switch a := aud.(type) {
		case string:
			return slices.Contains(v.audience, a)
		case []any:
			for _, e := range a {
				if s, ok := e.(string); ok && slices.Contains(v.audience, s) {
					return true
				}
			}
		}
		return false
	}
	id, _ := claims["client_id"].(string)
	return id != "" && slices.Contains(v.audience, id)
}

// numericDate reads a JWT NumericDate (seconds since the epoch, possibly
// fractional).
func numericDate(v any) (time.Time, bool) {
	n, ok := v.(json.Number)
	if !ok {
		return time.Time{}, false
	}
	f, err := strconv.ParseFloat(n.String(), 64)
	if err != nil {
		return time.Time{}, false
	}
	sec := int64(f)
	return time.Unix(sec, int64((f-float64(sec))*1e9)), true
}

// tokenScopes returns the scope claim split on spaces, or else the scp
// claim (an array, or a space-separated string).
func tokenScopes(claims map[string]any) []string {
	if s, ok := claims["scope"].(string); ok {
		return strings.Fields(s)
	}
	switch scp := claims["scp"].(type) {
	case string:
		return strings.Fields(scp)
	case []any:
		var out []string
		for _, e := range scp {
			if s, ok := e.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

// claimString renders a claim the way API Gateway does in the event.
func claimString(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case json.Number:
		return x.String()
	case bool:
		return strconv.FormatBool(x)
	case nil:
		return ""
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = claimString(e)
		}
		return "[" + strings.Join(parts, " ") + "]"
	default:
		b, _ := json.Marshal(x)
		return string(b)
	}
}
