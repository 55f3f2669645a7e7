package jwtauth

import (
	"net/http"

	"github.com/aws/aws-lambda-go/events"
)

// RouteAuthorizer is an API's JWT authorizer: a Verifier and the scopes
// each route requires. It is safe for concurrent use.
type RouteAuthorizer struct {
	v      *Verifier
	scopes map[string][]string
}

// NewRouteAuthorizer returns the authorizer of routes (route key ->
// required scopes, as RouteScopesFromTemplate reads them) with v.
func NewRouteAuthorizer(v *Verifier, routes map[string][]string) *RouteAuthorizer {
	return &RouteAuthorizer{v: v, scopes: routes}
}

// LocalAuthorizer returns the authorizer `make local` runs: the key pair at
// keyPath (made if missing, the file `make token` signs with), Issuer,
// Audience, and the route scopes of the SAM template at templatePath. It
// fails when either cannot be read.
func LocalAuthorizer(keyPath, templatePath string) (*RouteAuthorizer, error) {
	k, err := LoadOrCreateKey(keyPath)
	if err != nil {
		return nil, err
	}
	routes, err := RouteScopesFromTemplate(templatePath)
	if err != nil {
		return nil, err
	}
	return NewRouteAuthorizer(LocalVerifier(k), routes), nil
}

// Authorize checks r for the route routeKey: a route with no entry needs no
// token (nil, nil); otherwise Verify decides, with the route's scopes, and
// the result is either the authorizer description API Gateway puts in the
// event (requestContext.authorizer.jwt) or the Denial it answers with.
func (a *RouteAuthorizer) Authorize(r *http.Request, routeKey string) (*events.APIGatewayV2HTTPRequestContextAuthorizerDescription, *Denial) {
	required, secured := a.scopes[routeKey]
	if !secured {
		return nil, nil
	}
	jwt, d := a.v.Verify(r.Header.Get("Authorization"), required)
	if d != nil {
		return nil, d
	}
	return &events.APIGatewayV2HTTPRequestContextAuthorizerDescription{JWT: jwt}, nil
}
