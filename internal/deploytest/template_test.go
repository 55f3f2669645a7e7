package deploytest_test

import (
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/parcelhq/orderservice/functions/createorder/app"
	"github.com/parcelhq/orderservice/internal/ddb"
	"github.com/parcelhq/orderservice/internal/deploytest"
	"github.com/parcelhq/orderservice/internal/idem"
	"github.com/parcelhq/orderservice/internal/orders"
	"github.com/parcelhq/orderservice/internal/samtemplate"
)

const functionID = "CreateOrderFunction" // the Makefile's build-CreateOrderFunction

// Expected DynamoDB actions per table: exactly the item actions the code
// makes (transactions are authorised per item as these actions).
var (
	ordersActions = []string{"dynamodb:GetItem", "dynamodb:PutItem"}
	idemActions   = []string{"dynamodb:DeleteItem", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"}
)

type template struct {
	*samtemplate.Template
	root       map[string]any
	resources  map[string]any
	parameters map[string]any
	globals    map[string]any
}

func loadTemplate(t *testing.T) template {
	t.Helper()
	st, err := samtemplate.Load(filepath.Join(deploytest.RepoRoot(), "template.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return template{Template: st, root: st.Root, resources: st.Resources, parameters: st.Parameters, globals: st.Globals}
}

func (tpl template) resource(t *testing.T, id string) (typ string, props map[string]any) {
	t.Helper()
	typ, props, ok := tpl.Resource(id)
	if !ok {
		t.Fatalf("template.yaml has no resource %s", id)
	}
	return typ, props
}

func (tpl template) function(t *testing.T) map[string]any {
	t.Helper()
	typ, props := tpl.resource(t, functionID)
	if typ != "AWS::Serverless::Function" {
		t.Fatalf("%s is a %s, want AWS::Serverless::Function", functionID, typ)
	}
	return props
}

// refName returns the name v refers to with a Ref, or "".
func refName(v any) string {
	m, _ := v.(map[string]any)
	s, _ := m["Ref"].(string)
	return s
}

// getAttName returns the resource and attribute of a Fn::GetAtt v, or "".
func getAttName(v any) (string, string) {
	m, _ := v.(map[string]any)
	ga, _ := m["Fn::GetAtt"].([]any)
	if len(ga) != 2 {
		return "", ""
	}
	r, _ := ga[0].(string)
	a, _ := ga[1].(string)
	return r, a
}

// number returns v as a float64 if it is a YAML number or a string holding
// one (CloudFormation accepts either for a Number parameter's properties).
func number(v any) (float64, bool) {
	switch x := v.(type) {
	case int:
		return float64(x), true
	case float64:
		return x, true
	case string:
		f, err := strconv.ParseFloat(x, 64)
		return f, err == nil
	}
	return 0, false
}

func path(v any, keys ...string) any {
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

func TestTemplateReferencesResolve(t *testing.T) {
	t.Parallel()
	tpl := loadTemplate(t)
	refs := samtemplate.References(tpl.root)
	if len(refs) == 0 {
		t.Fatal("found no references at all; the YAML reader lost the intrinsic tags")
	}
	for _, r := range refs {
		t.Run(r.Kind+" "+r.Name+" names a resource, parameter or pseudo-parameter", func(t *testing.T) {
			_, isRes := tpl.resources[r.Name]
			_, isParam := tpl.parameters[r.Name]
			switch {
			case r.Kind == "Fn::GetAtt" && !isRes:
				t.Errorf("!GetAtt %s.%s: no resource %s", r.Name, r.Attr, r.Name)
			case r.Attr != "" && !isRes:
				t.Errorf("${%s.%s}: no resource %s", r.Name, r.Attr, r.Name)
			case !isRes && !isParam && !samtemplate.PseudoParameters[r.Name]:
				t.Errorf("%s %s: no such resource, parameter or pseudo-parameter", r.Kind, r.Name)
			}
		})
	}
}

func TestTemplateFunctionIsBuiltAndRunAsTheMakefileExpects(t *testing.T) {
	t.Parallel()
	tpl := loadTemplate(t)
	fn := tpl.function(t)
	meta := path(tpl.resources[functionID], "Metadata", "BuildMethod")

	makefile, err := os.ReadFile(filepath.Join(deploytest.RepoRoot(), "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		got  any
		want any
	}{
		{"the handler is the bootstrap binary", fn["Handler"], "bootstrap"},
		{"the runtime is provided.al2023", fn["Runtime"], "provided.al2023"},
		{"sam build runs the Makefile", meta, "makefile"},
		{"the code is the repository root, where the Makefile is", fn["CodeUri"], "."},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.got != c.want {
				t.Errorf("got %v, want %v", c.got, c.want)
			}
		})
	}
	t.Run("the architecture is arm64 only, as the Makefile builds", func(t *testing.T) {
		arch, _ := fn["Architectures"].([]any)
		if len(arch) != 1 || arch[0] != "arm64" {
			t.Errorf("Architectures = %v, want [arm64]", fn["Architectures"])
		}
		if !strings.Contains(string(makefile), "GOARCH_LAMBDA ?= arm64") {
			t.Error("the Makefile no longer builds for arm64 by default")
		}
	})
	t.Run("the Makefile has the target sam build calls", func(t *testing.T) {
		if !regexp.MustCompile(`(?m)^build-` + functionID + `:`).Match(makefile) {
			t.Errorf("Makefile has no target build-%s", functionID)
		}
	})
	t.Run("the timeout is positive and below API Gateway's 30 s integration limit", func(t *testing.T) {
		to, _ := fn["Timeout"].(int)
		if to <= 0 || to >= 30 {
			t.Errorf("Timeout = %v", fn["Timeout"])
		}
	})
	t.Run("logs are JSON at the LogLevel parameter's level", func(t *testing.T) {
		if got := path(fn, "LoggingConfig", "LogFormat"); got != "JSON" {
			t.Errorf("LogFormat = %v", got)
		}
		if got := refName(path(fn, "LoggingConfig", "ApplicationLogLevel")); got != "LogLevel" {
			t.Errorf("ApplicationLogLevel refers to %q, want the LogLevel parameter", got)
		}
	})
}

func TestTemplateRoutesAreTheAppsRoutes(t *testing.T) {
	t.Parallel()
	tpl := loadTemplate(t)
	fn := tpl.function(t)
	evs, _ := fn["Events"].(map[string]any)

	want := []string{"$default"}
	for _, r := range app.Routes {
		want = append(want, r.Key())
	}
	var got []string
	for name, e := range evs {
		if path(e, "Type") != "HttpApi" {
			t.Errorf("event %s is a %v, want HttpApi", name, path(e, "Type"))
			continue
		}
		props, _ := path(e, "Properties").(map[string]any)
		method, _ := props["Method"].(string)
		p, _ := props["Path"].(string)
		switch {
		case method == "" && p == "": // SAM's way of declaring the $default route
			got = append(got, "$default")
		default:
			got = append(got, strings.ToUpper(method)+" "+p)
		}
		api := refName(props["ApiId"])
		if typ, _ := tpl.resource(t, api); typ != "AWS::Serverless::HttpApi" {
			t.Errorf("event %s: ApiId refers to %q, a %s, want an AWS::Serverless::HttpApi", name, api, typ)
		}
		if v, ok := props["PayloadFormatVersion"]; ok && v != "2.0" {
			t.Errorf("event %s: PayloadFormatVersion %v, want 2.0 (app.LambdaHandler reads 2.0 events)", name, v)
		}
	}
	sort.Strings(got)
	sort.Strings(want)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("HttpApi events declare\n  %q\nwant app.Routes plus $default:\n  %q", got, want)
	}
}

// TestTemplateAsTheLocalRunnerReadsIt checks what local/serve takes from
// template.yaml (samtemplate.HTTPAPIFunctions): the one function, its routes
// (app.RouteKeys) and its timeout and memory.
func TestTemplateAsTheLocalRunnerReadsIt(t *testing.T) {
	t.Parallel()
	tpl := loadTemplate(t)
	fns, err := tpl.HTTPAPIFunctions()
	if err != nil {
		t.Fatal(err)
	}
	if len(fns) != 1 || fns[0].ID != functionID {
		t.Fatalf("HTTP API functions %+v, want only %s", fns, functionID)
	}
	fn := tpl.function(t)
	got, want := append([]string(nil), fns[0].Routes...), app.RouteKeys()
	sort.Strings(got)
	sort.Strings(want)
	cases := []struct {
		name      string
		got, want any
	}{
		{"the routes are app.RouteKeys", strings.Join(got, ","), strings.Join(want, ",")},
		{"the timeout is the template's Timeout in seconds", fns[0].Timeout, time.Duration(fn["Timeout"].(int)) * time.Second},
		{"the memory is the template's MemorySize", fns[0].MemoryMB, fn["MemorySize"]},
		{"the handler is bootstrap", fns[0].Handler, "bootstrap"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.got != c.want {
				t.Errorf("got %v, want %v", c.got, c.want)
			}
		})
	}
}

// Not parallel: it sets the environment to ask app.ConfigFromEnv.
func TestTemplateTablesAndEnvironmentMatchTheCode(t *testing.T) {
	tpl := loadTemplate(t)
	fn := tpl.function(t)
	vars, _ := path(fn, "Environment", "Variables").(map[string]any)

	t.Run("the function gets exactly the environment variables app.ConfigFromEnv and ddb.NewClient read", func(t *testing.T) {
		want := append([]string{ddb.EndpointEnv}, app.EnvVars...)
		var got []string
		for k := range vars {
			got = append(got, k)
		}
		sort.Strings(got)
		sort.Strings(want)
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("Environment.Variables = %v, want %v", got, want)
		}
	})

	defs := app.Config{OrdersTable: "orders", IdempotencyTable: "idempotency"}.Tables()
	tables := []struct {
		env  string
		def  ddb.Table
		role string
	}{
		{app.EnvOrdersTable, orders.TableDefinition("orders"), "orders"},
		{app.EnvIdempotencyTable, idem.TableDefinition("idempotency"), "idempotency"},
	}
	t.Run("app.Config.Tables are the two tables the template declares", func(t *testing.T) {
		if len(defs) != len(tables) {
			t.Fatalf("app.Config.Tables has %d tables, the template check knows %d", len(defs), len(tables))
		}
		for i := range defs {
			if defs[i] != tables[i].def {
				t.Errorf("app.Config.Tables()[%d] = %+v, want %+v", i, defs[i], tables[i].def)
			}
		}
	})
	for _, tc := range tables {
		t.Run("the "+tc.role+" table is keyed and expires as the Go definition says", func(t *testing.T) {
			id := refName(vars[tc.env])
			typ, props := tpl.resource(t, id)
			if typ != "AWS::DynamoDB::Table" {
				t.Fatalf("%s refers to %q, a %s, want an AWS::DynamoDB::Table", tc.env, id, typ)
			}
			if props["BillingMode"] != "PAY_PER_REQUEST" {
				t.Errorf("BillingMode = %v, want PAY_PER_REQUEST", props["BillingMode"])
			}
			ks, _ := props["KeySchema"].([]any)
			if len(ks) != 1 || path(ks[0], "KeyType") != "HASH" || path(ks[0], "AttributeName") != tc.def.PartitionKey {
				t.Errorf("KeySchema = %v, want one HASH key %q", props["KeySchema"], tc.def.PartitionKey)
			}
			ads, _ := props["AttributeDefinitions"].([]any)
			if len(ads) != 1 || path(ads[0], "AttributeName") != tc.def.PartitionKey || path(ads[0], "AttributeType") != "S" {
				t.Errorf("AttributeDefinitions = %v, want %q of type S", props["AttributeDefinitions"], tc.def.PartitionKey)
			}
			ttl, hasTTL := props["TimeToLiveSpecification"]
			switch {
			case tc.def.TTLAttribute == "" && hasTTL:
				t.Errorf("TimeToLiveSpecification = %v, but the Go definition has no TTL", ttl)
			case tc.def.TTLAttribute != "" && (path(ttl, "AttributeName") != tc.def.TTLAttribute || path(ttl, "Enabled") != true):
				t.Errorf("TimeToLiveSpecification = %v, want enabled on %q", ttl, tc.def.TTLAttribute)
			}
		})
	}

	t.Run("the two table variables name two different tables", func(t *testing.T) {
		if a, b := refName(vars[app.EnvOrdersTable]), refName(vars[app.EnvIdempotencyTable]); a == b {
			t.Errorf("both refer to %q", a)
		}
	})

	// The retention reaches the function as !Sub "${IdempotencyRetentionHours}h":
	// a Number parameter whose MinValue/MaxValue CloudFormation enforces, so a
	// zero retention is refused at deploy time instead of failing every
	// Lambda init.
	const retentionParam = "IdempotencyRetentionHours"
	retention := func(t *testing.T, name string) float64 {
		t.Helper()
		n, ok := number(path(tpl.parameters, retentionParam, name))
		if !ok {
			t.Fatalf("%s.%s = %v, want a number", retentionParam, name, path(tpl.parameters, retentionParam, name))
		}
		return n
	}
	// ttlFor is the value CloudFormation gives IDEMPOTENCY_TTL when the
	// parameter is hours (a Number parameter reaches Fn::Sub as its text).
	ttlFor := func(t *testing.T, hours string) string {
		t.Helper()
		sub, ok := path(vars[app.EnvIdempotencyTTL], "Fn::Sub").(string)
		if !ok {
			t.Fatalf("%s = %v, want !Sub \"${%s}h\"", app.EnvIdempotencyTTL, vars[app.EnvIdempotencyTTL], retentionParam)
		}
		return strings.ReplaceAll(sub, "${"+retentionParam+"}", hours)
	}

	t.Run("the retention is the "+retentionParam+" Number parameter, in hours", func(t *testing.T) {
		refs := samtemplate.References(vars[app.EnvIdempotencyTTL])
		if len(refs) != 1 || refs[0] != (samtemplate.Reference{Kind: "Fn::Sub", Name: retentionParam}) {
			t.Fatalf("%s = %v refers to %v, want only ${%s}", app.EnvIdempotencyTTL, vars[app.EnvIdempotencyTTL], refs, retentionParam)
		}
		if typ := path(tpl.parameters, retentionParam, "Type"); typ != "Number" {
			t.Errorf("%s is a %v, want Number (so CloudFormation enforces MinValue and MaxValue)", retentionParam, typ)
		}
		if got := ttlFor(t, "24"); got != "24h" {
			t.Errorf("with %s=24, %s = %q, want \"24h\"", retentionParam, app.EnvIdempotencyTTL, got)
		}
		desc, _ := path(tpl.parameters, retentionParam, "Description").(string)
		if !strings.Contains(desc, "published") || !strings.Contains(desc, "retention") {
			t.Errorf("Description %q does not say it is the published retention policy", desc)
		}
	})

	t.Run("the retention default is app's default retention", func(t *testing.T) {
		def := retention(t, "Default")
		t.Setenv(app.EnvIdempotencyTTL, "")
		cfg, err := app.ConfigFromEnv()
		if err != nil {
			t.Fatal(err)
		}
		if got := time.Duration(def * float64(time.Hour)); got != cfg.Retention {
			t.Errorf("template default %v h (%v), app default %v", def, got, cfg.Retention)
		}
	})

	t.Run("the smallest retention CloudFormation allows is positive", func(t *testing.T) {
		lo, hi, def := retention(t, "MinValue"), retention(t, "MaxValue"), retention(t, "Default")
		if lo <= 0 {
			t.Errorf("MinValue %v h: CloudFormation would accept a retention every Lambda init refuses", lo)
		}
		if !(lo <= def && def <= hi) {
			t.Errorf("Default %v is outside [MinValue %v, MaxValue %v]", def, lo, hi)
		}
	})

	t.Run("every retention CloudFormation allows becomes an IDEMPOTENCY_TTL app accepts", func(t *testing.T) {
		lo, hi := retention(t, "MinValue"), retention(t, "MaxValue")
		for _, h := range []float64{lo, lo + 0.5, retention(t, "Default"), hi} {
			text := strconv.FormatFloat(h, 'f', -1, 64)
			t.Setenv(app.EnvIdempotencyTTL, ttlFor(t, text))
			cfg, err := app.ConfigFromEnv()
			if err != nil {
				t.Errorf("%s=%s: %v", retentionParam, text, err)
				continue
			}
			if want := time.Duration(h * float64(time.Hour)); cfg.Retention != want {
				t.Errorf("%s=%s: retention %v, want %v", retentionParam, text, cfg.Retention, want)
			}
		}
	})

	t.Run("the deployed function talks to AWS's DynamoDB endpoint", func(t *testing.T) {
		if v, ok := vars[ddb.EndpointEnv]; !ok || v != "" {
			t.Errorf("%s = %v; it must be declared (so sam local --env-vars can set it) and empty", ddb.EndpointEnv, v)
		}
	})

	t.Run("every allowed idempotency mode is one app accepts, and the default is app's", func(t *testing.T) {
		if p := refName(vars[app.EnvIdempotencyMode]); p != "IdempotencyMode" {
			t.Fatalf("%s refers to %q, want the IdempotencyMode parameter", app.EnvIdempotencyMode, p)
		}
		allowed, _ := path(tpl.parameters, "IdempotencyMode", "AllowedValues").([]any)
		if len(allowed) == 0 {
			t.Fatal("IdempotencyMode has no AllowedValues")
		}
		for _, v := range allowed {
			t.Setenv(app.EnvIdempotencyMode, v.(string))
			if _, err := app.ConfigFromEnv(); err != nil {
				t.Errorf("IdempotencyMode allows %v: %v", v, err)
			}
		}
		t.Setenv(app.EnvIdempotencyMode, "")
		def, _ := app.ConfigFromEnv()
		t.Setenv(app.EnvIdempotencyMode, path(tpl.parameters, "IdempotencyMode", "Default").(string))
		got, err := app.ConfigFromEnv()
		if err != nil || got.Mode != def.Mode {
			t.Errorf("template default mode %v (%v), app default %v", got.Mode, err, def.Mode)
		}
	})

	t.Run("every allowed log level is one the logger understands", func(t *testing.T) {
		if p := refName(vars[app.EnvLogLevel]); p != "LogLevel" {
			t.Fatalf("%s refers to %q, want the LogLevel parameter", app.EnvLogLevel, p)
		}
		allowed, _ := path(tpl.parameters, "LogLevel", "AllowedValues").([]any)
		if len(allowed) == 0 {
			t.Fatal("LogLevel has no AllowedValues")
		}
		for _, v := range allowed {
			var l slog.Level
			if err := l.UnmarshalText([]byte(v.(string))); err != nil {
				t.Errorf("LogLevel allows %v: %v", v, err)
			}
		}
	})
}

func TestTemplatePolicyIsLeastPrivilege(t *testing.T) {
	t.Parallel()
	tpl := loadTemplate(t)
	fn := tpl.function(t)
	vars, _ := path(fn, "Environment", "Variables").(map[string]any)
	want := map[string][]string{
		refName(vars[app.EnvOrdersTable]):      ordersActions,
		refName(vars[app.EnvIdempotencyTable]): idemActions,
	}

	policies, _ := fn["Policies"].([]any)
	if len(policies) == 0 {
		t.Fatal("the function has no Policies")
	}
	got := map[string][]string{}
	for i, p := range policies {
		doc, ok := p.(map[string]any)
		stmts, _ := doc["Statement"].([]any)
		if !ok || len(stmts) == 0 {
			t.Errorf("policy %d is not an inline policy document (managed policies and SAM policy templates grant more than the code needs): %v", i, p)
			continue
		}
		for j, s := range stmts {
			if path(s, "Effect") != "Allow" {
				continue
			}
			var actions []string
			switch a := path(s, "Action").(type) {
			case string:
				actions = []string{a}
			case []any:
				for _, x := range a {
					actions = append(actions, x.(string))
				}
			}
			resources := path(s, "Resource")
			if one, ok := resources.([]any); ok && len(one) == 1 {
				resources = one[0]
			}
			table, attr := getAttName(resources)
			if attr != "Arn" || want[table] == nil {
				t.Errorf("statement %d.%d grants on %v: only !GetAtt <table>.Arn of the orders or idempotency table is allowed (no indexes, streams or wildcards)", i, j, resources)
				continue
			}
			for _, a := range actions {
				if strings.Contains(a, "*") {
					t.Errorf("statement %d.%d: wildcard action %q", i, j, a)
				}
			}
			got[table] = append(got[table], actions...)
		}
	}
	for table, acts := range want {
		t.Run("the function may use exactly the actions the code makes on "+table, func(t *testing.T) {
			g := append([]string(nil), got[table]...)
			sort.Strings(g)
			if strings.Join(g, ",") != strings.Join(acts, ",") {
				t.Errorf("actions on %s = %v, want %v", table, g, acts)
			}
		})
	}
}

func TestTemplateOutputs(t *testing.T) {
	t.Parallel()
	tpl := loadTemplate(t)
	fn := tpl.function(t)
	vars, _ := path(fn, "Environment", "Variables").(map[string]any)
	outputs, _ := tpl.root["Outputs"].(map[string]any)

	cases := []struct{ name, output, ref string }{
		{"the orders table's name is an output", "OrdersTableName", refName(vars[app.EnvOrdersTable])},
		{"the idempotency table's name is an output", "IdempotencyTableName", refName(vars[app.EnvIdempotencyTable])},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := refName(path(outputs, c.output, "Value")); got != c.ref {
				t.Errorf("Outputs.%s refers to %q, want %q", c.output, got, c.ref)
			}
		})
	}
	t.Run("the API URL is an output built from the HTTP API", func(t *testing.T) {
		refs := samtemplate.References(path(outputs, "ApiUrl", "Value"))
		var apiRef bool
		for _, r := range refs {
			if samtemplate.PseudoParameters[r.Name] {
				continue
			}
			if typ, _ := tpl.resource(t, r.Name); typ == "AWS::Serverless::HttpApi" {
				apiRef = true
			} else {
				t.Errorf("ApiUrl refers to %s, a %s", r.Name, typ)
			}
		}
		if !apiRef {
			t.Error("ApiUrl does not refer to the HTTP API")
		}
	})
}
