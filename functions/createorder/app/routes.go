package app

// Route is one route of the order API as API Gateway (HTTP API) sees it: a
// method and a path template whose {name} segments are path parameters.
type Route struct {
	Method string
	Path   string
}

// Key returns the route key API Gateway puts in the event ("POST /orders").
func (r Route) Key() string { return r.Method + " " + r.Path }

// The routes the function serves.
var (
	RouteCreateOrder = Route{Method: "POST", Path: "/orders"}
	RouteGetOrder    = Route{Method: "GET", Path: "/orders/{order_id}"}
)

// Routes are the routes the function serves. template.yaml declares exactly
// these (plus a $default route, so that any other request reaches the
// function and gets a problem+json 404/405 instead of API Gateway's own).
var Routes = []Route{RouteCreateOrder, RouteGetOrder}

// RouteKeys returns the route keys of the API as API Gateway names them:
// those of Routes, then "$default", the catch-all route template.yaml adds.
func RouteKeys() []string {
	keys := make([]string, 0, len(Routes)+1)
	for _, r := range Routes {
		keys = append(keys, r.Key())
	}
	return append(keys, "$default")
}

// The OAuth scopes of the API (a Cognito resource server "orders" with the
// scopes "create" and "read" in the default stack).
const (
	ScopeCreateOrders = "orders/create"
	ScopeReadOrders   = "orders/read"
)

// RouteScopes returns, for every route key of RouteKeys, the scopes the JWT
// authorizer requires of a token on it: at least one of them must be in the
// token's scope claim; an empty list means any valid token. template.yaml
// declares exactly these (internal/deploytest checks), and `make local`
// reads them from there.
func RouteScopes() map[string][]string {
	return map[string][]string{
		RouteCreateOrder.Key(): {ScopeCreateOrders},
		RouteGetOrder.Key():    {ScopeReadOrders},
		"$default":             {},
	}
}
