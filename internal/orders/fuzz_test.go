package orders

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"
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
