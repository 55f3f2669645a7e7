package idemhttp

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"mime"
	"strconv"
	"strings"
	"testing"
)

const orderJSON = `{"sender":{"name":"Ann","postcode":"2000"},"items":[{"sku":"A1","qty":2},{"sku":"B2","qty":1.50}],"note":"fragile","insured":true,"gift":null}`

func mustFingerprint(t *testing.T, method, route, ct, body string) string {
	t.Helper()
	fp, err := Fingerprint(method, route, ct, []byte(body))
	if err != nil {
		t.Fatalf("Fingerprint(%q, %q, %q, %q): %v", method, route, ct, body, err)
	}
	return fp
}

func TestFingerprintTreatsEquivalentRequestsAsEqual(t *testing.T) {
	t.Parallel()
	base := mustFingerprint(t, "POST", "POST /orders", "application/json", orderJSON)
	if len(base) != 64 || strings.Trim(base, "0123456789abcdef") != "" {
		t.Fatalf("fingerprint %q is not lower-case hex SHA-256", base)
	}
	cases := []struct{ name, ct, body string }{
		{"members in another order", "application/json",
			`{"gift":null,"insured":true,"note":"fragile","items":[{"qty":2,"sku":"A1"},{"qty":1.50,"sku":"B2"}],"sender":{"postcode":"2000","name":"Ann"}}`},
		{"whitespace and newlines added", "application/json",
			"{\n  \"sender\" : { \"name\" : \"Ann\", \"postcode\" : \"2000\" },\r\n\t\"items\" : [ { \"sku\" : \"A1\", \"qty\" : 2 } , { \"sku\" : \"B2\", \"qty\" : 1.50 } ],\n \"note\":\"fragile\",\"insured\":true,\"gift\":null }\n"},
		{"strings escaped differently", "application/json",
			`{"sender":{"name":"\u0041nn","postcode":"2000"},"items":[{"sku":"A1","qty":2},{"sku":"B2","qty":1.50}],"note":"fr\u0061gile","insured":true,"gift":null}`},
		{"a member name escaped differently", "application/json",
			`{"s\u0065nder":{"name":"Ann","postcode":"2000"},"items":[{"sku":"A1","qty":2},{"sku":"B2","qty":1.50}],"note":"fragile","insured":true,"gift":null}`},
		{"a JSON content type with a charset parameter", "application/json; charset=utf-8", orderJSON},
		{"a JSON content type with a quoted upper-case charset", `application/json;charset="UTF-8"`, orderJSON},
		{"a content type in upper case", "Application/JSON", orderJSON},
		{"a content type with spaces around it", "  application/json  ", orderJSON},
	}
	for _, tc := range cases {
		t.Run("a body with "+tc.name+" has the same fingerprint", func(t *testing.T) {
			t.Parallel()
			if got := mustFingerprint(t, "POST", "POST /orders", tc.ct, tc.body); got != base {
				t.Fatalf("fingerprint differs: %s vs %s", got, base)
			}
		})
	}
}

func TestFingerprintTellsDifferentRequestsApart(t *testing.T) {
	t.Parallel()
	base := mustFingerprint(t, "POST", "POST /orders", "application/json", orderJSON)
	cases := []struct{ name, method, route, ct, body string }{
		{"another route", "POST", "POST /returns", "application/json", orderJSON},
		{"another method", "PUT", "POST /orders", "application/json", orderJSON},
		{"a changed string", "POST", "POST /orders", "application/json", strings.Replace(orderJSON, "Ann", "Bob", 1)},
		{"a number written differently", "POST", "POST /orders", "application/json", strings.Replace(orderJSON, "1.50", "1.5", 1)},
		{"array elements reordered", "POST", "POST /orders", "application/json",
			`{"sender":{"name":"Ann","postcode":"2000"},"items":[{"sku":"B2","qty":1.50},{"sku":"A1","qty":2}],"note":"fragile","insured":true,"gift":null}`},
		{"a member removed", "POST", "POST /orders", "application/json", strings.Replace(orderJSON, `,"gift":null`, "", 1)},
		{"the same bytes sent as text", "POST", "POST /orders", "text/plain", orderJSON},
		{"the same JSON sent as another JSON media type", "POST", "POST /orders", "application/vnd.api+json", orderJSON},
		{"the same JSON sent as application/json with a parameter", "POST", "POST /orders", "application/json; profile=v2", orderJSON},
		{"the same JSON labelled with a charset other than UTF-8", "POST", "POST /orders", "application/json; charset=iso-8859-1", orderJSON},
	}
	for _, tc := range cases {
		t.Run("a request with "+tc.name+" has another fingerprint", func(t *testing.T) {
			t.Parallel()
			if got := mustFingerprint(t, tc.method, tc.route, tc.ct, tc.body); got == base {
				t.Fatalf("fingerprint is the same: %s", got)
			}
		})
	}
}

func TestFingerprintHashesNonJSONBodiesByteForByte(t *testing.T) {
	t.Parallel()
	a := mustFingerprint(t, "POST", "POST /upload", "text/csv", "a,b\n1,2\n")
	t.Run("reformatted bytes differ", func(t *testing.T) {
		if b := mustFingerprint(t, "POST", "POST /upload", "text/csv", "a,b\r\n1,2\r\n"); a == b {
			t.Fatal("CRLF and LF bodies have the same fingerprint")
		}
	})
	t.Run("a charset parameter matters: the same bytes in another charset are another text", func(t *testing.T) {
		if b := mustFingerprint(t, "POST", "POST /upload", "text/csv; charset=iso-8859-1", "a,b\n1,2\n"); a == b {
			t.Fatal("a charset parameter did not change the fingerprint")
		}
	})
	t.Run("a charset is compared without regard to case or quotes", func(t *testing.T) {
		x := mustFingerprint(t, "POST", "POST /upload", "text/csv; charset=utf-8", "a,b\n1,2\n")
		if y := mustFingerprint(t, "POST", "POST /upload", `Text/CSV; Charset="UTF-8"`, "a,b\n1,2\n"); x != y {
			t.Fatal("the case or quoting of a charset changed the fingerprint")
		}
	})
	t.Run("the order of parameters does not matter", func(t *testing.T) {
		x := mustFingerprint(t, "POST", "POST /upload", "text/csv; header=present; charset=utf-8", "a,b\n1,2\n")
		if y := mustFingerprint(t, "POST", "POST /upload", "text/csv; charset=utf-8; header=present", "a,b\n1,2\n"); x != y {
			t.Fatal("reordered parameters changed the fingerprint")
		}
	})
	t.Run("invalid JSON without a JSON content type is not an error", func(t *testing.T) {
		mustFingerprint(t, "POST", "POST /upload", "", "{not json")
	})
	t.Run("the route and the body cannot be confused by moving bytes between them", func(t *testing.T) {
		if mustFingerprint(t, "POST", "POST /a", "", "bc") == mustFingerprint(t, "POST", "POST /ab", "", "c") {
			t.Fatal("length-prefixing failed")
		}
	})
}

// TestFingerprintOfThePlainCasesIsUnchanged pins the fingerprints of an
// application/json body and of a non-JSON body without parameters to the
// values the first version computed: records in DynamoDB hold them, so a
// change would turn every retry in flight across a deployment into a 422.
func TestFingerprintOfThePlainCasesIsUnchanged(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, route, ct, body, want string }{
		{"application/json", "POST /orders", "application/json", orderJSON, "261d239cd6181a7447ba5177b62b7d3fee3009ab79bb9ff2cef10b4c10fd8fdf"},
		{"application/json; charset=utf-8", "POST /orders", "application/json; charset=utf-8", orderJSON, "261d239cd6181a7447ba5177b62b7d3fee3009ab79bb9ff2cef10b4c10fd8fdf"},
		{"text/csv", "POST /upload", "text/csv", "a,b\n1,2\n", "612e3453f6a6ea2c77e13361a7d87c04ba3f08905853404c96bdaf15a32646d0"},
	} {
		t.Run("the fingerprint of a "+tc.name+" body is the one stored records hold", func(t *testing.T) {
			if got := mustFingerprint(t, "POST", tc.route, tc.ct, tc.body); got != tc.want {
				t.Fatalf("fingerprint %s, want %s", got, tc.want)
			}
		})
	}
}

// firstVersionFingerprint is the fingerprint as the first version computed
// it, before the media type joined it: "json" and the canonical body for any
// JSON type (application/json or application/*+json, whatever its
// parameters), else "raw " and the lower-cased type/subtype (for a value
// that does not parse, the text before ";") and the body.
func firstVersionFingerprint(t *testing.T, method, route, ct, body string) string {
	t.Helper()
	field := func(b []byte, s string) []byte {
		return append(binary.AppendUvarint(b, uint64(len(s))), s...)
	}
	b := field(nil, fingerprintVersion)
	b = field(b, method)
	b = field(b, route)
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		mt, _, _ = strings.Cut(strings.ToLower(strings.TrimSpace(ct)), ";")
		mt = strings.TrimSpace(mt)
	}
	if mt == "application/json" || (strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json")) {
		canon, err := CanonicalJSON([]byte(body))
		if err != nil {
			t.Fatal(err)
		}
		b = field(field(b, "json"), string(canon))
	} else {
		b = field(field(b, "raw "+mt), body)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// TestFingerprintChangedOnlyWhereDocumented checks fingerprintVersion's
// account of what the media type changed: the fingerprint of a plain
// application/json or parameterless non-JSON request is the first version's,
// and that of any request with another media type, with parameters, or
// with a Content-Type that is missing or does not parse is not, so that a
// record the first version wrote for it does not match a retry.
func TestFingerprintChangedOnlyWhereDocumented(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		ct, body string
		same     bool
	}{
		{"application/json", orderJSON, true},
		{"Application/JSON; charset=UTF-8", orderJSON, true},
		{"text/csv", "a,b", true},
		{"application/json; v=1", orderJSON, false},
		{"application/vnd.api+json", orderJSON, false},
		{"application/json; charset=iso-8859-1", orderJSON, false},
		{"text/plain; charset=utf-8", "a,b", false},
		{"", "a,b", false},
		{"application/json; charset", orderJSON, false},
	} {
		verb := "changed"
		if tc.same {
			verb = "is unchanged"
		}
		t.Run("the fingerprint of a "+strconv.Quote(tc.ct)+" request "+verb, func(t *testing.T) {
			got := mustFingerprint(t, "POST", "POST /orders", tc.ct, tc.body)
			if old := firstVersionFingerprint(t, "POST", "POST /orders", tc.ct, tc.body); (got == old) != tc.same {
				t.Fatalf("fingerprint %s, first version's %s: want equal %v", got, old, tc.same)
			}
		})
	}
}

func TestFingerprintRejectsMalformedJSON(t *testing.T) {
	t.Parallel()
	deep := strings.Repeat("[", MaxJSONDepth+1) + strings.Repeat("]", MaxJSONDepth+1)
	cases := []struct{ name, body, reason string }{
		{"an empty body", "", "empty"},
		{"a truncated object", `{"a":1`, "unexpected end"},
		{"a trailing comma", `{"a":1,}`, "invalid character"},
		{"two values", `{"a":1} {"b":2}`, "invalid character"},
		{"a duplicate member name", `{"a":1,"b":{"c":1,"c":2}}`, `"c" appears twice`},
		{"a duplicate member name spelled with an escape", `{"a":1,"\u0061":2}`, `"a" appears twice`},
		{"nesting deeper than the limit", deep, "nested more than"},
		{"invalid UTF-8 in a string", "{\"a\":\"\xff\"}", "UTF-8"},
		{"a single quoted string", `{'a':1}`, "invalid character"},
	}
	for _, tc := range cases {
		t.Run(tc.name+" is malformed JSON", func(t *testing.T) {
			t.Parallel()
			fp, err := Fingerprint("POST", "POST /orders", "application/json", []byte(tc.body))
			var be *BodyError
			if !errors.As(err, &be) || fp != "" {
				t.Fatalf("Fingerprint = %q, %v; want a *BodyError", fp, err)
			}
			if !strings.Contains(be.Reason, tc.reason) {
				t.Errorf("reason %q does not mention %q", be.Reason, tc.reason)
			}
		})
	}
	t.Run("nesting exactly at the limit is accepted", func(t *testing.T) {
		t.Parallel()
		ok := strings.Repeat("[", MaxJSONDepth) + strings.Repeat("]", MaxJSONDepth)
		mustFingerprint(t, "POST", "POST /orders", "application/json", ok)
	})
}

// BenchmarkFingerprint fingerprints an order-sized JSON body (about 400
// bytes, members out of order) and a 10 KB one of 200 objects.
func BenchmarkFingerprint(b *testing.B) {
	var items []map[string]any
	for i := range 200 {
		items = append(items, map[string]any{"sku": "SKU-" + strings.Repeat("x", i%7), "qty": i, "note": "line \"item\""})
	}
	large, _ := json.Marshal(map[string]any{"items": items, "sender": map[string]string{"name": "Ann"}})
	order := []byte(`{"sender":{"name":"Ann Lee","address":{"line1":"1 George St","suburb":"Sydney","state":"NSW","postcode":"2000","country":"AU"}},` +
		`"receiver":{"name":"Bo Chen","address":{"line1":"9 Queen St","suburb":"Brisbane","state":"QLD","postcode":"4000","country":"AU"}},` +
		`"parcel":{"weight_kg":2.5,"length_cm":30,"width_cm":20,"height_cm":10,"description":"books"}}`)
	for _, bc := range []struct {
		name string
		body []byte
	}{{"order", order}, {"10KB", large}} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(int64(len(bc.body)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Fingerprint("POST", "POST /orders", "application/json", bc.body); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// FuzzFingerprint checks that Fingerprint never panics and that the
// fingerprint of a JSON body does not change when its objects' members are
// reordered or its whitespace is reformatted.
func FuzzFingerprint(f *testing.F) {
	for _, s := range []string{orderJSON, `{}`, `[]`, `"x"`, `1e10`, `{"a":[1,{"b":null}],"c":"\u00e9"}`, `{"a":1,"a":2}`, `{"a":`, "\xff", `[[[[[[[[[[]]]]]]]]]]`} {
		f.Add(s, "application/json")
	}
	f.Add("a,b\n", "text/csv")
	f.Add("a,b\n", `text/csv; charset="UTF-8"; header=present`)
	f.Add(`{"data":{}}`, `application/vnd.api+json; ext="https://jsonapi.org/ext/atomic"`)
	f.Add(`{}`, "application/json; charset")
	f.Fuzz(func(t *testing.T, body, ct string) {
		fp, err := Fingerprint("POST", "POST /orders", ct, []byte(body))
		if err != nil {
			var be *BodyError
			if !errors.As(err, &be) || fp != "" {
				t.Fatalf("error %v is not a *BodyError", err)
			}
			if !parseMediaType(ct).json {
				t.Fatalf("non-JSON content type %q failed: %v", ct, err)
			}
			return
		}
		if !parseMediaType(ct).json {
			return
		}
		var v any
		if err := json.Unmarshal([]byte(body), &v); err != nil {
			t.Fatalf("Fingerprint accepted %q, which encoding/json rejects: %v", body, err)
		}
		for name, variant := range map[string][]byte{"reordered": reorder(t, body, false), "indented": reorder(t, body, true)} {
			got, err := Fingerprint("POST", "POST /orders", ct, variant)
			if err != nil || got != fp {
				t.Fatalf("%s form %q of %q: fingerprint %q, %v; want %q", name, variant, body, got, err, fp)
			}
		}
	})
}

// reorder re-encodes the JSON body with every object's members in reverse
// order of name and numbers as written, indented or not.
func reorder(t *testing.T, body string, indent bool) []byte {
	t.Helper()
	canon, err := CanonicalJSON([]byte(body))
	if err != nil {
		t.Fatalf("CanonicalJSON(%q): %v", body, err)
	}
	dec := json.NewDecoder(strings.NewReader(string(canon)))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("decode canonical form %q: %v", canon, err)
	}
	var b strings.Builder
	writeReversed(&b, v, indent, 0)
	return []byte(b.String())
}

func writeReversed(b *strings.Builder, v any, indent bool, depth int) {
	nl := func(d int) {
		if indent {
			b.WriteString("\n" + strings.Repeat("\t", d))
		}
	}
	switch x := v.(type) {
	case map[string]any:
		names := make([]string, 0, len(x))
		for k := range x {
			names = append(names, k)
		}
		// reverse of the canonical (sorted) order
		for i := 0; i < len(names); i++ {
			for j := i + 1; j < len(names); j++ {
				if names[j] > names[i] {
					names[i], names[j] = names[j], names[i]
				}
			}
		}
		b.WriteString("{")
		for i, k := range names {
			if i > 0 {
				b.WriteString(",")
			}
			nl(depth + 1)
			kb, _ := json.Marshal(k)
			b.Write(kb)
			b.WriteString(" : ")
			writeReversed(b, x[k], indent, depth+1)
		}
		nl(depth)
		b.WriteString("}")
	case []any:
		b.WriteString("[ ")
		for i, e := range x {
			if i > 0 {
				b.WriteString(" , ")
			}
			writeReversed(b, e, indent, depth+1)
		}
		b.WriteString(" ]")
	case json.Number:
		b.WriteString(string(x))
	default:
		vb, _ := json.Marshal(x)
		b.Write(vb)
	}
}
