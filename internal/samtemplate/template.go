package samtemplate

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Template is a SAM template read by Load: its top-level sections, with
// intrinsic function tags in long form.
type Template struct {
	Root       map[string]any
	Resources  map[string]any
	Parameters map[string]any
	Globals    map[string]any
}

// Load reads the SAM template at path. It fails as LoadCFN does, and on a
// template without Resources.
func Load(path string) (*Template, error) {
	root, err := LoadCFN(path)
	if err != nil {
		return nil, err
	}
	t := &Template{Root: root}
	t.Resources, _ = root["Resources"].(map[string]any)
	t.Parameters, _ = root["Parameters"].(map[string]any)
	t.Globals, _ = root["Globals"].(map[string]any)
	if len(t.Resources) == 0 {
		return nil, fmt.Errorf("%s: no Resources", path)
	}
	return t, nil
}

// Resource returns the type and properties of resource id, with the
// template's Globals merged into the properties of an AWS::Serverless::*
// resource as SAM merges them; ok is false when there is no such resource.
func (t *Template) Resource(id string) (typ string, props map[string]any, ok bool) {
	r, ok := t.Resources[id].(map[string]any)
	if !ok {
		return "", nil, false
	}
	typ, _ = r["Type"].(string)
	props, _ = r["Properties"].(map[string]any)
	if section, serverless := strings.CutPrefix(typ, "AWS::Serverless::"); serverless {
		props = MergeGlobals(t.Globals, section, props)
	}
	return typ, props, true
}

// SAM's defaults for an AWS::Serverless::Function that does not set them.
const (
	DefaultTimeout  = 3 * time.Second
	DefaultMemoryMB = 128
)

// Function is an AWS::Serverless::Function as the HTTP API invokes it.
type Function struct {
	ID       string        // logical id, e.g. CreateOrderFunction
	Handler  string        // e.g. bootstrap
	Timeout  time.Duration // Timeout (SAM's default 3 s when unset)
	MemoryMB int           // MemorySize (SAM's default 128 when unset)
	// ReservedConcurrency is ReservedConcurrentExecutions, 0 when unset.
	ReservedConcurrency int
	// Routes are the route keys of its HttpApi events: "METHOD /path"
	// (method upper case, ANY for SAM's "any") or "$default" for an event
	// with neither Method nor Path, in the order of their event names.
	Routes []string
}

// HTTPAPIFunctions returns, sorted by logical id, every
// AWS::Serverless::Function with at least one HttpApi event. A Timeout,
// MemorySize or ReservedConcurrentExecutions given as !Ref to a parameter
// takes the parameter's Default. It fails on one of those that is neither a
// number nor such a reference, on an HttpApi event with a Path but no Method or the other way
// round, and on a route key two events declare.
func (t *Template) HTTPAPIFunctions() ([]Function, error) {
	ids := make([]string, 0, len(t.Resources))
	for id := range t.Resources {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	var out []Function
	seen := map[string]string{} // route key -> function.event
	for _, id := range ids {
		typ, props, _ := t.Resource(id)
		if typ != "AWS::Serverless::Function" {
			continue
		}
		evs, _ := props["Events"].(map[string]any)
		names := make([]string, 0, len(evs))
		for name := range evs {
			names = append(names, name)
		}
		sort.Strings(names)
		fn := Function{ID: id}
		fn.Handler, _ = props["Handler"].(string)
		for _, name := range names {
			ev, _ := evs[name].(map[string]any)
			if ev["Type"] != "HttpApi" {
				continue
			}
			ep, _ := ev["Properties"].(map[string]any)
			method, _ := ep["Method"].(string)
			path, _ := ep["Path"].(string)
			var key string
			switch {
			case method == "" && path == "":
				key = "$default"
			case method == "" || path == "":
				return nil, fmt.Errorf("samtemplate: %s event %s: an HttpApi event needs both Method and Path, or neither (the $default route)", id, name)
			default:
				key = strings.ToUpper(method) + " " + path
			}
			if prev, dup := seen[key]; dup {
				return nil, fmt.Errorf("samtemplate: route %q is declared by both %s and %s.%s", key, prev, id, name)
			}
			seen[key] = id + "." + name
			fn.Routes = append(fn.Routes, key)
		}
		if len(fn.Routes) == 0 {
			continue
		}
		secs, err := t.number(props["Timeout"], float64(DefaultTimeout/time.Second))
		if err != nil {
			return nil, fmt.Errorf("samtemplate: %s Timeout: %w", id, err)
		}
		fn.Timeout = time.Duration(secs * float64(time.Second))
		mem, err := t.number(props["MemorySize"], DefaultMemoryMB)
		if err != nil {
			return nil, fmt.Errorf("samtemplate: %s MemorySize: %w", id, err)
		}
		fn.MemoryMB = int(mem)
		rc, err := t.number(props["ReservedConcurrentExecutions"], 0)
		if err != nil {
			return nil, fmt.Errorf("samtemplate: %s ReservedConcurrentExecutions: %w", id, err)
		}
		fn.ReservedConcurrency = int(rc)
		out = append(out, fn)
	}
	return out, nil
}

// number returns v as a number: def when v is absent, a YAML number or a
// string holding one, or the Default of the parameter a {"Ref": name} names.
func (t *Template) number(v any, def float64) (float64, error) {
	if m, ok := v.(map[string]any); ok && len(m) == 1 {
		name, isRef := m["Ref"].(string)
		if !isRef {
			return 0, fmt.Errorf("%v is neither a number nor a !Ref to a parameter", v)
		}
		p, _ := t.Parameters[name].(map[string]any)
		if p == nil || p["Default"] == nil {
			return 0, fmt.Errorf("!Ref %s: no parameter %s with a Default", name, name)
		}
		v = p["Default"]
	}
	switch x := v.(type) {
	case nil:
		return def, nil
	case int:
		return float64(x), nil
	case float64:
		return x, nil
	case string:
		f, err := strconv.ParseFloat(x, 64)
		if err != nil {
			return 0, fmt.Errorf("%q is not a number", x)
		}
		return f, nil
	}
	return 0, fmt.Errorf("%v is not a number", v)
}
