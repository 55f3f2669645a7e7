package orders

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzDecodeOrder checks that DecodeOrder never panics, answers every input
// with a Request or one of its two documented errors, and that a valid
// request, encoded with encoding/json, decodes to itself.
func FuzzDecodeOrder(f *testing.F) {
	f.Add([]byte(validBody))
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"parcel":{"weight_kg":1e999999999}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := DecodeOrder(data)
		var verr *ValidationError
		switch {
		case errors.As(err, &verr):
			if len(verr.Fields) == 0 {
				t.Fatal("ValidationError without fields")
			}
			for _, fe := range verr.Fields {
				if fe.Pointer == "" || fe.Pointer[0] != '/' || fe.Detail == "" {
					t.Fatalf("bad field error %+v", fe)
				}
			}
			return
		case errors.Is(err, ErrMalformedBody):
			return
		case err != nil:
			t.Fatalf("undocumented error %v", err)
		}
		b, err := json.Marshal(r)
		if err != nil {
			t.Fatalf("encode valid request: %v", err)
		}
		again, err := DecodeOrder(b)
		if err != nil {
			t.Fatalf("re-encoded valid request %s is invalid: %v", b, err)
		}
		if !reflect.DeepEqual(again, r) {
			t.Fatalf("round trip changed the request:\n%+v\n%+v", r, again)
		}
	})
}

// TestFuzzSeedsNamedValidAreValid keeps the seed corpus honest: the seeds
// named valid_* must reach the round-trip branch of FuzzDecodeOrder.
func TestFuzzSeedsNamedValidAreValid(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob(filepath.Join("testdata", "fuzz", "FuzzDecodeOrder", "valid_*"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no valid_* seeds: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f)+" decodes without error", func(t *testing.T) {
			t.Parallel()
			data, err := readSeed(f)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := DecodeOrder(data); err != nil {
				t.Fatalf("seed %s is not a valid order: %v", f, err)
			}
		})
	}
}

// readSeed returns the []byte input of a seed corpus file of a fuzz test.
func readSeed(file string) ([]byte, error) {
	raw, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	lines := strings.Split(strings.TrimSpace(string(raw)), "\n")
	lit := strings.TrimSuffix(strings.TrimPrefix(lines[len(lines)-1], "[]byte("), ")")
	data, err := strconv.Unquote(lit)
	if err != nil {
		return nil, fmt.Errorf("seed %s: %w", file, err)
	}
	return []byte(data), nil
}

// FuzzReadValidMatchesDecoder checks that the reader decodeChecked uses on
// valid JSON reads every valid JSON text exactly as encoding/json's
// Decoder does.
func FuzzReadValidMatchesDecoder(f *testing.F) {
	for _, s := range []string{validBody, `{}`, `[]`, `{"a":[1,-2.5e+3,true,false,null,"x"],"a":{}}`,
		`{"\u0041\/\"":"caf\u00e9 \ud83d\ude00 \ud800","b":[[],{}]}`, ` "s" `, `0`, `{"k" : [ 1 , 2 ] }`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if !utf8.Valid(data) || !json.Valid(data) {
			return
		}
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.UseNumber()
		want, err := readValue(dec)
		if err != nil {
			t.Fatalf("json.Valid accepted %q but the Decoder says %v", data, err)
		}
		if got := readValid(data); !reflect.DeepEqual(got, want) {
			t.Fatalf("readValid(%q) = %#v, the Decoder reads %#v", data, got, want)
		}
	})
}

// FuzzDecodeFastMatchesChecker checks that the one-pass decoder DecodeOrder
// tries first accepts exactly the bodies the checker accepts (the checker
// reads through encoding/json's Decoder or readValid, which
// FuzzReadValidMatchesDecoder holds to the Decoder), and makes the same
// Request of them.
func FuzzDecodeFastMatchesChecker(f *testing.F) {
	for _, s := range []string{validBody, `{}`, `{"parcel":{"weight_kg":1e999999999}}`,
		strings.Replace(validBody, `"Ann Lee"`, `"\u0041nn \"L\u00e9e\"\ud83d\ude00 \ud800 \/"`, 1),
		strings.Replace(validBody, `"sender"`, `"s\u0065nder"`, 1),
		strings.Replace(validBody, `"books"`, `"  caf`+"\u00e9"+` \t "`, 1),
		strings.Replace(validBody, `"suburb": "Sydney",`, `"suburb": "Sydney", "line2": "",`, 1),
		strings.Replace(validBody, `2.5`, `25e-1`, 1), strings.Replace(validBody, `2.5`, `2.5001`, 1),
		strings.Replace(validBody, `30`, `-0`, 1), strings.Replace(validBody, `"2000"`, `"2001"`, 1),
		validBody + " x", validBody[:len(validBody)-2],
	} {
		f.Add([]byte(s))
	}
	// And FuzzDecodeOrder's corpus: valid and invalid orders of every kind.
	files, _ := filepath.Glob(filepath.Join("testdata", "fuzz", "FuzzDecodeOrder", "*"))
	for _, file := range files {
		data, err := readSeed(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fast, ok := decodeFast(data)
		checked, err := decodeChecked(data)
		switch {
		case ok && err != nil:
			t.Fatalf("decodeFast accepted %q, which the checker refuses: %v", data, err)
		case !ok && err == nil:
			t.Fatalf("decodeFast refused %q, a valid order", data)
		case ok && !reflect.DeepEqual(fast, checked):
			t.Fatalf("decodeFast(%q) = %+v, the checker makes %+v", data, fast, checked)
		}
	})
}
