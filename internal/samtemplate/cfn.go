// Package samtemplate reads the project's SAM template (template.yaml) as
// CloudFormation YAML, and answers what the local runner needs from it: which
// functions the HTTP API invokes, on which routes, with which timeout and
// memory. internal/deploytest checks the same file with the same reader, so
// what runs locally and what is checked cannot read the template differently.
//
// The reader turns the short-form intrinsic function tags (!Ref, !GetAtt,
// !Sub, ...) into their long forms ({"Ref": ...}, {"Fn::GetAtt": [...]}, ...),
// so a caller sees one shape whichever form the template uses.
package samtemplate

import (
	"fmt"
	"os"
	"regexp"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// LoadCFN reads the CloudFormation YAML file at path into maps, slices and
// scalars, with intrinsic function tags in long form. It fails on YAML errors
// and on a tag that is not a CloudFormation intrinsic function.
func LoadCFN(path string) (map[string]any, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(doc.Content) != 1 {
		return nil, fmt.Errorf("%s: want one YAML document", path)
	}
	v, err := convert(doc.Content[0])
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("%s: top level is not a mapping", path)
	}
	return m, nil
}

// intrinsics maps each short-form tag to its long-form key.
var intrinsics = map[string]string{
	"!Ref": "Ref", "!Condition": "Condition",
	"!GetAtt": "Fn::GetAtt", "!Sub": "Fn::Sub", "!Join": "Fn::Join", "!Select": "Fn::Select",
	"!Split": "Fn::Split", "!If": "Fn::If", "!Equals": "Fn::Equals", "!Not": "Fn::Not",
	"!And": "Fn::And", "!Or": "Fn::Or", "!FindInMap": "Fn::FindInMap", "!Base64": "Fn::Base64",
	"!Cidr": "Fn::Cidr", "!ImportValue": "Fn::ImportValue", "!GetAZs": "Fn::GetAZs",
	"!Transform": "Fn::Transform", "!Length": "Fn::Length", "!ToJsonString": "Fn::ToJsonString",
}

func convert(n *yaml.Node) (any, error) {
	if n.Kind == yaml.AliasNode {
		return convert(n.Alias)
	}
	if strings.HasPrefix(n.Tag, "!") && !strings.HasPrefix(n.Tag, "!!") {
		key, ok := intrinsics[n.Tag]
		if !ok {
			return nil, fmt.Errorf("line %d: unknown tag %s", n.Line, n.Tag)
		}
		plain := *n
		plain.Tag = ""
		if n.Kind == yaml.ScalarNode {
			plain.Tag = "!!str"
		}
		v, err := convert(&plain)
		if err != nil {
			return nil, err
		}
		if key == "Fn::GetAtt" {
			if s, ok := v.(string); ok { // !GetAtt Res.Attr
				res, attr, _ := strings.Cut(s, ".")
				v = []any{res, attr}
			}
		}
		return map[string]any{key: v}, nil
	}
	switch n.Kind {
	case yaml.MappingNode:
		m := make(map[string]any, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			v, err := convert(n.Content[i+1])
			if err != nil {
				return nil, err
			}
			m[n.Content[i].Value] = v
		}
		return m, nil
	case yaml.SequenceNode:
		s := make([]any, 0, len(n.Content))
		for _, c := range n.Content {
			v, err := convert(c)
			if err != nil {
				return nil, err
			}
			s = append(s, v)
		}
		return s, nil
	default:
		var v any
		if err := n.Decode(&v); err != nil {
			return nil, fmt.Errorf("line %d: %w", n.Line, err)
		}
		return v, nil
	}
}

// Reference is one name an intrinsic function refers to: Kind is "Ref",
// "Fn::GetAtt" or "Fn::Sub"; Attr is the attribute of a GetAtt (or of a
// ${Res.Attr} in a Sub), empty otherwise.
type Reference struct {
	Kind, Name, Attr string
}

var subVar = regexp.MustCompile(`\$\{([^}]*)\}`)

// References returns every name that Ref, Fn::GetAtt and Fn::Sub in v refer
// to, sorted. Variables that a Fn::Sub defines in its own map, and ${!Literal}
// escapes, are not references.
func References(v any) []Reference {
	var out []Reference
	var walk func(any)
	walk = func(v any) {
		switch x := v.(type) {
		case []any:
			for _, e := range x {
				walk(e)
			}
		case map[string]any:
			if len(x) == 1 {
				if name, ok := x["Ref"].(string); ok {
					out = append(out, Reference{Kind: "Ref", Name: name})
					return
				}
				if ga, ok := x["Fn::GetAtt"].([]any); ok && len(ga) == 2 {
					name, _ := ga[0].(string)
					attr, _ := ga[1].(string)
					out = append(out, Reference{Kind: "Fn::GetAtt", Name: name, Attr: attr})
					return
				}
				if sub, ok := x["Fn::Sub"]; ok {
					out = append(out, subReferences(sub)...)
					if s, ok := sub.([]any); ok && len(s) == 2 {
						walk(s[1])
					}
					return
				}
			}
			for _, e := range x {
				walk(e)
			}
		}
	}
	walk(v)
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Name != b.Name {
			return a.Name < b.Name
		}
		return a.Kind+a.Attr < b.Kind+b.Attr
	})
	return out
}

func subReferences(sub any) []Reference {
	var tmpl string
	local := map[string]bool{}
	switch s := sub.(type) {
	case string:
		tmpl = s
	case []any:
		if len(s) > 0 {
			tmpl, _ = s[0].(string)
		}
		if len(s) > 1 {
			if vars, ok := s[1].(map[string]any); ok {
				for k := range vars {
					local[k] = true
				}
			}
		}
	}
	var out []Reference
	for _, m := range subVar.FindAllStringSubmatch(tmpl, -1) {
		name := strings.TrimSpace(m[1])
		if strings.HasPrefix(name, "!") || local[name] {
			continue
		}
		res, attr, _ := strings.Cut(name, ".")
		if strings.HasPrefix(name, "AWS::") {
			res, attr = name, ""
		}
		out = append(out, Reference{Kind: "Fn::Sub", Name: res, Attr: attr})
	}
	return out
}

// PseudoParameters are the names CloudFormation defines in every template.
var PseudoParameters = map[string]bool{
	"AWS::AccountId": true, "AWS::NotificationARNs": true, "AWS::NoValue": true, "AWS::Partition": true,
	"AWS::Region": true, "AWS::StackId": true, "AWS::StackName": true, "AWS::URLSuffix": true,
}

// MergeGlobals returns props with the template's Globals for its type (the
// section name after "AWS::Serverless::") merged in the way SAM does: a map
// is merged key by key, lists are concatenated (globals first), and any other
// value set on the resource wins.
func MergeGlobals(globals map[string]any, section string, props map[string]any) map[string]any {
	g, _ := globals[section].(map[string]any)
	merged, _ := mergeValue(g, props).(map[string]any)
	return merged
}

func mergeValue(global, local any) any {
	gm, gok := global.(map[string]any)
	lm, lok := local.(map[string]any)
	if gok && lok && !isIntrinsic(gm) && !isIntrinsic(lm) {
		out := make(map[string]any, len(gm)+len(lm))
		for k, v := range gm {
			out[k] = v
		}
		for k, v := range lm {
			if gv, ok := gm[k]; ok {
				out[k] = mergeValue(gv, v)
			} else {
				out[k] = v
			}
		}
		return out
	}
	gs, gok := global.([]any)
	ls, lok := local.([]any)
	if gok && lok {
		return append(append([]any{}, gs...), ls...)
	}
	if local == nil {
		return global
	}
	return local
}

func isIntrinsic(m map[string]any) bool {
	if len(m) != 1 {
		return false
	}
	for k := range m {
		return k == "Ref" || k == "Condition" || strings.HasPrefix(k, "Fn::")
	}
	return false
}
