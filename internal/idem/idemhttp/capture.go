package idemhttp

import (
	"bytes"
	"net/http"
)

// capture is an http.ResponseWriter that buffers the whole response of the
// wrapped handler, so that nothing reaches the client before the guard has
// decided what to do with it (store it, release it, or throw it away after
// a panic). It does not implement http.Flusher: a guarded handler cannot
// stream.
type capture struct {
	header http.Header
	status int // 0 until WriteHeader or Write
	body   bytes.Buffer
}

func newCapture() *capture { return &capture{header: http.Header{}} }

func (c *capture) Header() http.Header { return c.header }

// WriteHeader records the first final status; informational (1xx) statuses
// are dropped, since the client sees the response only when it is complete.
func (c *capture) WriteHeader(status int) {
	if c.status != 0 || status < 200 {
		return
	}
	c.status = status
}

func (c *capture) Write(b []byte) (int, error) {
	if c.status == 0 {
		c.status = http.StatusOK
	}
	return c.body.Write(b)
}

// response returns what the handler wrote, as net/http would have sent it:
// 200 when the handler wrote nothing, and a sniffed Content-Type when it set
// none but wrote a body.
func (c *capture) response() *response {
	r := &response{Status: c.status, Header: c.header.Clone(), Body: c.body.Bytes()}
	if r.Status == 0 {
		r.Status = http.StatusOK
	}
	if !bodyAllowed(r.Status) {
		r.Body = nil
	}
	if _, ok := r.Header["Content-Type"]; !ok && len(r.Body) > 0 {
		r.Header.Set("Content-Type", http.DetectContentType(r.Body))
	}
	return r
}

func bodyAllowed(status int) bool {
	return status >= 200 && status != http.StatusNoContent && status != http.StatusNotModified
}
