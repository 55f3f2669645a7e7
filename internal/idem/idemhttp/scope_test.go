package idemhttp

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/awslabs/aws-lambda-go-api-proxy/httpadapter"
)

// scopeThroughAdapter serves rc through the real API Gateway v2 adapter and
// returns what APIGatewayV2Scope made of the request it produced.
func scopeThroughAdapter(t *testing.T, rc events.APIGatewayV2HTTPRequestContext) (string, error) {
	t.Helper()
	var scope string
	var scopeErr error
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		scope, scopeErr = APIGatewayV2Scope(r)
		w.WriteHeader(http.StatusNoContent)
	})
	rc.HTTP.Method = "POST"
	rc.HTTP.Path = "/orders"
	rc.RouteKey = "POST /orders"
	_, err := httpadapter.NewV2(h).ProxyWithContext(context.Background(), events.APIGatewayV2HTTPRequest{
		Version: "2.0", RouteKey: "POST /orders", RawPath: "/orders", RequestContext: rc,
		Headers: map[string]string{"content-type": "application/json"}, Body: "{}",
	})
	if err != nil {
		t.Fatalf("adapter: %v", err)
	}
	return scope, scopeErr
}

func TestAPIGatewayV2Scope(t *testing.T) {
	t.Parallel()
	auth := func(a events.APIGatewayV2HTTPRequestContextAuthorizerDescription) events.APIGatewayV2HTTPRequestContext {
		return events.APIGatewayV2HTTPRequestContext{Authorizer: &a}
	}
	jwt := func(claims map[string]string) events.APIGatewayV2HTTPRequestContext {
		return auth(events.APIGatewayV2HTTPRequestContextAuthorizerDescription{
			JWT: &events.APIGatewayV2HTTPRequestContextAuthorizerJWTDescription{Claims: claims}})
	}
	iam := func(d events.APIGatewayV2HTTPRequestContextAuthorizerIAMDescription) events.APIGatewayV2HTTPRequestContext {
		return auth(events.APIGatewayV2HTTPRequestContextAuthorizerDescription{IAM: &d})
	}
	lambda := func(m map[string]any) events.APIGatewayV2HTTPRequestContext {
		return auth(events.APIGatewayV2HTTPRequestContextAuthorizerDescription{Lambda: m})
	}
	mtls := events.APIGatewayV2HTTPRequestContext{}
	mtls.Authentication.ClientCert.IssuerDN = "CN=Parcel CA"
	mtls.Authentication.ClientCert.SerialNumber = "0a:1b"

	cases := []struct {
		name string
		rc   events.APIGatewayV2HTTPRequestContext
		want string
	}{
		{"a JWT caller is scoped by issuer and subject", jwt(map[string]string{"iss": "https://id.example/", "sub": "auth0|42"}), "jwt:https://id.example/|auth0|42"},
		{"a bar in a JWT issuer is escaped so it cannot shift into the subject", jwt(map[string]string{"iss": "a|b", "sub": "c"}), "jwt:a%7Cb|c"},
		{"a client-credentials JWT whose sub is its client is scoped by that sub", jwt(map[string]string{
			"iss": "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_Pool", "sub": "3q1client", "client_id": "3q1client", "token_use": "access"}),
			"jwt:https://cognito-idp.us-east-1.amazonaws.com/us-east-1_Pool|3q1client"},
		{"a user's JWT is scoped by the user, not by the app client that got it", jwt(map[string]string{
			"iss": "https://id.example/", "sub": "user-7", "client_id": "web-app"}), "jwt:https://id.example/|user-7"},
		{"a client-credentials JWT without sub is scoped by its client_id", jwt(map[string]string{
			"iss": "https://id.example/", "client_id": "batch-importer"}), "jwt-client:https://id.example/|batch-importer"},
		{"an assumed-role caller is scoped by the role's unique id, not the session", iam(events.APIGatewayV2HTTPRequestContextAuthorizerIAMDescription{
			UserARN: "arn:aws:sts::123456789012:assumed-role/Shop/session-1", AccountID: "123456789012", UserID: "AROAEXAMPLE1:session-1"}),
			"iam:AROAEXAMPLE1"},
		{"an assumed-role session name with slashes and colons is still only the session", iam(events.APIGatewayV2HTTPRequestContextAuthorizerIAMDescription{
			UserARN: "arn:aws-cn:sts::123456789012:assumed-role/Shop/ecs/task:42", UserID: "AROAEXAMPLE1:ecs/task:42"}), "iam:AROAEXAMPLE1"},
		{"an assumed role without userId is scoped by the role id in callerId", iam(events.APIGatewayV2HTTPRequestContextAuthorizerIAMDescription{
			UserARN: "arn:aws:sts::123456789012:assumed-role/Shop/s", CallerID: "AROAEXAMPLE1:s"}), "iam:AROAEXAMPLE1"},
		{"an IAM user is scoped by its unique id", iam(events.APIGatewayV2HTTPRequestContextAuthorizerIAMDescription{
			UserARN: "arn:aws:iam::123456789012:user/ci", AccountID: "123456789012", UserID: "AIDAEXAMPLE1"}),
			"iam:AIDAEXAMPLE1"},
		{"the account root is scoped by its ARN", iam(events.APIGatewayV2HTTPRequestContextAuthorizerIAMDescription{
			UserARN: "arn:aws:iam::123456789012:root", AccountID: "123456789012", UserID: "123456789012"}),
			"iam:arn:aws:iam::123456789012:root"},
		{"a federated user is scoped by its ARN", iam(events.APIGatewayV2HTTPRequestContextAuthorizerIAMDescription{
			UserARN: "arn:aws:sts::123456789012:federated-user/ann", AccountID: "123456789012", UserID: "123456789012:ann"}),
			"iam:arn:aws:sts::123456789012:federated-user/ann"},
		{"a Cognito identity is scoped by identity, not by the shared role", iam(events.APIGatewayV2HTTPRequestContextAuthorizerIAMDescription{
			UserARN:         "arn:aws:sts::123456789012:assumed-role/Cognito_Auth/CognitoIdentityCredentials",
			CognitoIdentity: events.APIGatewayV2HTTPRequestContextAuthorizerCognitoIdentity{IdentityPoolID: "us-east-1:pool", IdentityID: "us-east-1:id-7"}}),
			"cognito:us-east-1:pool|us-east-1:id-7"},
		{"a Lambda authorizer caller is scoped by principalId", lambda(map[string]any{"principalId": "shop-9", "tier": "gold"}), "lambda:shop-9"},
		{"a Lambda authorizer caller without principalId is scoped by sub", lambda(map[string]any{"sub": "u-1"}), "lambda:u-1"},
		{"a numeric principalId decoded exactly is scoped by its digits", lambda(map[string]any{"principalId": json.Number("9007199254740993")}), "lambda:9007199254740993"},
		{"a numeric principalId is the same caller as the same digits as a string", lambda(map[string]any{"principalId": json.Number("1234")}), "lambda:1234"},
		{"a mutual-TLS caller is scoped by certificate issuer and serial", mtls, "mtls:CN=Parcel CA|0a:1b"},
		{"a request without an authorizer is anonymous", events.APIGatewayV2HTTPRequestContext{}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := scopeThroughAdapter(t, tc.rc)
			if err != nil || got != tc.want {
				t.Fatalf("scope = %q, %v; want %q", got, err, tc.want)
			}
		})
	}

	failing := []struct {
		name string
		rc   events.APIGatewayV2HTTPRequestContext
	}{
		{"a JWT without sub", jwt(map[string]string{"iss": "https://id.example/"})},
		{"a JWT without iss", jwt(map[string]string{"sub": "u-1"})},
		{"a JWT with neither sub nor client_id", jwt(map[string]string{"iss": "https://id.example/", "client_id": ""})},
		{"an IAM caller without any identity", iam(events.APIGatewayV2HTTPRequestContextAuthorizerIAMDescription{})},
		{"an IAM caller with only account and user id", iam(events.APIGatewayV2HTTPRequestContextAuthorizerIAMDescription{AccountID: "123456789012", UserID: "AIDAEXAMPLE"})},
		{"an assumed role without its role id", iam(events.APIGatewayV2HTTPRequestContextAuthorizerIAMDescription{UserARN: "arn:aws:sts::123456789012:assumed-role/Shop/s"})},
		{"an assumed role whose userId is no role id", iam(events.APIGatewayV2HTTPRequestContextAuthorizerIAMDescription{
			UserARN: "arn:aws:sts::123456789012:assumed-role/Shop/s", UserID: "AIDAEXAMPLE1"})},
		{"an IAM user without its user id", iam(events.APIGatewayV2HTTPRequestContextAuthorizerIAMDescription{UserARN: "arn:aws:iam::123456789012:user/ci"})},
		{"an IAM user whose userId is a role id", iam(events.APIGatewayV2HTTPRequestContextAuthorizerIAMDescription{
			UserARN: "arn:aws:iam::123456789012:user/ci", UserID: "AROAEXAMPLE1:s"})},
		{"a principalId decoded as float64, which may have lost digits", lambda(map[string]any{"principalId": float64(1234)})},
		{"a principalId with a fraction", lambda(map[string]any{"principalId": json.Number("12.5")})},
		{"a principalId in exponent form", lambda(map[string]any{"principalId": json.Number("1e3")})},
		{"a principalId that is an object", lambda(map[string]any{"principalId": map[string]any{"id": "x"}})},
		{"a Lambda authorizer context without a principal", lambda(map[string]any{"tier": "gold"})},
	}
	for _, tc := range failing {
		t.Run(tc.name+" has no scope", func(t *testing.T) {
			t.Parallel()
			got, err := scopeThroughAdapter(t, tc.rc)
			if !errors.Is(err, ErrNoPrincipal) || got != "" {
				t.Fatalf("scope = %q, %v; want ErrNoPrincipal", got, err)
			}
		})
	}

	t.Run("a request that did not come through API Gateway is anonymous", func(t *testing.T) {
		t.Parallel()
		r, _ := http.NewRequest("POST", "http://127.0.0.1/orders", nil)
		if got, err := APIGatewayV2Scope(r); err != nil || got != "" {
			t.Fatalf("scope = %q, %v; want \"\"", got, err)
		}
	})
}

// decodeEvent decodes an API Gateway event the way the bootstrap's runtime
// does (lambda.WithUseNumber: json.Decoder.UseNumber) when useNumber is set,
// and as plain encoding/json otherwise.
func decodeEvent(t *testing.T, raw string, useNumber bool) events.APIGatewayV2HTTPRequestContext {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(raw))
	if useNumber {
		dec.UseNumber()
	}
	var ev events.APIGatewayV2HTTPRequest
	if err := dec.Decode(&ev); err != nil {
		t.Fatal(err)
	}
	return ev.RequestContext
}

// The reviewer's cases: what reaches the scope from an event's JSON.
func TestAPIGatewayV2ScopeFromEventJSON(t *testing.T) {
	t.Parallel()
	lambdaEvent := func(principal string) string {
		return `{"version":"2.0","requestContext":{"authorizer":{"lambda":{"principalId":` + principal + `,"tier":"gold"}}}}`
	}
	// 2^53 + 1 and 2^53 + 2: one float64 apart from nothing, distinct as ids.
	const a, b = "9007199254740993", "9007199254740994"

	t.Run("two numeric principalIds that differ below 2^53 precision are two scopes", func(t *testing.T) {
		sa, errA := scopeThroughAdapter(t, decodeEvent(t, lambdaEvent(a), true))
		sb, errB := scopeThroughAdapter(t, decodeEvent(t, lambdaEvent(b), true))
		if errA != nil || errB != nil || sa == sb || sa != "lambda:"+a || sb != "lambda:"+b {
			t.Fatalf("scopes %q (%v) and %q (%v); want lambda:%s and lambda:%s", sa, errA, sb, errB, a, b)
		}
	})
	t.Run("without UseNumber the same events are refused, not merged", func(t *testing.T) {
		for _, id := range []string{a, b} {
			s, err := scopeThroughAdapter(t, decodeEvent(t, lambdaEvent(id), false))
			if !errors.Is(err, ErrNoPrincipal) || s != "" {
				t.Fatalf("principalId %s decoded as float64: scope %q, %v; want ErrNoPrincipal", id, s, err)
			}
		}
	})
	iamEvent := func(roleID, session string) string {
		return `{"version":"2.0","requestContext":{"authorizer":{"iam":{"accountId":"123456789012",` +
			`"userArn":"arn:aws:sts::123456789012:assumed-role/OrderWriter/` + session + `","userId":"` + roleID + `:` + session + `"}}}}`
	}
	t.Run("two sessions of one assumed role are one scope", func(t *testing.T) {
		s1, err1 := scopeThroughAdapter(t, decodeEvent(t, iamEvent("AROAORDERWRITER1", "aws-go-sdk-1700000000000000000"), true))
		s2, err2 := scopeThroughAdapter(t, decodeEvent(t, iamEvent("AROAORDERWRITER1", "aws-go-sdk-1700000009999999999"), true))
		if err1 != nil || err2 != nil || s1 != s2 || s1 != "iam:AROAORDERWRITER1" {
			t.Fatalf("scopes %q (%v) and %q (%v); want one role scope", s1, err1, s2, err2)
		}
	})
	t.Run("a role deleted and recreated under the same name is another scope", func(t *testing.T) {
		old, errOld := scopeThroughAdapter(t, decodeEvent(t, iamEvent("AROAORDERWRITER1", "s"), true))
		recreated, errNew := scopeThroughAdapter(t, decodeEvent(t, iamEvent("AROAORDERWRITER2", "s"), true))
		if errOld != nil || errNew != nil || old == recreated {
			t.Fatalf("scopes %q (%v) and %q (%v); want two", old, errOld, recreated, errNew)
		}
	})
}
