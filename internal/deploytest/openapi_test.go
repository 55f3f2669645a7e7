package deploytest_test

import (
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/parcelhq/orderservice/functions/createorder/app"
	"github.com/parcelhq/orderservice/internal/deploytest"
	"github.com/parcelhq/orderservice/internal/idem/idemhttp"
	"github.com/parcelhq/orderservice/internal/orders"
	"github.com/parcelhq/orderservice/internal/problem"
)

func loadOpenAPI(t *testing.T) (map[string]any, string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(deploytest.RepoRoot(), "api", "openapi.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatalf("api/openapi.yaml: %v", err)
	}
	return doc, string(b)
}

// codeSlugs returns every problem type slug the Go code defines: string
// constants named Slug* or Type* (but not problem.TypeBase) and string
// literals passed to problem.Type, in the non-test files under internal/ and
// functions/. Reading the source finds a slug added tomorrow without this
// test being told.
func codeSlugs(t *testing.T) map[string]string {
	t.Helper()
	slugs := map[string]string{} // slug -> where
	fset := token.NewFileSet()
	name := regexp.MustCompile(`^(Slug|Type)[A-Z]`)
	for _, dir := range []string{"internal", "functions"} {
		root := filepath.Join(deploytest.RepoRoot(), dir)
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
				return err
			}
			f, err := parser.ParseFile(fset, p, nil, 0)
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(deploytest.RepoRoot(), p)
			ast.Inspect(f, func(n ast.Node) bool {
				switch x := n.(type) {
				case *ast.ValueSpec:
					for i, id := range x.Names {
						if !name.MatchString(id.Name) || id.Name == "TypeBase" || i >= len(x.Values) {
							continue
						}
						if lit, ok := x.Values[i].(*ast.BasicLit); ok && lit.Kind == token.STRING {
							s, _ := strconv.Unquote(lit.Value)
							slugs[s] = rel + ":" + id.Name
						}
					}
				case *ast.CallExpr:
					sel, ok := x.Fun.(*ast.SelectorExpr)
					if !ok || sel.Sel.Name != "Type" || len(x.Args) != 1 {
						return true
					}
					if pkg, ok := sel.X.(*ast.Ident); !ok || pkg.Name != "problem" {
						return true
					}
					if lit, ok := x.Args[0].(*ast.BasicLit); ok && lit.Kind == token.STRING {
						s, _ := strconv.Unquote(lit.Value)
						slugs[s] = rel + ": problem.Type(" + lit.Value + ")"
					}
				}
				return true
			})
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return slugs
}

func TestOpenAPIPathsAreTheAppsRoutes(t *testing.T) {
	t.Parallel()
	doc, _ := loadOpenAPI(t)
	if v, _ := doc["openapi"].(string); !strings.HasPrefix(v, "3.1.") {
		t.Errorf("openapi = %q, want 3.1.x", v)
	}
	paths, _ := doc["paths"].(map[string]any)
	var got, want []string
	for p, item := range paths {
		for m := range item.(map[string]any) {
			switch m {
			case "get", "put", "post", "delete", "options", "head", "patch", "trace":
				got = append(got, strings.ToUpper(m)+" "+p)
			}
		}
	}
	for _, r := range app.Routes {
		want = append(want, r.Key())
	}
	sort.Strings(got)
	sort.Strings(want)
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("api/openapi.yaml operations %v, app.Routes %v", got, want)
	}
}

func TestOpenAPIDescribesTheIdempotencyContract(t *testing.T) {
	t.Parallel()
	doc, _ := loadOpenAPI(t)
	post := path(doc, "paths", "/orders", "post")
	params := path(doc, "components", "parameters", "IdempotencyKey")

	t.Run("POST /orders requires the Idempotency-Key header", func(t *testing.T) {
		if path(params, "name") != "Idempotency-Key" || path(params, "in") != "header" || path(params, "required") != true {
			t.Errorf("IdempotencyKey parameter = %v", params)
		}
		refs, _ := path(post, "parameters").([]any)
		found := false
		for _, p := range refs {
			if path(p, "$ref") == "#/components/parameters/IdempotencyKey" {
				found = true
			}
		}
		if !found {
			t.Error("POST /orders does not use the IdempotencyKey parameter")
		}
	})
	t.Run("the header's length bounds are those of the values idemhttp.ParseKey accepts", func(t *testing.T) {
		minLen, _ := path(params, "schema", "minLength").(int)
		maxLen, _ := path(params, "schema", "maxLength").(int)
		// The longest value: MaxKeyLen characters, each escaped, quoted.
		longest := `"` + strings.Repeat(`\"`, idemhttp.MaxKeyLen) + `"`
		if _, err := idemhttp.ParseKey(longest); err != nil {
			t.Fatalf("ParseKey refuses a quoted key of %d escaped characters: %v", idemhttp.MaxKeyLen, err)
		}
		if maxLen != len(longest) {
			t.Errorf("maxLength = %v, want %d: the longest value ParseKey accepts", path(params, "schema", "maxLength"), len(longest))
		}
		// One more escaped character is one too many: longest is the longest.
		tooLong := `"` + strings.Repeat(`\\`, idemhttp.MaxKeyLen+1) + `"`
		if _, err := idemhttp.ParseKey(tooLong); err == nil {
			t.Errorf("ParseKey accepts a %d-character value, longer than %d", len(tooLong), len(longest))
		}
		if _, err := idemhttp.ParseKey("a"); err != nil || minLen != 1 {
			t.Errorf("minLength = %v, want 1 (ParseKey(\"a\") error: %v)", path(params, "schema", "minLength"), err)
		}
	})
	t.Run("201 carries Location and the replay header the code sends", func(t *testing.T) {
		h := path(post, "responses", "201", "headers")
		if path(h, "Location") == nil || path(h, idemhttp.HeaderReplayed) == nil {
			t.Errorf("201 headers = %v, want Location and %s", h, idemhttp.HeaderReplayed)
		}
	})
	statuses := []string{"201", "400", "409", "413", "415", "422", "503"}
	for _, s := range statuses {
		t.Run("POST /orders documents status "+s, func(t *testing.T) {
			if path(post, "responses", s) == nil {
				t.Errorf("no %s response", s)
			}
		})
	}
	for _, s := range []string{"409", "503"} {
		t.Run("status "+s+" carries Retry-After", func(t *testing.T) {
			ref, _ := path(post, "responses", s, "$ref").(string)
			name := strings.TrimPrefix(ref, "#/components/responses/")
			if path(doc, "components", "responses", name, "headers", "Retry-After") == nil {
				t.Errorf("%s response %q has no Retry-After", s, ref)
			}
		})
	}
	for _, s := range []string{"200", "404"} {
		t.Run("GET /orders/{order_id} documents status "+s, func(t *testing.T) {
			if path(doc, "paths", "/orders/{order_id}", "get", "responses", s) == nil {
				t.Errorf("no %s response", s)
			}
		})
	}
	t.Run("the request example is an order the code accepts", func(t *testing.T) {
		ex := path(post, "requestBody", "content", "application/json", "example")
		b, err := json.Marshal(ex)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := orders.DecodeOrder(b); err != nil {
			t.Errorf("orders.DecodeOrder(example): %v", err)
		}
	})
}

func TestOpenAPIListsEveryProblemType(t *testing.T) {
	t.Parallel()
	_, text := loadOpenAPI(t)
	slugs := codeSlugs(t)
	for _, must := range []string{idemhttp.TypeKeyReused, idemhttp.TypeKeyMissing, orders.SlugInvalidOrder} {
		if _, ok := slugs[must]; !ok {
			t.Fatalf("the source scan missed %q; it finds nothing", must)
		}
	}
	for slug, where := range slugs {
		t.Run(slug+" is documented", func(t *testing.T) {
			if !strings.Contains(text, problem.Type(slug)) {
				t.Errorf("%s (%s) is not in api/openapi.yaml", problem.Type(slug), where)
			}
		})
	}
	t.Run("every documented problem type exists in the code", func(t *testing.T) {
		re := regexp.MustCompile(regexp.QuoteMeta(problem.TypeBase) + `([a-z0-9-]+)`)
		for _, m := range re.FindAllStringSubmatch(text, -1) {
			if _, ok := slugs[m[1]]; !ok {
				t.Errorf("api/openapi.yaml documents %s, which no code sends", m[0])
			}
		}
	})
}

// policyRow is one row of a published "status/type → stored?" table.
type policyRow struct {
	status int
	slug   string // "" for the success
	stored string // "yes", "no", or "—" for an answer that is not one of POST /orders
}

func (r policyRow) String() string { return fmt.Sprintf("%d %q stored=%s", r.status, r.slug, r.stored) }

// policyRows returns app.Policy as rows.
func policyRows() map[policyRow]bool {
	rows := map[policyRow]bool{}
	for _, a := range app.Policy {
		stored := "no"
		if a.Stored {
			stored = "yes"
		}
		rows[policyRow{a.Status, a.Type, stored}] = true
	}
	return rows
}

func TestThePolicyHasOneStoredAnswerPerTypeAndOnlyTypesTheCodeSends(t *testing.T) {
	t.Parallel()
	slugs := codeSlugs(t)
	stored := map[string]bool{}
	seen := map[[2]any]bool{}
	for _, a := range app.Policy {
		k := [2]any{a.Status, a.Type}
		if seen[k] {
			t.Errorf("app.Policy lists %d %q twice", a.Status, a.Type)
		}
		seen[k] = true
		if s, ok := stored[a.Type]; ok && s != a.Stored {
			t.Errorf("app.Policy: type %q is stored under one status and not under another", a.Type)
		}
		stored[a.Type] = a.Stored
		if _, ok := slugs[a.Type]; a.Type != "" && !ok {
			t.Errorf("app.Policy lists %q, which no code sends", a.Type)
		}
		if a.Type == "" && (a.Status >= 300 || !a.Stored) {
			t.Errorf("app.Policy: a row without a problem type must be a stored success, got %+v", a)
		}
	}
	if !stored[""] || !stored[orders.SlugInvalidOrder] || stored[idemhttp.TypeBodyMalformed] {
		t.Errorf("app.Policy = %+v: want the success and invalid-order stored, malformed-body not", app.Policy)
	}
}

func TestOpenAPIPublishesThePolicy(t *testing.T) {
	t.Parallel()
	_, text := loadOpenAPI(t)
	re := regexp.MustCompile(`(?m)^\s*\| ` + regexp.QuoteMeta(problem.TypeBase) + `([a-z0-9-]+) \| (\d{3}) \| ([^|]*?) \|`)
	matches := re.FindAllStringSubmatch(text, -1)
	if len(matches) < len(app.Policy)-1 {
		t.Fatalf("the problem types table of api/openapi.yaml has %d rows of | type | status | stored |, fewer than app.Policy's %d problem types", len(matches), len(app.Policy)-1)
	}
	want := policyRows()
	documented := map[string]bool{}
	for _, m := range matches {
		status, _ := strconv.Atoi(m[2])
		row := policyRow{status, m[1], m[3]}
		documented[row.slug] = true
		t.Run("the row of "+row.slug+" says what app.Policy says", func(t *testing.T) {
			switch {
			case row.stored == "—":
				for r := range want {
					if r.slug == row.slug {
						t.Errorf("api/openapi.yaml says %s is not an answer of POST /orders; app.Policy has %v", row.slug, r)
					}
				}
			case !want[row]:
				t.Errorf("api/openapi.yaml has %v; app.Policy has no such row", row)
			}
		})
	}
	for r := range want {
		if r.slug != "" && !documented[r.slug] {
			t.Errorf("app.Policy row %v is not in the problem types table of api/openapi.yaml", r)
		}
	}
}

func TestREADMEPublishesThePolicy(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile(filepath.Join(deploytest.RepoRoot(), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	start := strings.Index(text, "## The idempotency policy")
	if start < 0 {
		t.Fatal(`README.md has no "## The idempotency policy" section`)
	}
	section := text[start+1:]
	if end := strings.Index(section, "\n## "); end >= 0 {
		section = section[:end]
	}
	got := map[policyRow]bool{}
	inTable := false
	slugRE := regexp.MustCompile("`([a-z0-9-]+)`")
	for _, line := range strings.Split(section, "\n") {
		if strings.HasPrefix(line, "| Status | Problem type") {
			if !strings.Contains(line, "| Stored |") {
				t.Fatalf("the answer table has no Stored column: %s", line)
			}
			inTable = true
			continue
		}
		if !inTable || strings.HasPrefix(line, "|---") {
			continue
		}
		if !strings.HasPrefix(line, "|") {
			inTable = false
			continue
		}
		cells := strings.Split(line, "|")
		if len(cells) < 4 {
			t.Fatalf("README answer table row %q", line)
		}
		status, err := strconv.Atoi(strings.TrimSpace(cells[1]))
		if err != nil {
			t.Fatalf("README answer table row %q: status %v", line, err)
		}
		stored := strings.TrimSpace(cells[3])
		slugs := slugRE.FindAllStringSubmatch(cells[2], -1)
		if len(slugs) == 0 {
			got[policyRow{status, "", stored}] = true
		}
		for _, m := range slugs {
			got[policyRow{status, m[1], stored}] = true
		}
	}
	want := policyRows()
	for r := range want {
		if !got[r] {
			t.Errorf("app.Policy row %v is not in the README's answer table", r)
		}
	}
	for r := range got {
		if !want[r] {
			t.Errorf("the README's answer table has %v; app.Policy has no such row", r)
		}
	}
}
