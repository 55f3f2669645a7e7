package idemhttp

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

// canonicalSamples are JSON texts, valid and not, that exercise every
// branch of the canonicalizer: escapes of every kind, surrogates paired and
// not, the characters Marshal escapes, numbers of every shape, nesting,
// duplicate names and syntax errors.
var canonicalSamples = []string{
	orderJSON, `{}`, `[]`, `""`, `0`, `-0`, `-0.0e-0`, `1E+10`, `12.50`, `true`, `false`, `null`,
	` {"b" : [ 1 , 2 ] , "a" : { } } `, "\t\r\n[\n]\n",
	`{"z":1,"y":{"b":2,"a":[{"d":4,"c":3}]},"x":"<&>"}`,
	`"\"\\\/\b\f\n\r\t\u0000\u001f\u007f\u00e9\u2028\u2029\ud83d\ude00"`,
	"\"raw \u2028 \u2029 \u00e9 \U0001F600 <>& \x7f\"",
	`"\ud800"`, `"\udc00"`, `"\ud800\u0041"`, `"\ud800\ud800\udc00"`, `"\ud800x"`, `"\uDBFF\uDFFF"`, `"\uFFFD"`,
	`{"\u0061":1,"b":2}`, `{"a":1,"\u0061":2}`, `{"a<":1,"a\u003c":2}`, `{"é":1,"\u00e9":2}`,
	`{"b":1,"a\u0000":2,"a":3}`, `{"\ud800":1,"\ufffd":2}`,
	`{"a":1,"a":2}`, `{"a":{"b":1,"b":2}}`, `[{"x":1},{"x":1}]`,
	strings.Repeat("[", MaxJSONDepth) + strings.Repeat("]", MaxJSONDepth),
	strings.Repeat("[", MaxJSONDepth+1) + strings.Repeat("]", MaxJSONDepth+1),
	`{"a":` + strings.Repeat(`{"a":`, MaxJSONDepth) + `1` + strings.Repeat("}", MaxJSONDepth+1),
	`{"a":1,"a":` + strings.Repeat("[", MaxJSONDepth+1) + strings.Repeat("]", MaxJSONDepth+1) + `}`,
	``, ` `, `{`, `}`, `[1,]`, `{"a":1,}`, `{"a"}`, `{"a":}`, `{a:1}`, `{'a':1}`, `[1 2]`, `{"a":1 "b":2}`,
	`01`, `1.`, `.5`, `-`, `1e`, `1e+`, `+1`, `0x10`, `NaN`, `tru`, `nul`, `truex`, `[true false]`,
	`"abc`, `"\x"`, `"\u12"`, `"\u12G4"`, "\"a\x01b\"", "\"\xff\"", "\"\xed\xa0\x80\"", "\xef\xbb\xbf{}",
	`{} {}`, `{}x`, `[]]`, `{"a":[}`, `{"a":1}}`,
}

func TestCanonicalJSONAgreesWithTheReference(t *testing.T) {
	t.Parallel()
	for _, s := range canonicalSamples {
		t.Run(fmt.Sprintf("%.40q gets the reference's answer", s), func(t *testing.T) {
			t.Parallel()
			checkAgainstReference(t, []byte(s))
		})
	}
}

// FuzzCanonicalJSON checks CanonicalJSON against referenceCanonicalJSON,
// the token-by-token encoding/json implementation the fingerprints of
// stored records were computed with: the same canonical form for every
// text both accept, and a refusal, for the same reason, of every other.
func FuzzCanonicalJSON(f *testing.F) {
	for _, s := range canonicalSamples {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) { checkAgainstReference(t, []byte(s)) })
}

func checkAgainstReference(t *testing.T, body []byte) {
	t.Helper()
	got, err := CanonicalJSON(body)
	want, werr := referenceCanonicalJSON(body)
	switch {
	case werr == nil && err != nil:
		t.Fatalf("CanonicalJSON(%q) = %v; the reference accepts it as %q", body, err, want)
	case werr != nil && err == nil:
		t.Fatalf("CanonicalJSON(%q) = %q; the reference refuses it: %v", body, got, werr)
	case werr == nil && !bytes.Equal(got, want):
		t.Fatalf("CanonicalJSON(%q) = %q, the reference %q", body, got, want)
	case werr != nil:
		// A text with both a duplicate name and too deep a nesting may be
		// refused for either; any other refusal must give the same words.
		g, w := err.(*BodyError).Reason, werr.(*BodyError).Reason
		if g != w && !(structural(g) && structural(w)) {
			t.Fatalf("CanonicalJSON(%q) refused: %q, the reference: %q", body, g, w)
		}
	}
}

func structural(reason string) bool {
	return strings.Contains(reason, "appears twice") || strings.Contains(reason, "nested more than")
}

// referenceCanonicalJSON is the canonicalisation of the first version,
// token by token through encoding/json's Decoder, kept to hold the one-pass
// canonicalizer to it.
func referenceCanonicalJSON(body []byte) ([]byte, error) {
	if !utf8.Valid(body) {
		return nil, &BodyError{Reason: "the body is not valid UTF-8"}
	}
	if !json.Valid(body) {
		return nil, &BodyError{Reason: syntaxReason(body)}
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var out bytes.Buffer
	if err := refValue(dec, &out, 0); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, &BodyError{Reason: "data follows the JSON value"}
	}
	return out.Bytes(), nil
}

func refValue(dec *json.Decoder, out *bytes.Buffer, depth int) error {
	tok, err := dec.Token()
	if err != nil {
		return &BodyError{Reason: err.Error()}
	}
	switch t := tok.(type) {
	case json.Delim:
		if depth+1 > MaxJSONDepth {
			return &BodyError{Reason: fmt.Sprintf("the JSON value is nested more than %d levels deep", MaxJSONDepth)}
		}
		if t == '[' {
			out.WriteByte('[')
			for i := 0; dec.More(); i++ {
				if i > 0 {
					out.WriteByte(',')
				}
				if err := refValue(dec, out, depth+1); err != nil {
					return err
				}
			}
			_, _ = dec.Token()
			out.WriteByte(']')
			return nil
		}
		type member struct {
			name  string
			value []byte
		}
		var members []member
		seen := map[string]bool{}
		for dec.More() {
			tok, _ := dec.Token()
			name := tok.(string)
			if seen[name] {
				return &BodyError{Reason: fmt.Sprintf("the member name %q appears twice in one object", name)}
			}
			seen[name] = true
			var v bytes.Buffer
			if err := refValue(dec, &v, depth+1); err != nil {
				return err
			}
			members = append(members, member{name, v.Bytes()})
		}
		_, _ = dec.Token()
		slices.SortFunc(members, func(a, b member) int { return strings.Compare(a.name, b.name) })
		out.WriteByte('{')
		for i, m := range members {
			if i > 0 {
				out.WriteByte(',')
			}
			b, _ := json.Marshal(m.name)
			out.Write(b)
			out.WriteByte(':')
			out.Write(m.value)
		}
		out.WriteByte('}')
	case string:
		b, _ := json.Marshal(t)
		out.Write(b)
	case json.Number:
		out.WriteString(string(t))
	case bool:
		fmt.Fprint(out, t)
	case nil:
		out.WriteString("null")
	}
	return nil
}
