package idem

import (
	"bytes"
	"compress/gzip"
	"crypto/rand"
	"strings"
	"testing"

	"github.com/golang/snappy"
)

func TestEncodeResponse(t *testing.T) {
	random := make([]byte, 8000)
	_, _ = rand.Read(random)
	order := []byte(`{"order_id":"ord_o6bod7yjkxvabcjobeehjnkufe","status":"booked","sender":{"name":"Ann Lee","address":{"line1":"1 George St"}},"receiver":{"name":"Bo Chen","address":{"line1":"9 Queen St"}}}`)
	// A response whose Snappy form crosses a write-unit boundary that its
	// gzip form stays within, given the item's other bytes.
	typical := bytes.Repeat(order, 6)
	var z bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&z, gzip.BestSpeed)
	_, _ = zw.Write(typical)
	_ = zw.Close()
	snappyLen, gzipLen := len(snappy.Encode(nil, typical)), z.Len()
	if gzipLen >= snappyLen {
		t.Fatalf("the test needs a response gzip compresses better than Snappy: %d vs %d bytes", gzipLen, snappyLen)
	}
	nearBoundary := writeUnitBytes - (snappyLen+gzipLen)/2 // other bytes: Snappy's item takes 2 units, gzip's 1

	cases := []struct {
		name     string
		resp     []byte
		other    int
		encoding string
	}{
		{"a response under the threshold is stored as it is", bytes.Repeat([]byte("a"), compressAtBytes-1), 0, ""},
		{"nil is stored as empty", nil, 0, ""},
		{"a compressible response is stored with Snappy when gzip would save no write unit", typical, 0, encodingSnappy},
		{"a compressible response is stored with gzip when that saves a write unit", typical, nearBoundary, encodingGzip},
		{"an incompressible response of a few KB is stored as it is", random[:2000], 0, ""},
		{"a large compressible response is stored with gzip, which takes fewer write units", bytes.Repeat(order, 100), 256, encodingGzip},
		{"a large incompressible response is stored as it is", random, 256, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			enc := encodeResponseAt(c.resp, compressAtBytes, c.other)
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
