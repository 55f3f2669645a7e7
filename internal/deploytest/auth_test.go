package deploytest_test

import (
	"os"
	"path/filepath"
	"reflect"
	"regexp"
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
		for _, name := range []string{"JwtIssuer", "JwtAudience", "AdditionalAudiences"} {
			if p(name, "Default") != "" {
				t.Errorf("%s default %v, want empty", name, p(name, "Default"))
			}
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

// jwtAuthorizer returns the JWT authorizer's configuration in the API's
// definition as deployed by st.
func jwtAuthorizer(t *testing.T, st stack) map[string]any {
	t.Helper()
	_, api := st.tpl.resource(t, apiID)
	body, _ := st.eval(t, api["DefinitionBody"]).(map[string]any)
	cfg, _ := path(body, "components", "securitySchemes", schemeName, "x-amazon-apigateway-authorizer", "jwtConfiguration").(map[string]any)
	if cfg == nil {
		t.Fatalf("no JWT authorizer in the API deployed with %v", st.params)
	}
	return cfg
}

func TestTemplateAudiencesAdmitEveryCaller(t *testing.T) {
	t.Parallel()
	tpl := loadTemplate(t)
	const idp = "https://idp.example/"
	cases := []struct {
		name     string
		params   map[string]string
		issuer   string
		audience []string
	}{
		{"with no parameters the API trusts the stack's pool and its one client", nil,
			"https://<UserPool.ProviderURL>", []string{"<ref:OrdersClient>"}},
		{"AdditionalAudiences admits more app clients of the stack's pool", map[string]string{"AdditionalAudiences": "3q1second,7x9third"},
			"https://<UserPool.ProviderURL>", []string{"<ref:OrdersClient>", "3q1second", "7x9third"}},
		{"an issuer of one's own is trusted for exactly JwtAudience", map[string]string{"JwtIssuer": idp, "JwtAudience": "api,batch"},
			idp, []string{"api", "batch"}},
		{"AdditionalAudiences adds to JwtAudience", map[string]string{"JwtIssuer": idp, "JwtAudience": "api", "AdditionalAudiences": "batch"},
			idp, []string{"api", "batch"}},
	}
	outputs, _ := tpl.root["Outputs"].(map[string]any)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st := deployed(tpl, testStackID, c.params)
			if v := st.ruleViolations(t); len(v) != 0 {
				t.Fatalf("CloudFormation would refuse %v: %v", c.params, v)
			}
			cfg := jwtAuthorizer(t, st)
			if got := cfg["issuer"]; got != c.issuer {
				t.Errorf("issuer %v, want %v", got, c.issuer)
			}
			got := strs(cfg["audience"])
			if !reflect.DeepEqual(got, c.audience) {
				t.Errorf("audience %q, want %q", got, c.audience)
			}
			// What a later stack passes as JwtIssuer and JwtAudience to keep
			// these callers: exactly what this one trusts.
			if out := st.eval(t, path(outputs, "JwtAudience", "Value")); out != strings.Join(c.audience, ",") {
				t.Errorf("output JwtAudience %q, want %q", out, strings.Join(c.audience, ","))
			}
			if out := st.eval(t, path(outputs, "JwtIssuer", "Value")); out != c.issuer {
				t.Errorf("output JwtIssuer %q, want %q", out, c.issuer)
			}
		})
	}
	t.Run("a later stack given this stack's JwtIssuer and JwtAudience outputs trusts the same callers", func(t *testing.T) {
		old := deployed(tpl, testStackID, map[string]string{"AdditionalAudiences": "3q1second"})
		params := map[string]string{
			"JwtIssuer":   "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_Old",
			"JwtAudience": strings.ReplaceAll(old.eval(t, path(outputs, "JwtAudience", "Value")).(string), "<ref:OrdersClient>", "3q1first"),
		}
		adopter := deployed(tpl, testStackID, params)
		if v := adopter.ruleViolations(t); len(v) != 0 {
			t.Fatalf("CloudFormation would refuse %v: %v", params, v)
		}
		if adopter.condition(t, poolCondition) {
			t.Error("the adopting stack makes a pool of its own")
		}
		if got := strs(jwtAuthorizer(t, adopter)["audience"]); !reflect.DeepEqual(got, []string{"3q1first", "3q1second"}) {
			t.Errorf("audience %q", got)
		}
	})
}

func TestTemplateRulesRefuseAmbiguousAuthParameters(t *testing.T) {
	t.Parallel()
	tpl := loadTemplate(t)
	const idp = "https://idp.example/"
	cases := []struct {
		name   string
		params map[string]string
		refuse bool
	}{
		{"no parameters", nil, false},
		{"more clients of the stack's pool", map[string]string{"AdditionalAudiences": "c2"}, false},
		{"an issuer with its audience", map[string]string{"JwtIssuer": idp, "JwtAudience": "a"}, false},
		{"an issuer without an audience", map[string]string{"JwtIssuer": idp}, true},
		{"an issuer with only AdditionalAudiences", map[string]string{"JwtIssuer": idp, "AdditionalAudiences": "a"}, true},
		{"JwtAudience for the stack's pool (AdditionalAudiences is for that)", map[string]string{"JwtAudience": "a"}, true},
		{"an open API with an issuer", map[string]string{"AuthMode": app.AuthNone, "JwtIssuer": idp, "JwtAudience": "a"}, true},
		{"an open API with more audiences", map[string]string{"AuthMode": app.AuthNone, "AdditionalAudiences": "a"}, true},
		{"an open API", map[string]string{"AuthMode": app.AuthNone}, false},
	}
	for _, c := range cases {
		verb := "is deployed"
		if c.refuse {
			verb = "is refused"
		}
		t.Run(c.name+" "+verb, func(t *testing.T) {
			v := deployed(tpl, testStackID, c.params).ruleViolations(t)
			if (len(v) != 0) != c.refuse {
				t.Errorf("%v: violations %v", c.params, v)
			}
		})
	}
}

func TestTemplateAudienceListsAreSplitExactly(t *testing.T) {
	t.Parallel()
	tpl := loadTemplate(t)
	for _, name := range []string{"JwtAudience", "AdditionalAudiences"} {
		pattern, _ := path(tpl.parameters, name, "AllowedPattern").(string)
		re, err := regexp.Compile(pattern)
		if pattern == "" || err != nil {
			t.Fatalf("%s AllowedPattern %q: %v", name, pattern, err)
		}
		for _, v := range []string{"", "3q1client", "a,b", "https://api.example.com/,batch"} {
			t.Run(name+"="+v+" is accepted", func(t *testing.T) {
				if !re.MatchString(v) {
					t.Errorf("%q refused", v)
				}
			})
		}
		// Each of these would split into an audience no token carries
		// (" b", "") instead of being refused at deploy time.
		for _, v := range []string{"a, b", " a", "a ", "a,", ",a", "a,,b", ","} {
			t.Run(name+"="+v+" is refused", func(t *testing.T) {
				if re.MatchString(v) {
					t.Errorf("%q accepted", v)
				}
			})
		}
	}
}

// callerResources are what an order's owner depends on when the stack makes
// its own pool: the issuer (pool), the caller (client), the scopes it is
// granted (resource server) and where it gets its tokens (domain).
var callerResources = []string{"UserPool", "UserPoolDomain", "OrdersResourceServer", "OrdersClient"}

func TestTemplateIdentityProviderOutlivesTheStack(t *testing.T) {
	t.Parallel()
	tpl := loadTemplate(t)
	for _, id := range callerResources {
		t.Run(id+" is retained on delete and on replacement, as the orders table is", func(t *testing.T) {
			r := tpl.resources[id]
			if path(r, "DeletionPolicy") != "Retain" || path(r, "UpdateReplacePolicy") != "Retain" {
				t.Errorf("DeletionPolicy %v, UpdateReplacePolicy %v", path(r, "DeletionPolicy"), path(r, "UpdateReplacePolicy"))
			}
		})
	}
	t.Run("the orders table is retained too", func(t *testing.T) {
		r := tpl.resources["OrdersTable"]
		if path(r, "DeletionPolicy") != "Retain" || path(r, "UpdateReplacePolicy") != "Retain" {
			t.Error("OrdersTable is not retained")
		}
	})

	_, domain := tpl.resource(t, "UserPoolDomain")
	// Cognito's rules for a prefix domain: lower-case letters, digits and
	// hyphens, not starting or ending with a hyphen, at most 63 characters,
	// and none of the reserved words.
	valid := regexp.MustCompile(`^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$`)
	reserved := regexp.MustCompile(`aws|amazon|cognito`)
	stackIDs := []string{
		testStackID,
		"arn:aws:cloudformation:eu-west-1:123456789012:stack/orderservice-prod/9f1e2d3c-1a2b-11ef-8c4d-0a1b2c3d4e5f",
		"arn:aws-cn:cloudformation:cn-north-1:123456789012:stack/x/0a0b0c0d-1a2b-11ef-8c4d-0a1b2c3d4e5f",
	}
	t.Run("the domain prefix is valid for Cognito for every Stage and publishes no account id", func(t *testing.T) {
		for _, stage := range []string{"dev", "aws-test", "amazon", "cognito-x"} {
			for _, id := range stackIDs {
				prefix, _ := deployed(tpl, id, map[string]string{"Stage": stage}).eval(t, domain["Domain"]).(string)
				if !valid.MatchString(prefix) || reserved.MatchString(prefix) || strings.Contains(prefix, "123456789012") {
					t.Errorf("Stage %s, stack %s: domain prefix %q", stage, id, prefix)
				}
			}
		}
	})
	t.Run("every stack gets a prefix of its own, so a retained domain never blocks the next stack", func(t *testing.T) {
		seen := map[string]string{}
		for _, id := range stackIDs {
			prefix := deployed(tpl, id, nil).eval(t, domain["Domain"]).(string)
			if other, dup := seen[prefix]; dup {
				t.Errorf("stacks %s and %s share the domain prefix %q", other, id, prefix)
			}
			seen[prefix] = id
		}
	})
	t.Run("the token URL output is that domain's token endpoint", func(t *testing.T) {
		st := deployed(tpl, testStackID, nil)
		got := st.eval(t, path(tpl.root, "Outputs", "TokenUrl", "Value"))
		if got != "https://<ref:UserPoolDomain>.auth.us-east-1.amazoncognito.com/oauth2/token" {
			t.Errorf("TokenUrl = %v", got)
		}
	})
}

// TestREADMEDocumentsTheStack checks the README's deploy section against
// the template: every parameter is named, and what it says is retained is.
func TestREADMEDocumentsTheStack(t *testing.T) {
	t.Parallel()
	tpl := loadTemplate(t)
	b, err := os.ReadFile(filepath.Join(deploytest.RepoRoot(), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	_, deploy, _ := strings.Cut(readme, "\n## Deploy")
	deploy, _, _ = strings.Cut(deploy, "\n## ")
	for name := range tpl.parameters {
		t.Run("the deploy section names the parameter "+name, func(t *testing.T) {
			if !strings.Contains(deploy, "`"+name) {
				t.Errorf("README's Deploy section does not mention `%s`", name)
			}
		})
	}
	t.Run("the deploy section says the pool, its domain, resource server and client are retained", func(t *testing.T) {
		m := regexp.MustCompile(`(?s)\*\*Retained\*\*(.*?)\n\n`).FindStringSubmatch(deploy)
		if m == nil {
			t.Fatal("no **Retained** paragraph in the Deploy section")
		}
		retained := strings.Join(strings.Fields(m[1]), " ")
		for _, phrase := range []string{"orders table", "user pool", "domain", "resource server", "app client"} {
			if !strings.Contains(retained, phrase) {
				t.Errorf("the **Retained** paragraph does not list the %s", phrase)
			}
		}
		for _, id := range append([]string{"OrdersTable"}, callerResources...) {
			if path(tpl.resources[id], "DeletionPolicy") != "Retain" {
				t.Errorf("README says %s is retained; the template does not retain it", id)
			}
		}
	})
}
