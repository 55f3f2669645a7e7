package jwtauth

import (
	"fmt"
	"strings"

	"github.com/parcelhq/orderservice/internal/samtemplate"
)

// apiID is the template's HTTP API resource.
const apiID = "OrdersApi"

// RouteScopesFromTemplate reads the route key -> required scopes map of the
// deployed API from the SAM template at path (a relative path is looked up
// from the working directory upwards, see samtemplate.Find): for each
// operation of OrdersApi's DefinitionBody, the scopes of its security requirement in the jwt branch of its Fn::If
// (or of a plain security list). An operation "post" on "/orders" is route
// "POST /orders"; x-amazon-apigateway-any-method on "$default" is
// "$default". An operation without security is left out: it needs no token.
// It fails when the template cannot be read or has no such API.
func RouteScopesFromTemplate(path string) (map[string][]string, error) {
	path, err := samtemplate.Find(path)
	if err != nil {
		return nil, err
	}
	tpl, err := samtemplate.LoadCFN(path)
	if err != nil {
		return nil, err
	}
	paths, ok := dig(tpl, "Resources", apiID, "Properties", "DefinitionBody", "paths").(map[string]any)
	if !ok {
		return nil, fmt.Errorf("jwtauth: %s has no %s with a DefinitionBody and paths", path, apiID)
	}
	out := map[string][]string{}
	for p, item := range paths {
		ops, _ := item.(map[string]any)
		for method, op := range ops {
			sec := jwtBranch(dig(op, "security"))
			reqs, ok := sec.([]any)
			if !ok || len(reqs) == 0 {
				continue
			}
			scopes := []string{}
			for _, req := range reqs {
				m, _ := req.(map[string]any)
				for _, list := range m {
					l, _ := list.([]any)
					for _, s := range l {
						if str, ok := s.(string); ok {
							scopes = append(scopes, str)
						}
					}
				}
			}
			out[routeKey(p, method)] = scopes
		}
	}
	return out, nil
}

// jwtBranch returns the true branch of an Fn::If, or v itself.
func jwtBranch(v any) any {
	if m, ok := v.(map[string]any); ok {
		if args, ok := m["Fn::If"].([]any); ok && len(args) == 3 {
			return args[1]
		}
	}
	return v
}

func routeKey(path, method string) string {
	p := "/" + strings.TrimPrefix(path, "/")
	if p == "/$default" {
		return "$default"
	}
	if method == "x-amazon-apigateway-any-method" {
		method = "ANY"
	}
	return strings.ToUpper(method) + " " + p
}

func dig(v any, keys ...string) any {
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}
