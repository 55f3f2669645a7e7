package deploytest_test

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// stack is what CloudFormation evaluates the template's intrinsic functions
// against: parameter values (the template's defaults for those not given),
// pseudo-parameters, and each resource's Ref as the placeholder
// "<ref:Resource>" (and "<Resource.Attr>" for GetAtt), so a test can follow
// where a value comes from.
type stack struct {
	tpl    template
	params map[string]string
}

// deployed is the template deployed with params (parameter name to value;
// omitted parameters take their Default) as stack stackID.
func deployed(tpl template, stackID string, params map[string]string) stack {
	p := map[string]string{
		"AWS::StackId": stackID, "AWS::StackName": "orderservice-dev", "AWS::AccountId": "123456789012",
		"AWS::Region": "us-east-1", "AWS::Partition": "aws", "AWS::URLSuffix": "amazonaws.com",
	}
	for name := range tpl.parameters {
		if d, ok := path(tpl.parameters, name, "Default").(string); ok {
			p[name] = d
		} else if n, ok := number(path(tpl.parameters, name, "Default")); ok {
			p[name] = strconv.FormatFloat(n, 'f', -1, 64)
		}
	}
	for k, v := range params {
		p[k] = v
	}
	return stack{tpl: tpl, params: p}
}

const testStackID = "arn:aws:cloudformation:us-east-1:123456789012:stack/orderservice-dev/51af3dc0-da77-11e4-872e-1234567db123"

// condition evaluates the template's condition name.
func (s stack) condition(t *testing.T, name string) bool {
	t.Helper()
	c, ok := path(s.tpl.root, "Conditions", name).(any)
	if !ok || c == nil {
		t.Fatalf("no condition %s", name)
	}
	b, ok := s.eval(t, c).(bool)
	if !ok {
		t.Fatalf("condition %s is not a boolean", name)
	}
	return b
}

// eval returns v with every intrinsic function CloudFormation would resolve
// resolved: strings, []any and map[string]any; a resource that the stack
// does not create (its Condition is false) cannot be referred to and fails
// the test, as it fails the deployment.
func (s stack) eval(t *testing.T, v any) any {
	t.Helper()
	switch x := v.(type) {
	case []any:
		out := make([]any, 0, len(x))
		for _, e := range x {
			r := s.eval(t, e)
			if r == noValueResult {
				continue
			}
			out = append(out, r)
		}
		return out
	case map[string]any:
		if len(x) == 1 {
			for k, arg := range x {
				if r, ok := s.intrinsic(t, k, arg); ok {
					return r
				}
			}
		}
		out := map[string]any{}
		for k, e := range x {
			if r := s.eval(t, e); r != noValueResult {
				out[k] = r
			}
		}
		return out
	}
	return v
}

// noValueResult is what AWS::NoValue evaluates to: the property is removed.
var noValueResult = &struct{ noValue bool }{true}

func (s stack) ref(t *testing.T, name string) any {
	t.Helper()
	if name == "AWS::NoValue" {
		return noValueResult
	}
	if v, ok := s.params[name]; ok {
		return v
	}
	if _, ok := s.tpl.resources[name]; ok {
		s.mustExist(t, name)
		return "<ref:" + name + ">"
	}
	t.Fatalf("Ref %s: no parameter, pseudo-parameter or resource", name)
	return nil
}

func (s stack) mustExist(t *testing.T, resource string) {
	t.Helper()
	if c, ok := path(s.tpl.resources[resource], "Condition").(string); ok && !s.condition(t, c) {
		t.Fatalf("%s is referred to but not created (condition %s is false) with %v", resource, c, s.params)
	}
}

var subVar = regexp.MustCompile(`\$\{([^}!]+)\}`)

func (s stack) intrinsic(t *testing.T, fn string, arg any) (any, bool) {
	t.Helper()
	args, _ := arg.([]any)
	str := func(v any) string {
		t.Helper()
		r, ok := s.eval(t, v).(string)
		if !ok {
			t.Fatalf("%s: %v is not a string", fn, v)
		}
		return r
	}
	list := func(v any) []any {
		t.Helper()
		r, ok := s.eval(t, v).([]any)
		if !ok {
			t.Fatalf("%s: %v is not a list", fn, v)
		}
		return r
	}
	switch fn {
	case "Ref":
		return s.ref(t, arg.(string)), true
	case "Condition":
		return s.condition(t, arg.(string)), true
	case "Fn::GetAtt":
		s.mustExist(t, args[0].(string))
		return fmt.Sprintf("<%s.%s>", args[0], args[1]), true
	case "Fn::If":
		if s.condition(t, args[0].(string)) {
			return s.eval(t, args[1]), true
		}
		return s.eval(t, args[2]), true
	case "Fn::Equals":
		return s.eval(t, args[0]) == s.eval(t, args[1]), true
	case "Fn::Not":
		return !s.eval(t, args[0]).(bool), true
	case "Fn::And", "Fn::Or":
		and := fn == "Fn::And"
		for _, a := range args {
			if s.eval(t, a).(bool) != and {
				return !and, true
			}
		}
		return and, true
	case "Fn::Split":
		var out []any
		for _, p := range strings.Split(str(args[1]), args[0].(string)) {
			out = append(out, p)
		}
		return out, true
	case "Fn::Join":
		var parts []string
		for _, p := range list(args[1]) {
			parts = append(parts, p.(string))
		}
		return strings.Join(parts, args[0].(string)), true
	case "Fn::Select":
		n, ok := number(s.eval(t, args[0]))
		i := int(n)
		if !ok || float64(i) != n {
			t.Fatalf("Fn::Select index %v", args[0])
		}
		l := list(args[1])
		if i < 0 || i >= len(l) {
			t.Fatalf("Fn::Select %d of %v", i, l)
		}
		return l[i], true
	case "Fn::Sub":
		tmpl, ok := arg.(string)
		if !ok {
			t.Fatalf("Fn::Sub with a variable map is not evaluated here: %v", arg)
		}
		return subVar.ReplaceAllStringFunc(tmpl, func(m string) string {
			name := subVar.FindStringSubmatch(m)[1]
			if res, attr, ok := strings.Cut(name, "."); ok {
				s.mustExist(t, res)
				return fmt.Sprintf("<%s.%s>", res, attr)
			}
			r, _ := s.ref(t, name).(string)
			return r
		}), true
	}
	return nil, false
}

// ruleViolations returns the AssertDescription of every assertion of the
// template's Rules that fails for the stack's parameters: what
// CloudFormation refuses the deployment with.
func (s stack) ruleViolations(t *testing.T) []string {
	t.Helper()
	rules, _ := s.tpl.root["Rules"].(map[string]any)
	var out []string
	for name, r := range rules {
		if c := path(r, "RuleCondition"); c != nil && !s.eval(t, c).(bool) {
			continue
		}
		asserts, _ := path(r, "Assertions").([]any)
		for _, a := range asserts {
			if !s.eval(t, path(a, "Assert")).(bool) {
				out = append(out, name+": "+fmt.Sprint(path(a, "AssertDescription")))
			}
		}
	}
	return out
}
