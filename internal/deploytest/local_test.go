package deploytest_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/parcelhq/orderservice/internal/ddb"
	"github.com/parcelhq/orderservice/internal/deploytest"
)

// TestLocalEnvFileReachesTheFunction checks local/env.json against the
// template: `sam local --env-vars` silently ignores a variable the template
// does not declare for the function, and a function id it does not know.
func TestLocalEnvFileReachesTheFunction(t *testing.T) {
	t.Parallel()
	tpl := loadTemplate(t)
	vars, _ := path(tpl.function(t), "Environment", "Variables").(map[string]any)

	b, err := os.ReadFile(filepath.Join(deploytest.RepoRoot(), "local", "env.json"))
	if err != nil {
		t.Fatal(err)
	}
	var env map[string]map[string]string
	if err := json.Unmarshal(b, &env); err != nil {
		t.Fatalf("local/env.json: %v", err)
	}
	t.Run("it configures the function by its logical id", func(t *testing.T) {
		for id := range env {
			if id != functionID && id != "Parameters" {
				t.Errorf("local/env.json configures %q, which is not %s", id, functionID)
			}
		}
		if env[functionID] == nil {
			t.Fatalf("local/env.json does not configure %s", functionID)
		}
	})
	t.Run("every variable it sets is declared in the template, so SAM passes it on", func(t *testing.T) {
		for k := range env[functionID] {
			if _, ok := vars[k]; !ok {
				t.Errorf("%s is set in local/env.json but not declared in template.yaml; sam local would drop it", k)
			}
		}
	})
	t.Run("it points the function at DynamoDB Local on the Docker host", func(t *testing.T) {
		if got := env[functionID][ddb.EndpointEnv]; !strings.HasPrefix(got, "http://host.docker.internal:") {
			t.Errorf("%s = %q", ddb.EndpointEnv, got)
		}
	})
}

// TestSAMConfig checks samconfig.toml for what `sam deploy` and `sam local`
// need from it (a TOML parser would be a new module; these are line checks).
func TestSAMConfig(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile(filepath.Join(deploytest.RepoRoot(), "samconfig.toml"))
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	cases := []struct{ name, pattern string }{
		{"it is version 0.1", `(?m)^version = 0\.1$`},
		{"deploys may create the function's IAM role", `(?m)^capabilities = "CAPABILITY_IAM"$`},
		{"SAM manages the artifact bucket", `(?m)^resolve_s3 = true$`},
		{"a change set is confirmed before it is applied", `(?m)^confirm_changeset = true$`},
		{"the stack has a name", `(?m)^stack_name = "[A-Za-z][A-Za-z0-9-]*"$`},
		{"builds are cached and parallel", `(?s)\[default\.build\.parameters\].*cached = true.*parallel = true`},
		{"sam local start-api uses local/env.json on port 3000", `(?s)\[default\.local_start_api\.parameters\][^\[]*env_vars = "local/env\.json"[^\[]*port = 3000`},
		{"sam local start-api keeps warm containers", `(?s)\[default\.local_start_api\.parameters\][^\[]*warm_containers = "(EAGER|LAZY)"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if !regexp.MustCompile(c.pattern).MatchString(text) {
				t.Errorf("samconfig.toml does not match %s", c.pattern)
			}
		})
	}
	t.Run("no region is hard-coded", func(t *testing.T) {
		if regexp.MustCompile(`(?m)^region\s*=`).MatchString(text) {
			t.Error("samconfig.toml sets region; leave it to --region / AWS_REGION / the profile")
		}
	})
	t.Run("every parameter override names a template parameter", func(t *testing.T) {
		tpl := loadTemplate(t)
		m := regexp.MustCompile(`(?m)^parameter_overrides = "(.*)"$`).FindStringSubmatch(text)
		if m == nil {
			t.Fatal("no parameter_overrides")
		}
		for _, kv := range regexp.MustCompile(`([A-Za-z0-9]+)=`).FindAllStringSubmatch(m[1], -1) {
			if _, ok := tpl.parameters[kv[1]]; !ok {
				t.Errorf("parameter_overrides sets %s, which template.yaml does not declare", kv[1])
			}
		}
	})
}
