package jwtauth

import (
	"log/slog"
	"net/http"

	"github.com/aws/aws-lambda-go/events"

	"github.com/parcelhq/orderservice/local/apigw"
)

// GatewayAuthorizer returns the apigw.Options.Authorize of `make local` in
// AUTH_MODE=jwt, the one every local front of the API (local/serve, the
// tests' internal/apitest) plugs in: LocalAuthorizer(keyPath, templatePath),
// its denials sent as API Gateway's own 401/403 answers and logged at debug
// level on logger. It fails as LocalAuthorizer does: when the key pair
// cannot be read or made, or the template has no route scopes.
func GatewayAuthorizer(keyPath, templatePath string, logger *slog.Logger) (func(*http.Request, string) (*events.APIGatewayV2HTTPRequestContextAuthorizerDescription, *apigw.GatewayResponse), error) {
	a, err := LocalAuthorizer(keyPath, templatePath)
	if err != nil {
		return nil, err
	}
	return func(r *http.Request, routeKey string) (*events.APIGatewayV2HTTPRequestContextAuthorizerDescription, *apigw.GatewayResponse) {
		auth, d := a.Authorize(r, routeKey)
		if d != nil {
			logger.Debug("authorizer refused the request", "route", routeKey, "status", d.Status, "reason", d.Reason)
			return nil, &apigw.GatewayResponse{Status: d.Status, Headers: d.Header(), Body: d.Body}
		}
		return auth, nil
	}, nil
}
