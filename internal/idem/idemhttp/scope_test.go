package idemhttp

import (
	"context"
	"errors"
	"net/http"
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
		{"an IAM caller is scoped by its ARN", iam(events.APIGatewayV2HTTPRequestContextAuthorizerIAMDescription{
			UserARN: "arn:aws:sts::123456789012:assumed-role/Shop/session-1", AccountID: "123456789012", UserID: "AROA:session-1"}),
			"iam:arn:aws:sts::123456789012:assumed-role/Shop/session-1"},
		{"an IAM caller without ARN is scoped by account and user id", iam(events.APIGatewayV2HTTPRequestContextAuthorizerIAMDescription{
			AccountID: "123456789012", UserID: "AIDAEXAMPLE"}), "iam:123456789012:AIDAEXAMPLE"},
		{"a Cognito identity is scoped by identity, not by the shared role", iam(events.APIGatewayV2HTTPRequestContextAuthorizerIAMDescription{
			UserARN:         "arn:aws:sts::123456789012:assumed-role/Cognito_Auth/CognitoIdentityCredentials",
			CognitoIdentity: events.APIGatewayV2HTTPRequestContextAuthorizerCognitoIdentity{IdentityPoolID: "us-east-1:pool", IdentityID: "us-east-1:id-7"}}),
			"cognito:us-east-1:pool|us-east-1:id-7"},
		{"a Lambda authorizer caller is scoped by principalId", lambda(map[string]any{"principalId": "shop-9", "tier": "gold"}), "lambda:shop-9"},
		{"a Lambda authorizer caller without principalId is scoped by sub", lambda(map[string]any{"sub": "u-1"}), "lambda:u-1"},
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
		{"an IAM caller without any identity", iam(events.APIGatewayV2HTTPRequestContextAuthorizerIAMDescription{})},
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
