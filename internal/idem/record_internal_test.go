package idem

import (
	"bytes"
	"crypto/rand"
	"strings"
	"testing"
)

func TestEncodeResponse(t *testing.T) {
	random := make([]byte, 8000)
	_, _ = rand.Read(random)
	order := []byte(`{"order_id":"ord_o6bod7yjkxvabcjobeehjnkufe","status":"booked","sender":{"name":"Ann Lee","address":{"line1":"1 George St"}},"receiver":{"name":"Bo Chen","address":{"line1":"9 Queen St"}}}`)
	cases := []struct {
		name     string
		resp     []byte
		encoding string
	}{
		{"a response under the threshold is stored as it is", bytes.Repeat([]byte("a"), compressAtBytes-1), ""},
		{"nil is stored as empty", nil, ""},
		{"a compressible response of a few KB is stored with snappy", bytes.Repeat(order, 6), encodingSnappy},
		{"an incompressible response of a few KB is stored as it is", random[:2000], ""},
		{"a large compressible response is stored with gzip, which compresses it better", bytes.Repeat(order, 100), encodingGzip},
		{"a large incompressible response is stored as it is", random, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			enc := encodeResponseAt(c.resp, compressAtBytes)
			if enc.encoding != c.encoding {
				t.Fatalf("encoding %q, want %q", enc.encoding, c.encoding)
			}
			if enc.encoding != "" && len(enc.data) >= len(c.resp) {
				t.Fatalf("compressed to %d bytes from %d", len(enc.data), len(c.resp))
			}
			got, err := decodeResponse(enc.data, enc.encoding)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, c.resp) {
				t.Fatal("decoded response differs from the original")
			}
		})
	}
}

func TestDecodeResponseRefusesWhatItCannotRead(t *testing.T) {
	cases := []struct{ name, enc, want string }{
		{"corrupt snappy data", encodingSnappy, "corrupt snappy"},
		{"corrupt gzip data", encodingGzip, "corrupt gzip"},
		{"an unknown encoding", "zstd", "unknown encoding"},
	}
	for _, c := range cases {
		t.Run(c.name+" is an error", func(t *testing.T) {
			_, err := decodeResponse([]byte{0xff, 0xfe, 0xfd}, c.enc)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want %q", err, c.want)
			}
		})
	}
}
