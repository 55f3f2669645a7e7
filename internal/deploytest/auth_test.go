package deploytest_test

import (
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/parcelhq/orderservice/functions/createorder/app"
	"github.com/parcelhq/orderservice/internal/deploytest"
	"github.com/parcelhq/orderservice/internal/samtemplate"
	"github.com/parcelhq/orderservice/local/jwtauth"
)

const (
	apiID         = "OrdersApi"
	schemeName    = "OrdersJwt"
	authCondition = "AuthJwt"
	poolCondition = "CreateUserPool"
)

func ref(name string) map[string]any { return map[string]any{"Ref": name} }

var noValue = ref("AWS::NoValue")

// allScopes is every scope some route requires, sorted.
func allScopes() []string {
	var out []string
	for _, s := range app.RouteScopes() {
		for _, e := range s {
			if !slices.Contains(out, e) {
				out = append(out, e)
			}
		}
	}
	sort.Strings(out)
	return out
}

func strs(v any) []string {
	l, _ := v.([]any)
	out := make([]string, 0, len(l))
	for _, e := range l {
		s, _ := e.(string)
		out = append(out, s)
	}
	return out
}

func TestTemplateAuthParametersAndConditions(t *testing.T) {
	t.Parallel()
	tpl := loadTemplate(t)
	p := func(name, field string) any { return path(tpl.parameters, name, field) }

	t.Run("AuthMode defaults to jwt and offers exactly the modes the function knows", func(t *testing.T) {
		if p("AuthMode", "Default") != app.AuthJWT {
			t.Errorf("AuthMode default %v, want %s", p("AuthMode", "Default"), app.AuthJWT)
		}
		if got := strs(p("AuthMode", "AllowedValues")); !reflect.DeepEqual(got, []string{app.AuthJWT, app.AuthNone}) {
			t.Errorf("AuthMode AllowedValues %v", got)
		}
	})
	t.Run("with no parameters no issuer of one's own is set, so the stack makes its user pool", func(t *testing.T) {
		if p("JwtIssuer", "Default") != "" || p("JwtAudience", "Default") != "" {
			t.Errorf("JwtIssuer default %v, JwtAudience default %v, want both empty", p("JwtIssuer", "Default"), p("JwtAudience", "Default"))
		}
	})
	t.Run("the function's AUTH_MODE is the AuthMode parameter", func(t *testing.T) {
		vars, _ := path(tpl.function(t), "Environment", "Variables").(map[string]any)
		if got := refName(vars[app.EnvAuthMode]); got != "AuthMode" {
			t.Errorf("%s refers to %q", app.EnvAuthMode, got)
		}
	})
	conds, _ := tpl.root["Conditions"].(map[string]any)
	t.Run("AuthJwt holds exactly when AuthMode is jwt", func(t *testing.T) {
		want := map[string]any{"Fn::Equals": []any{ref("AuthMode"), app.AuthJWT}}
		if !reflect.DeepEqual(conds[authCondition], want) {
			t.Errorf("%s = %v, want %v", authCondition, conds[authCondition], want)
		}
	})
	t.Run("the user pool is made exactly when AuthJwt holds and no issuer is given", func(t *testing.T) {
		want := map[string]any{"Fn::And": []any{map[string]any{"Condition": authCondition}, map[string]any{"Fn::Equals": []any{ref("JwtIssuer"), ""}}}}
		if !reflect.DeepEqual(conds[poolCondition], want) {
			t.Errorf("%s = %v, want %v", poolCondition, conds[poolCondition], want)
		}
	})
	t.Run("an issuer of one's own cannot be deployed without an audience", func(t *testing.T) {
		rule := path(tpl.root, "Rules", "OwnIssuerNeedsAudience")
		want := map[string]any{"Fn::Not": []any{map[string]any{"Fn::Equals": []any{ref("JwtAudience"), ""}}}}
		asserts, _ := path(rule, "Assertions").([]any)
		if len(asserts) != 1 || !reflect.DeepEqual(path(asserts[0], "Assert"), want) ||
			!reflect.DeepEqual(path(rule, "RuleCondition"), map[string]any{"Fn::Not": []any{map[string]any{"Fn::Equals": []any{ref("JwtIssuer"), ""}}}}) {
			t.Errorf("Rules.OwnIssuerNeedsAudience = %v", rule)
		}
	})
}

func TestTemplateRoutesRequireTheAppsScopes(t *testing.T) {
	t.Parallel()
	tpl := loadTemplate(t)
	_, api := tpl.resource(t, apiID)
	body, _ := api["DefinitionBody"].(map[string]any)

	t.Run("every route needs a token with the scopes app.RouteScopes lists, as make local reads them", func(t *testing.T) {
		got, err := jwtauth.RouteScopesFromTemplate("template.yaml")
		if err != nil {
			t.Fatal(err)
		}
		if want := app.RouteScopes(); !reflect.DeepEqual(got, want) {
			t.Errorf("template routes' scopes %v, want %v", got, want)
		}
		for _, k := range app.RouteKeys() {
			if _, ok := got[k]; !ok {
				t.Errorf("route %s has no security: it would be open", k)
			}
		}
	})
	t.Run("each operation's security names the JWT scheme, and only under AuthJwt", func(t *testing.T) {
		paths, _ := body["paths"].(map[string]any)
		for p, item := range paths {
			ops, _ := item.(map[string]any)
			for method, op := range ops {
				sec, _ := path(op, "security").(map[string]any)
				args, _ := sec["Fn::If"].([]any)
				if len(args) != 3 || args[0] != authCondition || !reflect.DeepEqual(args[2], noValue) {
					t.Errorf("%s %s: security %v, want !If [%s, [...], !Ref AWS::NoValue]", method, p, path(op, "security"), authCondition)
					continue
				}
				reqs, _ := args[1].([]any)
				if len(reqs) != 1 {
					t.Errorf("%s %s: %d security requirements, want 1", method, p, len(reqs))
					continue
				}
				if _, ok := reqs[0].(map[string]any)[schemeName]; !ok {
					t.Errorf("%s %s: security %v does not name %s", method, p, reqs[0], schemeName)
				}
			}
		}
	})
	t.Run("the JWT authorizer reads the bearer token and trusts the stack's pool unless an issuer is given", func(t *testing.T) {
		schemes, _ := path(body, "components", "securitySchemes").(map[string]any)
		args, _ := schemes["Fn::If"].([]any)
		if len(args) != 3 || args[0] != authCondition || !reflect.DeepEqual(args[2], noValue) {
			t.Fatalf("securitySchemes = %v, want !If [%s, {...}, !Ref AWS::NoValue]", schemes, authCondition)
		}
		scheme := path(args[1], schemeName)
		authz := path(scheme, "x-amazon-apigateway-authorizer")
		checks := []struct {
			name      string
			got, want any
		}{
			{"scheme type", path(scheme, "type"), "oauth2"},
			{"authorizer type", path(authz, "type"), "jwt"},
			{"identity source", path(authz, "identitySource"), "$request.header.Authorization"},
			{"issuer", path(authz, "jwtConfiguration", "issuer"), map[string]any{"Fn::If": []any{poolCondition,
				map[string]any{"Fn::Sub": "https://${UserPool.ProviderURL}"}, ref("JwtIssuer")}}},
			{"audience", path(authz, "jwtConfiguration", "audience"), map[string]any{"Fn::If": []any{poolCondition,
				[]any{ref("OrdersClient")}, map[string]any{"Fn::Split": []any{",", ref("JwtAudience")}}}}},
		}
		for _, c := range checks {
			if !reflect.DeepEqual(c.got, c.want) {
				t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
			}
		}
	})
}

func TestTemplateCognitoIssuesTheScopesTheRoutesRequire(t *testing.T) {
	t.Parallel()
	tpl := loadTemplate(t)
	res := func(id, typ string) map[string]any {
		t.Helper()
		got, props := tpl.resource(t, id)
		if got != typ {
			t.Fatalf("%s is a %s, want %s", id, got, typ)
		}
		if c := path(tpl.resources[id], "Condition"); c != poolCondition {
			t.Errorf("%s has Condition %v, want %s: it must exist only when the stack makes its own pool", id, c, poolCondition)
		}
		return props
	}
	pool := res("UserPool", "AWS::Cognito::UserPool")
	domain := res("UserPoolDomain", "AWS::Cognito::UserPoolDomain")
	server := res("OrdersResourceServer", "AWS::Cognito::UserPoolResourceServer")
	client := res("OrdersClient", "AWS::Cognito::UserPoolClient")

	t.Run("the pool admits no self-service users", func(t *testing.T) {
		if path(pool, "AdminCreateUserConfig", "AllowAdminCreateUserOnly") != true {
			t.Error("AllowAdminCreateUserOnly is not true")
		}
	})
	t.Run("the pool is retained: its issuer is part of every order's owner", func(t *testing.T) {
		if path(tpl.resources["UserPool"], "DeletionPolicy") != "Retain" || path(tpl.resources["UserPool"], "UpdateReplacePolicy") != "Retain" {
			t.Error("UserPool is not retained on delete and replace")
		}
	})
	t.Run("domain, resource server and client belong to the pool", func(t *testing.T) {
		for name, props := range map[string]map[string]any{"UserPoolDomain": domain, "OrdersResourceServer": server, "OrdersClient": client} {
			if refName(props["UserPoolId"]) != "UserPool" {
				t.Errorf("%s.UserPoolId = %v", name, props["UserPoolId"])
			}
		}
	})
	t.Run("the resource server defines exactly the scopes the routes require", func(t *testing.T) {
		id, _ := server["Identifier"].(string)
		var got []string
		for _, s := range server["Scopes"].([]any) {
			name, _ := path(s, "ScopeName").(string)
			got = append(got, id+"/"+name)
		}
		sort.Strings(got)
		if !reflect.DeepEqual(got, allScopes()) {
			t.Errorf("resource server scopes %v, want %v", got, allScopes())
		}
	})
	t.Run("the client is a confidential client-credentials client for those scopes", func(t *testing.T) {
		scopes := strs(client["AllowedOAuthScopes"])
		sort.Strings(scopes)
		if !reflect.DeepEqual(strs(client["AllowedOAuthFlows"]), []string{"client_credentials"}) || client["GenerateSecret"] != true ||
			client["AllowedOAuthFlowsUserPoolClient"] != true || !reflect.DeepEqual(scopes, allScopes()) {
			t.Errorf("client flows %v, secret %v, oauth client %v, scopes %v", client["AllowedOAuthFlows"], client["GenerateSecret"],
				client["AllowedOAuthFlowsUserPoolClient"], scopes)
		}
		if dep := path(tpl.resources["OrdersClient"], "DependsOn"); dep != "OrdersResourceServer" {
			t.Errorf("OrdersClient DependsOn %v: its scopes must exist first", dep)
		}
	})
	t.Run("the token URL and client id are outputs", func(t *testing.T) {
		outputs, _ := tpl.root["Outputs"].(map[string]any)
		tokenURL, _ := path(outputs, "TokenUrl", "Value", "Fn::Sub").(string)
		if path(outputs, "TokenUrl", "Condition") != poolCondition || !strings.HasPrefix(tokenURL, "https://${UserPoolDomain}.auth.${AWS::Region}.amazoncognito.com/oauth2/token") {
			t.Errorf("TokenUrl = %v", path(outputs, "TokenUrl"))
		}
		if path(outputs, "ClientId", "Condition") != poolCondition || refName(path(outputs, "ClientId", "Value")) != "OrdersClient" {
			t.Errorf("ClientId = %v", path(outputs, "ClientId"))
		}
	})
}

func TestOpenAPIAsksForTheScopesTheRoutesRequire(t *testing.T) {
	t.Parallel()
	doc, err := samtemplate.LoadCFN(filepath.Join(deploytest.RepoRoot(), "api/openapi.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range app.Routes {
		op := path(doc, "paths", r.Path, strings.ToLower(r.Method))
		sec, _ := path(op, "security").([]any)
		var got []string
		if len(sec) == 1 {
			got = strs(path(sec[0], "orders"))
		}
		if want := app.RouteScopes()[r.Key()]; !reflect.DeepEqual(got, want) {
			t.Errorf("%s: api/openapi.yaml asks for scopes %v, the template requires %v", r.Key(), got, want)
		}
		for _, status := range []string{"401", "403"} {
			if path(op, "responses", status) == nil {
				t.Errorf("%s: api/openapi.yaml documents no %s", r.Key(), status)
			}
		}
	}
	flows := path(doc, "components", "securitySchemes", "orders", "flows", "clientCredentials", "scopes")
	m, _ := flows.(map[string]any)
	var declared []string
	for k := range m {
		declared = append(declared, k)
	}
	sort.Strings(declared)
	if !reflect.DeepEqual(declared, allScopes()) {
		t.Errorf("api/openapi.yaml declares scopes %v, want %v", declared, allScopes())
	}
}
