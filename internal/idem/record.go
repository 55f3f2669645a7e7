package idem

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/golang/snappy"

	"github.com/parcelhq/orderservice/internal/ddb"
)

// Record attributes besides AttrID and AttrExpiresAt.
const (
	attrStatus      = "status"
	attrFingerprint = "fingerprint"
	attrOwner       = "owner"
	attrLeaseUntil  = "lease_until" // epoch ms
	attrData        = "data"
	attrEncoding    = "encoding" // "snappy", "gzip" or absent (identity)

	statusInProgress = "IN_PROGRESS"
	statusCompleted  = "COMPLETED"
	encodingSnappy   = "snappy"
	encodingGzip     = "gzip"
)

const (
	maxItemBytes        = 400 * 1024      // DynamoDB item limit
	maxTransactBytes    = 4 * 1024 * 1024 // DynamoDB transaction limit
	compressAtBytes     = 1024            // responses smaller than this are stored as they are
	recordOverheadBytes = 256             // generous bound on a record's attributes other than data
)

// record is an idempotency record as read from the table.
type record struct {
	id          string
	status      string
	fingerprint string
	owner       string
	leaseUntil  time.Time
	expiresAt   time.Time
	data        []byte // decoded response
}

// decodeRecord parses an item; a nil or empty item gives a nil record.
func decodeRecord(item map[string]types.AttributeValue) (*record, error) {
	if len(item) == 0 {
		return nil, nil
	}
	r := &record{
		id:          str(item[AttrID]),
		status:      str(item[attrStatus]),
		fingerprint: str(item[attrFingerprint]),
		owner:       str(item[attrOwner]),
	}
	if ms, ok := num(item[attrLeaseUntil]); ok {
		r.leaseUntil = time.UnixMilli(ms)
	}
	if s, ok := num(item[AttrExpiresAt]); ok {
		r.expiresAt = time.Unix(s, 0)
	}
	if r.status == statusCompleted {
		raw := []byte{}
		if b, ok := item[attrData].(*types.AttributeValueMemberB); ok && b.Value != nil {
			raw = b.Value
		}
		d, err := decodeResponse(raw, str(item[attrEncoding]))
		if err != nil {
			return nil, fmt.Errorf("idem: record %s: %w", r.id, err)
		}
		r.data = d
	}
	return r, nil
}

// encodedResponse is a response as stored: data and its encoding marker.
type encodedResponse struct {
	data     []byte
	encoding string // "", encodingSnappy or encodingGzip
}

// encodeResponse is encodeResponseAt from compressAtBytes, for a record
// whose attributes other than the data take otherBytes.
func encodeResponse(resp []byte, otherBytes int) encodedResponse {
	return encodeResponseAt(resp, compressAtBytes, otherBytes)
}

// encodeResponseAt compresses resp, when it has at least atBytes, if that
// makes it smaller: with Snappy (about a microsecond for a response of a few
// hundred bytes, some twenty times faster than gzip at its fastest level);
// and, when the item holding it (otherBytes besides the data) would still
// take more write units than its other attributes alone, with gzip too,
// keeping gzip's result if it takes fewer write units. So gzip's CPU is
// spent only where its better ratio saves a write unit on every write of
// the item (worth far more than the CPU) or room within the item limit.
func encodeResponseAt(resp []byte, atBytes, otherBytes int) encodedResponse {
	if resp == nil {
		resp = []byte{}
	}
	best := encodedResponse{data: resp}
	if len(resp) < atBytes {
		return best
	}
	if s := snappy.Encode(nil, resp); len(s) < len(best.data) {
		best = encodedResponse{data: s, encoding: encodingSnappy}
	}
	units := func(dataBytes int) int { return (otherBytes + dataBytes + writeUnitBytes - 1) / writeUnitBytes }
	if units(len(best.data)) <= units(1) {
		return best
	}
	z := gzipBuffers.Get().(*gzipBuffer)
	defer gzipBuffers.Put(z)
	z.buf.Reset()
	z.w.Reset(&z.buf)
	_, _ = z.w.Write(resp) // a bytes.Buffer does not fail
	_ = z.w.Close()
	if units(z.buf.Len()) < units(len(best.data)) {
		best = encodedResponse{data: bytes.Clone(z.buf.Bytes()), encoding: encodingGzip}
	}
	return best
}

// decodeResponse returns the response stored as data with the encoding
// marker enc; it fails on corrupt data or an unknown encoding.
func decodeResponse(data []byte, enc string) ([]byte, error) {
	switch enc {
	case "":
		return data, nil
	case encodingSnappy:
		d, err := snappy.Decode(nil, data)
		if err != nil {
			return nil, fmt.Errorf("corrupt snappy data: %w", err)
		}
		return d, nil
	case encodingGzip:
		d, err := gunzip(data)
		if err != nil {
			return nil, fmt.Errorf("corrupt gzip data: %w", err)
		}
		return d, nil
	}
	return nil, fmt.Errorf("unknown encoding %q", enc)
}

type gzipBuffer struct {
	buf bytes.Buffer
	w   *gzip.Writer
}

// gzipBuffers holds the writers of encodeResponseAt, at gzip.BestSpeed:
// within a few percent of the default level's ratio at about half the CPU,
// and its Reset does not clear the hash tables (hundreds of KB) the other
// levels clear on every use.
var gzipBuffers = sync.Pool{New: func() any {
	z := &gzipBuffer{}
	z.w, _ = gzip.NewWriterLevel(&z.buf, gzip.BestSpeed) // a valid level: no error
	return z
}}

// gzipReaders holds readers for gunzip: a fresh gzip.Reader allocates about
// 40 KB, many times a small response.
var gzipReaders sync.Pool

func gunzip(b []byte) ([]byte, error) {
	src := bytes.NewReader(b)
	r, _ := gzipReaders.Get().(*gzip.Reader)
	var err error
	if r == nil {
		r, err = gzip.NewReader(src)
	} else {
		err = r.Reset(src)
	}
	if err != nil {
		return nil, err
	}
	defer gzipReaders.Put(r)
	return io.ReadAll(r)
}

// completedValues returns the attributes that make a record COMPLETED.
func (e encodedResponse) attributes() map[string]types.AttributeValue {
	m := map[string]types.AttributeValue{
		attrStatus: &types.AttributeValueMemberS{Value: statusCompleted},
		attrData:   &types.AttributeValueMemberB{Value: e.data},
	}
	if e.encoding != "" {
		m[attrEncoding] = &types.AttributeValueMemberS{Value: e.encoding}
	}
	return m
}

func str(v types.AttributeValue) string {
	if s, ok := v.(*types.AttributeValueMemberS); ok {
		return s.Value
	}
	return ""
}

func num(v types.AttributeValue) (int64, bool) {
	n, ok := v.(*types.AttributeValueMemberN)
	if !ok {
		return 0, false
	}
	i, err := strconv.ParseInt(n.Value, 10, 64)
	return i, err == nil
}

func sv(s string) types.AttributeValue { return &types.AttributeValueMemberS{Value: s} }
func nv(i int64) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(i, 10)}
}

// writeSize estimates the bytes a transaction action contributes to the
// transaction's 4 MB limit.
func writeSize(w types.TransactWriteItem) int {
	switch {
	case w.Put != nil:
		return ddb.ItemSize(w.Put.Item) + ddb.ItemSize(w.Put.ExpressionAttributeValues)
	case w.Update != nil:
		return ddb.ItemSize(w.Update.Key) + ddb.ItemSize(w.Update.ExpressionAttributeValues)
	case w.Delete != nil:
		return ddb.ItemSize(w.Delete.Key) + ddb.ItemSize(w.Delete.ExpressionAttributeValues)
	case w.ConditionCheck != nil:
		return ddb.ItemSize(w.ConditionCheck.Key) + ddb.ItemSize(w.ConditionCheck.ExpressionAttributeValues)
	}
	return 0
}
