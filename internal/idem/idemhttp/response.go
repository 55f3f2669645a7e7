package idemhttp

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"net/http"
	"net/textproto"
	"slices"
	"strconv"
	"strings"

	"github.com/parcelhq/orderservice/internal/problem"
)

// HeaderReplayed is the response header that marks a replayed response; its
// value is always "true". A first response never carries it.
const HeaderReplayed = "Idempotent-Replayed"

// response is an HTTP response as the guard stores and replays it.
type response struct {
	Status int
	Header http.Header
	Body   []byte
}

// unstored are the response headers a stored response leaves out: the
// hop-by-hop headers (RFC 9110 section 7.6.1), which describe one connection;
// Date and Content-Length, which the replay sets afresh; Set-Cookie, because
// an idempotency table must not hold session credentials; and the replay
// marker itself.
var unstored = map[string]bool{
	"Connection":          true,
	"Keep-Alive":          true,
	"Proxy-Connection":    true,
	"Proxy-Authenticate":  true,
	"Proxy-Authorization": true,
	"Te":                  true,
	"Trailer":             true,
	"Transfer-Encoding":   true,
	"Upgrade":             true,
	"Date":                true,
	"Content-Length":      true,
	"Set-Cookie":          true,
	HeaderReplayed:        true,
}

// storable returns the headers of r that a replay repeats (see unstored, and
// any header the Connection header names), in canonical form.
func (r *response) storable() http.Header {
	var drop map[string]bool // nil, and so empty, without a Connection header
	for _, v := range r.Header.Values("Connection") {
		for _, name := range strings.Split(v, ",") {
			if drop == nil {
				drop = map[string]bool{}
			}
			drop[textproto.CanonicalMIMEHeaderKey(strings.TrimSpace(name))] = true
		}
	}
	h := make(http.Header, len(r.Header))
	for name, values := range r.Header {
		name = textproto.CanonicalMIMEHeaderKey(name)
		if unstored[name] || drop[name] || strings.HasPrefix(name, http.TrailerPrefix) || len(values) == 0 {
			continue
		}
		h[name] = append(h[name], values...)
	}
	return h
}

// problemType returns the type member of r's body when r is an RFC 9457
// application/problem+json document that has one, else "".
func (r *response) problemType() string {
	// Most responses are not problems: tell them by the start of the
	// Content-Type before parsing it.
	ct := strings.TrimLeft(r.Header.Get("Content-Type"), " \t")
	if len(ct) < len(problem.ContentType) || !strings.EqualFold(ct[:len(problem.ContentType)], problem.ContentType) {
		return ""
	}
	if mt := parseMediaType(ct); mt.essence != problem.ContentType {
		return ""
	}
	var p struct {
		Type string `json:"type"`
	}
	if json.Unmarshal(r.Body, &p) != nil {
		return ""
	}
	return p.Type
}

// recordVersion is the first byte of an encoded response.
const recordVersion = 1

// encode returns r in the stored format: a version byte, the status, the
// storable headers sorted by name, each with its values in order, then the
// body. Lengths are uvarints.
func (r *response) encode() []byte {
	h := r.storable()
	names := make([]string, 0, len(h))
	size := len(r.Body) + 16
	for name, values := range h {
		names = append(names, name)
		size += len(name) + 8
		for _, v := range values {
			size += len(v) + 4
		}
	}
	slices.Sort(names)
	b := make([]byte, 0, size)
	b = append(b, recordVersion)
	b = binary.AppendUvarint(b, uint64(r.Status))
	b = binary.AppendUvarint(b, uint64(len(names)))
	for _, name := range names {
		b = appendString(b, name)
		b = binary.AppendUvarint(b, uint64(len(h[name])))
		for _, v := range h[name] {
			b = appendString(b, v)
		}
	}
	return append(b, r.Body...)
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

var errCorrupt = errors.New("idemhttp: stored response is corrupt")

// decodeResponse parses what encode returned. It returns errCorrupt for
// anything else, never panics, and never allocates more than len(b) plus
// small per-header overhead.
func decodeResponse(b []byte) (*response, error) {
	d := decoder{b: b}
	if len(b) == 0 || b[0] != recordVersion {
		return nil, errCorrupt
	}
	d.b = d.b[1:]
	status := d.uvarint()
	n := d.uvarint()
	if d.err != nil || status < 200 || status > 999 || n > uint64(len(d.b)) {
		return nil, errCorrupt
	}
	r := &response{Status: int(status), Header: make(http.Header, n)}
	for i := uint64(0); i < n && d.err == nil; i++ {
		name := d.string()
		nv := d.uvarint()
		if nv > uint64(len(d.b)) {
			return nil, errCorrupt
		}
		values := make([]string, 0, nv)
		for j := uint64(0); j < nv && d.err == nil; j++ {
			values = append(values, d.string())
		}
		r.Header[name] = values
	}
	if d.err != nil {
		return nil, errCorrupt
	}
	r.Body = d.b
	return r, nil
}

type decoder struct {
	b   []byte
	err error
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = errCorrupt
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) string() string {
	n := d.uvarint()
	if d.err != nil || n > uint64(len(d.b)) {
		d.err = errCorrupt
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}

// write sends r to w: its headers replace any of the same name already on w,
// Content-Length is set to the body's length, and, when replayed, the
// Idempotent-Replayed header is added.
func (r *response) write(w http.ResponseWriter, replayed bool) {
	h := w.Header()
	for name, values := range r.Header {
		h[name] = slices.Clone(values)
	}
	h.Del("Content-Length")
	if bodyAllowed(r.Status) {
		h.Set("Content-Length", strconv.Itoa(len(r.Body)))
	}
	if replayed {
		h.Set(HeaderReplayed, "true")
	} else {
		h.Del(HeaderReplayed)
	}
	w.WriteHeader(r.Status)
	if len(r.Body) > 0 {
		_, _ = w.Write(r.Body)
	}
}
