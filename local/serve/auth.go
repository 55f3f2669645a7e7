package main

import (
	"log/slog"
	"net/http"

	"github.com/aws/aws-lambda-go/events"

	"github.com/parcelhq/orderservice/local/apigw"
	"github.com/parcelhq/orderservice/local/jwtauth"
)

// jwtAuthorizer returns the apigw.Options.Authorize of `make local` in
// AUTH_MODE=jwt: jwtauth.LocalAuthorizer(keyPath, templatePath), its
// denials sent as API Gateway's own answers (and logged at debug level).
func jwtAuthorizer(keyPath, templatePath string, logger *slog.Logger) (func(*http.Request, string) (*events.APIGatewayV2HTTPRequestContextAuthorizerDescription, *apigw.GatewayResponse), error) {
	a, err := jwtauth.LocalAuthorizer(keyPath, templatePath)
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
